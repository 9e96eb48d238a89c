//! `cargo xtask api-key create | list | revoke`: the HTTPS API's keys, in
//! each region's keys table (`ApiKeysTableName` of the deploy record).
//! Formats, item layout and defaults are `face_api::keys`'s.
//!
//! A key is created in every selected region (default: all of the
//! deployment), so one key works against each region's API. Only its
//! sha256 is stored; the key itself is printed once, alone on the last
//! line of stdout, and nowhere else (not in errors, not in logs).
//! Revoking keeps the key item (with `revoked_at`) for history and frees
//! the name; API Gateway's cache of the authorizer's answers lets a
//! revoked key through for at most 60 s more.

use std::collections::HashMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use face_api::keys::{
    self, API_KEY_RANDOM_BYTES, DEFAULT_QUOTA_PER_DAY, DEFAULT_RATE_PER_MINUTE, KEY_ITEM_PREFIX,
    attr,
};
use face_stacks::outputs::API_KEYS_TABLE_NAME;

use super::{StackArg, Target, local, select_regions, state_dir};

#[derive(Debug, clap::Args)]
pub struct ApiKeyArgs {
    #[command(subcommand)]
    pub command: ApiKeyCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key; it is printed once, alone on the last line of stdout
    Create(CreateArgs),
    /// List the keys: name, created, key id prefix, limits, active or revoked (never the key)
    List(Where),
    /// Revoke a key by name (refused within 60 s; the name can then be reused)
    Revoke(RevokeArgs),
}

/// Which deployment and regions.
#[derive(Debug, Clone, clap::Args)]
pub struct Where {
    #[command(flatten)]
    pub stack: StackArg,
    /// Only these regions (default: every region of the deployment)
    #[arg(long = "region")]
    pub regions: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub at: Where,
    /// The key's name (1-64 of A-Z a-z 0-9 _ . -), unique among active keys
    #[arg(long)]
    pub name: String,
    /// Requests per minute this key may make
    #[arg(long, default_value_t = DEFAULT_RATE_PER_MINUTE)]
    pub rate_per_minute: u32,
    /// Requests per UTC day this key may make
    #[arg(long, default_value_t = DEFAULT_QUOTA_PER_DAY)]
    pub quota_per_day: u32,
}

#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub at: Where,
    /// The key's name
    #[arg(long)]
    pub name: String,
}

/// `cargo xtask api-key ...`.
pub fn command(root: &Path, args: &ApiKeyArgs) -> Result<()> {
    let at = match &args.command {
        ApiKeyCommand::Create(a) => &a.at,
        ApiKeyCommand::List(a) => a,
        ApiKeyCommand::Revoke(a) => &a.at,
    };
    super::runtime()?.block_on(async {
        let tables = keys_tables(root, at).await?;
        match &args.command {
            ApiKeyCommand::Create(a) => {
                let key = create(&tables, a).await?;
                println!("the key follows; it is stored only hashed and cannot be shown again:");
                // Last, alone: scripts take the last line.
                println!("{key}");
                Ok(())
            }
            ApiKeyCommand::List(_) => list(&tables).await,
            ApiKeyCommand::Revoke(a) => revoke(&tables, &a.name).await,
        }
    })
}

/// A key on the local stack with the default limits, for the demo.
pub async fn create_local_key(root: &Path, name: &str) -> Result<String> {
    let at = Where {
        stack: StackArg {
            stack: "local".into(),
        },
        regions: Vec::new(),
    };
    let tables = keys_tables(root, &at).await?;
    let args = CreateArgs {
        at,
        name: name.to_string(),
        rate_per_minute: DEFAULT_RATE_PER_MINUTE,
        quota_per_day: DEFAULT_QUOTA_PER_DAY,
    };
    create(&tables, &args).await
}

/// The keys table of each selected region, from the deploy records.
async fn keys_tables(root: &Path, at: &Where) -> Result<Vec<KeysTable>> {
    let deployment = face_stacks::Deployment::load(&at.stack.stack)?;
    let regions = select_regions(&deployment, &at.regions)?;
    let target = if at.stack.is_local() {
        match local::running(root) {
            Some(endpoint_url) => Target::Local { endpoint_url },
            None => bail!("local AWS is not running: `cargo xtask deploy --stack local` first"),
        }
    } else {
        Target::Aws
    };
    let dir = state_dir(root, &deployment);
    let mut tables = Vec::new();
    for region in &regions {
        let r = region.region.as_str();
        let record = super::smoke::read_record(&dir, r)?;
        let table = record.output(API_KEYS_TABLE_NAME)?.to_string();
        let client = Client::new(&target.sdk_config(r).await);
        tables.push(KeysTable {
            region: r.to_string(),
            table,
            client,
        });
    }
    Ok(tables)
}

