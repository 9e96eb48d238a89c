//! `cargo xtask teardown`: nothing of the deployment remains, except the
//! data of a production stack (its bucket and tables are retained by the
//! template) unless `--delete-data`. Every step treats "already gone" as
//! done, so an interrupted teardown is re-run.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_cloudformation::client::Waiters;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use face_stacks::constructs::{DataBucket, Function, Scope};
use face_stacks::{Deployment, FaceStack, FunctionName, RegionPlan, asset_bucket_name};

use super::{StackArg, Target, account_id, state_dir, step};

#[derive(Debug, clap::Args)]
pub struct TeardownArgs {
    #[command(flatten)]
    pub stack: StackArg,
    /// Do not ask for confirmation (required when stdin is not a terminal,
    /// except for the local stack)
    #[arg(long)]
    pub yes: bool,
    /// Also delete the data bucket and the tables of a production stack
    /// (`production: true`), which are otherwise kept
    #[arg(long)]
    pub delete_data: bool,
}

pub async fn run(
    root: &Path,
    target: &Target,
    deployment: &Deployment,
    delete_data: bool,
) -> Result<()> {
    for region in &deployment.regions {
        teardown_region(target, deployment, region, delete_data)
            .await
            .with_context(|| format!("tearing down {}", region.region))?;
    }
    let dir = state_dir(root, deployment);
    for region in &deployment.regions {
        std::fs::remove_file(dir.join(face_stacks::DeployRecord::file_name(&region.region))).ok();
    }
    Ok(())
}

async fn teardown_region(
    target: &Target,
    deployment: &Deployment,
    region: &RegionPlan,
    delete_data: bool,
) -> Result<()> {
    let r = region.region.as_str();
    let keep_data = deployment.production && !delete_data;
    let config = target.sdk_config(r).await;
    let account = account_id(&config).await?;
    step(
        r,
        format_args!(
            "account {account}, region {r}: tearing down stack {}",
            deployment.name
        ),
    );
    let s3 = target.s3(&config);

    // CloudFormation cannot delete a bucket with objects in it.
    let data_bucket = DataBucket::name_in(&deployment.name, &account, r);
    if !deployment.production {
        empty_bucket(&s3, &data_bucket, &account, r).await?;
    }

    let cfn = aws_sdk_cloudformation::Client::new(&config);
    let exists = match cfn
        .describe_stacks()
        .stack_name(&deployment.name)
        .send()
        .await
    {
        Ok(_) => true,
        // CloudFormation's answer for a stack that is not there.
        Err(e)
            if e.as_service_error()
                .and_then(|s| s.meta().message())
                .is_some_and(|m| m.contains("does not exist")) =>
        {
            false
        }
        Err(e) => return Err(e).context("cloudformation:DescribeStacks"),
    };
    if exists {
        cfn.delete_stack()
            .stack_name(&deployment.name)
            .send()
            .await
            .context("deleting the stack")?;
        cfn.wait_until_stack_delete_complete()
            .stack_name(&deployment.name)
            .wait(Duration::from_secs(30 * 60))
            .await
            .context("waiting for the stack deletion")?;
        step(r, format_args!("deleted stack {}", deployment.name));
    } else {
        step(r, format_args!("stack {} already gone", deployment.name));
    }
    let tables = FaceStack::new(deployment, region).table_names();
    if keep_data {
        step(
            r,
            format_args!(
                "kept the production data: s3://{data_bucket}, tables {} (--delete-data removes them)",
                tables.join(", ")
            ),
        );
    } else {
        // Retained by a production template: deleted here, protection off
        // first. Elsewhere only what the stack failed to delete (a bucket
        // refilled meanwhile) is left.
        if deployment.production {
            delete_tables(&config, &tables, r).await?;
        }
        delete_bucket(&s3, &data_bucket, &account, r).await?;
    }

    let assets = asset_bucket_name(&deployment.name, &account, r);
    delete_bucket(&s3, &assets, &account, r).await?;

    // The runtime recreates a function's log group if it logs after the
    // stack deleted it; remove whatever is there now.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let scope = Scope {
        stack_name: deployment.name.clone(),
        tags: Default::default(),
    };
    for function in FunctionName::ALL {
        let group = Function::log_group_name(&scope, function);
        match logs.delete_log_group().log_group_name(&group).send().await {
            Ok(_) => step(r, format_args!("deleted log group {group}")),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(e).with_context(|| format!("deleting log group {group}")),
        }
    }
    Ok(())
}

/// Deletes retained tables, switching their deletion protection off
/// first; a missing table is done.
async fn delete_tables(
    config: &face_sdk_config::SdkConfig,
    tables: &[String],
    r: &str,
) -> Result<()> {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    for table in tables {
        match dynamodb
            .update_table()
            .table_name(table)
            .deletion_protection_enabled(false)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("unprotecting table {table}")),
        }
        match dynamodb.delete_table().table_name(table).send().await {
            Ok(_) => step(r, format_args!("deleted table {table}")),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(e).with_context(|| format!("deleting table {table}")),
        }
    }
    Ok(())
}

/// Deletes every object version and delete marker; a missing bucket is empty.
/// Every call expects `owner` to own the bucket.
pub async fn empty_bucket(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    owner: &str,
    r: &str,
) -> Result<()> {
    let mut removed = 0usize;
    loop {
        let page = match s3
            .list_object_versions()
            .bucket(bucket)
            .expected_bucket_owner(owner)
            .max_keys(1000)
            .send()
            .await
        {
            Ok(page) => page,
            Err(e) if is_no_such_bucket(&e) => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("listing versions in {bucket}")),
        };
        let mut ids = Vec::new();
        for v in page.versions() {
            ids.push(
                ObjectIdentifier::builder()
                    .key(v.key().unwrap_or_default())
                    .set_version_id(v.version_id().map(String::from))
                    .build()?,
            );
        }
        for m in page.delete_markers() {
            ids.push(
                ObjectIdentifier::builder()
                    .key(m.key().unwrap_or_default())
                    .set_version_id(m.version_id().map(String::from))
                    .build()?,
            );
        }
        if ids.is_empty() {
            break;
        }
        removed += ids.len();
        // Each page is at most 1000 entries, DeleteObjects' own limit.
        s3.delete_objects()
            .bucket(bucket)
            .expected_bucket_owner(owner)
            .delete(
                Delete::builder()
                    .set_objects(Some(ids))
                    .quiet(true)
                    .build()?,
            )
            .send()
            .await
            .with_context(|| format!("deleting versions in {bucket}"))?;
    }
    if removed > 0 {
        step(
            r,
            format_args!("emptied s3://{bucket} ({removed} versions and delete markers)"),
        );
    }
    Ok(())
}

/// Empties and deletes a bucket `owner` owns; a missing one is done.
pub async fn delete_bucket(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    owner: &str,
    r: &str,
) -> Result<()> {
    empty_bucket(s3, bucket, owner, r).await?;
    match s3
        .delete_bucket()
        .bucket(bucket)
        .expected_bucket_owner(owner)
        .send()
        .await
    {
        Ok(_) => {
            step(r, format_args!("deleted bucket {bucket}"));
            Ok(())
        }
        Err(e) if is_no_such_bucket(&e) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("deleting bucket {bucket}")),
    }
}

fn is_no_such_bucket<E: std::fmt::Debug, R: std::fmt::Debug>(
    e: &aws_sdk_s3::error::SdkError<E, R>,
) -> bool {
    let text = format!("{e:?}");
    text.contains("NoSuchBucket") || text.contains("404")
}