/// One region's keys table.
struct KeysTable {
    region: String,
    table: String,
    client: Client,
}

impl KeysTable {
    async fn get(&self, id: &str) -> Result<Option<HashMap<String, AttributeValue>>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::ID, s(id))
            .consistent_read(true)
            .send()
            .await
            .with_context(|| format!("{}: dynamodb:GetItem on {}", self.region, self.table))?;
        Ok(out.item)
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u32) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v) | AttributeValue::N(v)) => Some(v.as_str()),
        _ => None,
    }
}

fn now_unix_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(unix_s: u64) -> String {
    let t = unix_s % 86_400;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        keys::utc_date(unix_s),
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// A new key from the operating system's random source.
fn new_key() -> Result<String> {
    let mut random = [0u8; API_KEY_RANDOM_BYTES];
    getrandom::getrandom(&mut random)
        .map_err(|e| anyhow::anyhow!("the OS random source failed: {e}"))?;
    Ok(keys::format_api_key(&random))
}

/// The name's item and the key's item, written together, neither over an
/// existing one.
fn create_items(
    table: &str,
    name: &str,
    key_hash: &str,
    created_at: &str,
    rate_per_minute: u32,
    quota_per_day: u32,
) -> Result<Vec<TransactWriteItem>> {
    let key_item = HashMap::from([
        (
            attr::ID.to_string(),
            s(keys::key_item_id_for_hash(key_hash)),
        ),
        (attr::NAME.to_string(), s(name)),
        (attr::CREATED_AT.to_string(), s(created_at)),
        (attr::RATE_PER_MINUTE.to_string(), n(rate_per_minute)),
        (attr::QUOTA_PER_DAY.to_string(), n(quota_per_day)),
    ]);
    let name_item = HashMap::from([
        (attr::ID.to_string(), s(keys::name_item_id(name))),
        (attr::KEY_ID.to_string(), s(key_hash)),
        (attr::CREATED_AT.to_string(), s(created_at)),
    ]);
    [key_item, name_item]
        .into_iter()
        .map(|item| {
            let put = Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#id)")
                .expression_attribute_names("#id", attr::ID)
                .build()?;
            Ok(TransactWriteItem::builder().put(put).build())
        })
        .collect()
}

/// Creates the key in every table and returns it (the caller prints it).
async fn create(tables: &[KeysTable], args: &CreateArgs) -> Result<String> {
    keys::validate_key_name(&args.name)?;
    ensure!(
        args.rate_per_minute >= 1,
        "--rate-per-minute must be at least 1"
    );
    ensure!(
        args.quota_per_day >= 1,
        "--quota-per-day must be at least 1"
    );
    // Every region first, so a taken name writes nothing anywhere.
    for t in tables {
        if t.get(&keys::name_item_id(&args.name)).await?.is_some() {
            bail!(
                "{}: an active key is already named {:?}; revoke it first (cargo xtask api-key revoke --name {})",
                t.region,
                args.name,
                args.name
            );
        }
    }
    let key = new_key()?;
    let key_hash = keys::hash_api_key(&key);
    let created_at = rfc3339(now_unix_s());
    for t in tables {
        let items = create_items(
            &t.table,
            &args.name,
            &key_hash,
            &created_at,
            args.rate_per_minute,
            args.quota_per_day,
        )?;
        let written = t
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        if let Err(e) = written {
            if e.as_service_error()
                .is_some_and(|e| e.is_transaction_canceled_exception())
            {
                bail!(
                    "{}: an active key is already named {:?} (created meanwhile); revoke it first",
                    t.region,
                    args.name
                );
            }
            return Err(e).with_context(|| {
                format!("{}: dynamodb:TransactWriteItems on {}", t.region, t.table)
            });
        }
        println!(
            "[{}] created key {:?} (id {}…, {}/min, {}/day) in {}",
            t.region,
            args.name,
            &key_hash[..8],
            args.rate_per_minute,
            args.quota_per_day,
            t.table
        );
    }
    Ok(key)
}

async fn list(tables: &[KeysTable]) -> Result<()> {
    println!(
        "{:<10} {:<24} {:<21} {:<9} {:>8} {:>9}  status",
        "region", "name", "created_at", "key id", "per min", "per day"
    );
    for t in tables {
        let mut rows = Vec::new();
        let mut pages = t
            .client
            .scan()
            .table_name(&t.table)
            .filter_expression("begins_with(#id, :prefix)")
            .expression_attribute_names("#id", attr::ID)
            .expression_attribute_values(":prefix", s(KEY_ITEM_PREFIX))
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item =
                item.with_context(|| format!("{}: dynamodb:Scan on {}", t.region, t.table))?;
            let id = text(&item, attr::ID).unwrap_or_default();
            let hash = id.strip_prefix(KEY_ITEM_PREFIX).unwrap_or(id);
            let status = match text(&item, attr::REVOKED_AT) {
                Some(at) => format!("revoked {at}"),
                None => "active".to_string(),
            };
            rows.push((
                text(&item, attr::CREATED_AT).unwrap_or("?").to_string(),
                text(&item, attr::NAME).unwrap_or("?").to_string(),
                hash.chars().take(8).collect::<String>(),
                text(&item, attr::RATE_PER_MINUTE)
                    .unwrap_or("?")
                    .to_string(),
                text(&item, attr::QUOTA_PER_DAY).unwrap_or("?").to_string(),
                status,
            ));
        }
        rows.sort();
        for (created_at, name, prefix, rate, quota, status) in rows {
            println!(
                "{:<10} {name:<24} {created_at:<21} {prefix:<9} {rate:>8} {quota:>9}  {status}",
                t.region
            );
        }
    }
    Ok(())
}

async fn revoke(tables: &[KeysTable], name: &str) -> Result<()> {
    keys::validate_key_name(name)?;
    let revoked_at = rfc3339(now_unix_s());
    let mut revoked = 0;
    for t in tables {
        let Some(name_item) = t.get(&keys::name_item_id(name)).await? else {
            println!("[{}] no active key named {name:?}", t.region);
            continue;
        };
        let key_hash = text(&name_item, attr::KEY_ID)
            .with_context(|| format!("{}: name#{name} has no {}", t.region, attr::KEY_ID))?
            .to_string();
        t.client
            .update_item()
            .table_name(&t.table)
            .key(attr::ID, s(keys::key_item_id_for_hash(&key_hash)))
            .update_expression("SET #revoked = :at")
            .condition_expression("attribute_exists(#id)")
            .expression_attribute_names("#revoked", attr::REVOKED_AT)
            .expression_attribute_names("#id", attr::ID)
            .expression_attribute_values(":at", s(&revoked_at))
            .send()
            .await
            .with_context(|| format!("{}: marking key {}… revoked", t.region, &key_hash[..8]))?;
        // Frees the name, unless it was meanwhile given to another key.
        t.client
            .delete_item()
            .table_name(&t.table)
            .key(attr::ID, s(keys::name_item_id(name)))
            .condition_expression("#key = :key")
            .expression_attribute_names("#key", attr::KEY_ID)
            .expression_attribute_values(":key", s(&key_hash))
            .send()
            .await
            .with_context(|| format!("{}: freeing the name {name:?}", t.region))?;
        println!(
            "[{}] revoked key {name:?} (id {}…) at {revoked_at}; refused within 60 s",
            t.region,
            &key_hash[..8]
        );
        revoked += 1;
    }
    ensure!(revoked > 0, "no active key named {name:?}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_709_251_170), "2024-02-29T23:59:30Z");
    }

    #[test]
    fn keys_are_fresh_and_of_the_documented_shape() {
        let a = new_key().unwrap();
        let b = new_key().unwrap();
        assert_ne!(a, b);
        assert!(keys::looks_like_api_key(&a), "{}", a.len());
        assert_eq!(a.len(), 3 + 40);
    }

    #[test]
    fn a_key_is_written_as_its_hash_and_a_name_beside_it() {
        let items = create_items("t", "pi", "ab".repeat(32).as_str(), "now", 120, 10_000).unwrap();
        let puts: Vec<_> = items.iter().map(|i| i.put().unwrap()).collect();
        assert_eq!(puts.len(), 2);
        for p in &puts {
            assert_eq!(p.condition_expression(), Some("attribute_not_exists(#id)"));
        }
        let key_item = puts[0].item();
        assert_eq!(
            text(key_item, "id"),
            Some(format!("key#{}", "ab".repeat(32)).as_str())
        );
        assert_eq!(text(key_item, "rate_per_minute"), Some("120"));
        assert!(matches!(key_item["quota_per_day"], AttributeValue::N(_)));
        let name_item = puts[1].item();
        assert_eq!(text(name_item, "id"), Some("name#pi"));
        assert_eq!(text(name_item, "key_id"), Some("ab".repeat(32).as_str()));
    }
}
