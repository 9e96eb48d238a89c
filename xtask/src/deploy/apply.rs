//! `cargo xtask deploy`: artifacts to a per-region asset bucket, one
//! CloudFormation change set per region, then the S3 notifications.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_sdk_cloudformation::client::Waiters;
use aws_sdk_cloudformation::types::{Capability, ChangeSetStatus, ChangeSetType, StackStatus, Tag};
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, FilterRule, FilterRuleName,
    NotificationConfiguration, NotificationConfigurationFilter, PublicAccessBlockConfiguration,
    QueueConfiguration, S3KeyFilter,
};
use face_stacks::{
    Architecture, Assets, DeployRecord, Deployment, FaceStack, FunctionName, RegionPlan,
    asset_bucket_name,
};

use super::{StackArg, Target, account_id, artifacts, outputs, state_dir, step};

/// How long one stack operation may take before we stop waiting.
const STACK_WAIT: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub stack: StackArg,
    /// Only these regions (default: every region of the deployment)
    #[arg(long = "region")]
    pub regions: Vec<String>,
}

/// What a region's deploy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    NoChanges,
}

pub async fn run(
    root: &Path,
    target: &Target,
    deployment: &Deployment,
    regions: &[&RegionPlan],
) -> Result<Vec<Change>> {
    // The local stack runs whatever was built last (the test gate's `ci`
    // build included); AWS gets the release build.
    let shipping = matches!(target, Target::Aws);
    ensure_artifacts(root, regions, shipping)?;
    let mut changes = Vec::new();
    for region in regions {
        changes.push(
            deploy_region(root, target, deployment, region)
                .await
                .with_context(|| format!("deploying {}", region.region))?,
        );
    }
    Ok(changes)
}

/// Builds the zips if any is missing (or, when `release_only`, was built
/// with another profile than `release`), with `cargo xtask build`'s code:
/// with fat LTO (`release`) only for what ships to AWS; the local stack's
/// are this machine's own dev binaries where it can run them
/// ([`crate::build::Profile::local_default`]: no dependency built twice).
fn ensure_artifacts(root: &Path, regions: &[&RegionPlan], release_only: bool) -> Result<()> {
    let profile = |arch| {
        if release_only {
            crate::build::Profile::Release
        } else {
            crate::build::Profile::local_default(arch)
        }
    };
    let stale = |arch| {
        release_only
            && crate::build::built_profile(root, arch) != Some(crate::build::Profile::Release)
    };
    let mut missing: Vec<(FunctionName, Architecture)> = regions
        .iter()
        .flat_map(|r| Assets::needed(r))
        .filter(|(f, a)| stale(*a) || !artifacts::zip_path(root, *f, *a).exists())
        .collect();
    missing.sort();
    missing.dedup();
    for arch in [Architecture::X86_64, Architecture::Arm64] {
        let functions: Vec<String> = missing
            .iter()
            .filter(|(_, a)| *a == arch)
            .map(|(f, _)| f.to_string())
            .collect();
        if functions.is_empty() {
            continue;
        }
        println!("building {} for {}", functions.join(", "), arch.as_str());
        crate::build::build(root, arch, profile(arch), &functions).context("cargo xtask build")?;
    }
    Ok(())
}

async fn deploy_region(
    root: &Path,
    target: &Target,
    deployment: &Deployment,
    region: &RegionPlan,
) -> Result<Change> {
    let r = region.region.as_str();
    let config = target.sdk_config(r).await;
    let account = account_id(&config).await?;
    step(
        r,
        format_args!("account {account}, region {r}, stack {}", deployment.name),
    );

    // 1. Artifacts, by content hash: an unchanged zip is not re-uploaded.
    let s3 = target.s3(&config);
    let asset_bucket = asset_bucket_name(&deployment.name, &account, r);
    ensure_private_bucket(&s3, &asset_bucket, &account, r).await?;
    let mut assets = Assets::default();
    for (function, arch) in Assets::needed(region) {
        let key = artifacts::hash_key(root, function, arch)?;
        let exists = s3
            .head_object()
            .bucket(&asset_bucket)
            .key(&key)
            .expected_bucket_owner(&account)
            .send()
            .await
            .is_ok();
        if !exists {
            let body = aws_sdk_s3::primitives::ByteStream::from_path(artifacts::zip_path(
                root, function, arch,
            ))
            .await?;
            s3.put_object()
                .bucket(&asset_bucket)
                .key(&key)
                .expected_bucket_owner(&account)
                .body(body)
                .send()
                .await
                .with_context(|| format!("uploading s3://{asset_bucket}/{key}"))?;
            step(r, format_args!("uploaded s3://{asset_bucket}/{key}"));
        }
        assets.keys.insert((function, arch), key);
    }

    // 2. The stack, through a change set.
    let stack = FaceStack::new(deployment, region).synth(&assets)?;
    let cfn = aws_sdk_cloudformation::Client::new(&config);
    let change = apply_change_set(
        &cfn,
        &stack.stack_name,
        &stack.template.to_json().to_string(),
        deployment,
        r,
    )
    .await?;

    // 3. The bucket → queue notification is in the template; moto's
    // CloudFormation skips a bucket's NotificationConfiguration, so what is
    // not in place is applied with the S3 API (on AWS it always is).
    let values = outputs::read(
        &cfn,
        &stack.stack_name,
        &stack.template.outputs,
        &account,
        r,
    )
    .await?;
    for n in &stack.notifications {
        let bucket = values
            .get(n.bucket_output)
            .context("bucket output missing")?;
        let queue_arn = values
            .get(n.queue_arn_output)
            .context("queue output missing")?;
        // moto answers an empty configuration with a root element the SDK
        // does not parse: an unreadable configuration is one to apply.
        let current = s3
            .get_bucket_notification_configuration()
            .bucket(bucket)
            .expected_bucket_owner(&account)
            .send()
            .await
            .ok();
        let configured = current
            .as_ref()
            .map_or(&[][..], |c| c.queue_configurations());
        let in_place = configured.iter().any(|q| {
            q.queue_arn() == queue_arn
                && q.filter().and_then(|f| f.key()).is_some_and(|k| {
                    k.filter_rules()
                        .iter()
                        .any(|r| r.value() == Some(&n.key_prefix))
                })
        });
        if in_place {
            step(
                r,
                format_args!(
                    "s3://{bucket}/{}* → {queue_arn} (from the template)",
                    n.key_prefix
                ),
            );
            continue;
        }
        let queue = QueueConfiguration::builder()
            .id(n.id)
            .queue_arn(queue_arn)
            .set_events(Some(n.events.iter().map(|e| (*e).into()).collect()))
            .filter(
                NotificationConfigurationFilter::builder()
                    .key(
                        S3KeyFilter::builder()
                            .filter_rules(
                                FilterRule::builder()
                                    .name(FilterRuleName::Prefix)
                                    .value(&n.key_prefix)
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .build()?;
        s3.put_bucket_notification_configuration()
            .bucket(bucket)
            .expected_bucket_owner(&account)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .queue_configurations(queue)
                    .build(),
            )
            .send()
            .await
            .with_context(|| format!("notification on {bucket}"))?;
        step(
            r,
            format_args!(
                "s3://{bucket}/{}* → {queue_arn} (applied: the stack did not set it)",
                n.key_prefix
            ),
        );
    }

    // 4. Outputs for the other commands and for people.
    let dir = state_dir(root, deployment);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(DeployRecord::file_name(r));
    // moto serves no API: the local stack's is `cargo xtask serve`.
    let api_url = match target {
        Target::Aws => values.get(face_stacks::outputs::API_URL).cloned(),
        Target::Local { .. } => Some(face_stacks::local_api_url(super::local::api_port()?)),
    };
    let record = DeployRecord {
        stack: stack.stack_name.clone(),
        account: account.clone(),
        region: r.to_string(),
        outputs: values,
        api_url,
    };
    std::fs::write(&path, record.to_json())
        .with_context(|| format!("writing {}", path.display()))?;
    step(r, format_args!("{change:?}; outputs in {}", path.display()));
    if let Some(url) = &record.api_url {
        let note = match target {
            Target::Aws => "",
            Target::Local { .. } => " (served by `cargo xtask serve`)",
        };
        step(r, format_args!("api_url: {url}{note}"));
    }
    Ok(change)
}

/// Creates the bucket if it is not there, private and encrypted. Its name
/// is predictable, so one that exists in another account (taken after a
/// teardown freed it) is refused: every call expects `owner`.
pub async fn ensure_private_bucket(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    owner: &str,
    region: &str,
) -> Result<()> {
    let head = s3
        .head_bucket()
        .bucket(bucket)
        .expected_bucket_owner(owner)
        .send()
        .await;
    if head.is_ok() {
        return Ok(());
    }
    let mut create = s3.create_bucket().bucket(bucket);
    // us-east-1 is the one region that refuses an explicit constraint.
    if region != "us-east-1" {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    if let Err(e) = create.send().await {
        let service = e.as_service_error();
        if service.is_some_and(|s| s.is_bucket_already_exists()) {
            anyhow::bail!(
                "bucket {bucket} exists and belongs to another account than {owner}: \
                 refusing to deploy into it"
            );
        }
        if !service.is_some_and(|s| s.is_bucket_already_owned_by_you()) {
            return Err(e).with_context(|| format!("creating bucket {bucket}"));
        }
    }
    s3.put_public_access_block()
        .bucket(bucket)
        .expected_bucket_owner(owner)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .block_public_policy(true)
                .ignore_public_acls(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .with_context(|| format!("blocking public access on {bucket}"))?;
    Ok(())
}

/// Creates or updates the stack; "no changes" is success. A stack left in
/// ROLLBACK_COMPLETE (a failed first creation) is deleted and created
/// again; one in UPDATE_ROLLBACK_FAILED (a rollback that could not undo a
/// resource) has its rollback continued first; one still in progress (a
/// killed deploy) is waited for.
async fn apply_change_set(
    cfn: &aws_sdk_cloudformation::Client,
    stack_name: &str,
    template: &str,
    deployment: &Deployment,
    r: &str,
) -> Result<Change> {
    let status = stack_status(cfn, stack_name).await?;
    let status = match status {
        Some(s) if s.as_str().ends_with("_IN_PROGRESS") && s != StackStatus::ReviewInProgress => {
            step(r, format_args!("stack is {s}; waiting for it to settle"));
            wait_settled(cfn, stack_name).await?
        }
        other => other,
    };
    let kind = match status {
        None => ChangeSetType::Create,
        // A stack that holds no resources and cannot be updated: deleted,
        // then created afresh. REVIEW_IN_PROGRESS is left by a deploy
        // stopped between creating its change set and executing it. AWS
        // would take a second creating change set on it, but moto creates
        // a second stack of the same name, and waiting on the first then
        // never ends; deleting it first converges on both.
        Some(s @ (StackStatus::RollbackComplete | StackStatus::ReviewInProgress)) => {
            let cause = if s == StackStatus::RollbackComplete {
                "a failed creation"
            } else {
                "a deploy stopped before its change set ran"
            };
            step(
                r,
                format_args!("stack is {s} from {cause}; deleting it first"),
            );
            cfn.delete_stack()
                .stack_name(stack_name)
                .send()
                .await
                .context("deleting the stack")?;
            cfn.wait_until_stack_delete_complete()
                .stack_name(stack_name)
                .wait(STACK_WAIT)
                .await
                .context("waiting for deletion")?;
            ChangeSetType::Create
        }
        Some(StackStatus::DeleteComplete) => ChangeSetType::Create,
        Some(StackStatus::UpdateRollbackFailed) => {
            step(
                r,
                "stack is UPDATE_ROLLBACK_FAILED; continuing the rollback first",
            );
            cfn.continue_update_rollback()
                .stack_name(stack_name)
                .send()
                .await
                .context("continuing the failed rollback")?;
            match wait_settled(cfn, stack_name).await? {
                Some(StackStatus::UpdateRollbackComplete) => ChangeSetType::Update,
                other => bail!(
                    "stack {stack_name} is {other:?} after continuing its rollback: fix the \
                     resource named in its events (or continue the rollback skipping it with \
                     `aws cloudformation continue-update-rollback --resources-to-skip`)"
                ),
            }
        }
        Some(_) => ChangeSetType::Update,
    };
    let name = format!(
        "deploy-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
    );
    let tags: Vec<Tag> = deployment
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    cfn.create_change_set()
        .stack_name(stack_name)
        .change_set_name(&name)
        .change_set_type(kind.clone())
        .template_body(template)
        .capabilities(Capability::CapabilityIam)
        .set_tags(Some(tags))
        .send()
        .await
        .context("creating the change set")?;
    let (cs_status, reason, changes) = wait_change_set(cfn, stack_name, &name).await?;
    if cs_status == ChangeSetStatus::Failed {
        let no_changes = reason.contains("didn't contain changes") || reason.contains("No updates");
        cfn.delete_change_set()
            .stack_name(stack_name)
            .change_set_name(&name)
            .send()
            .await
            .ok();
        if no_changes {
            step(r, "no changes");
            return Ok(Change::NoChanges);
        }
        bail!("change set {name} failed: {reason}");
    }
    step(
        r,
        format_args!(
            "{} change set {name}: {changes} change(s); executing",
            kind.as_str()
        ),
    );
    cfn.execute_change_set()
        .stack_name(stack_name)
        .change_set_name(&name)
        .send()
        .await
        .context("executing the change set")?;
    let final_status = if kind == ChangeSetType::Create {
        cfn.wait_until_stack_create_complete()
            .stack_name(stack_name)
            .wait(STACK_WAIT)
            .await
            .map(|_| ())
            .map_err(anyhow::Error::from)
    } else {
        cfn.wait_until_stack_update_complete()
            .stack_name(stack_name)
            .wait(STACK_WAIT)
            .await
            .map(|_| ())
            .map_err(anyhow::Error::from)
    };
    if let Err(e) = final_status {
        let now = stack_status(cfn, stack_name).await.ok().flatten();
        bail!("stack {stack_name} did not complete ({now:?}): {e:#}");
    }
    Ok(if kind == ChangeSetType::Create {
        Change::Created
    } else {
        Change::Updated
    })
}

async fn stack_status(
    cfn: &aws_sdk_cloudformation::Client,
    stack_name: &str,
) -> Result<Option<StackStatus>> {
    match cfn.describe_stacks().stack_name(stack_name).send().await {
        Ok(out) => Ok(out.stacks().first().and_then(|s| s.stack_status().cloned())),
        Err(e) if format!("{e:?}").contains("does not exist") => Ok(None),
        Err(e) => Err(e).context("describing the stack"),
    }
}

async fn wait_settled(
    cfn: &aws_sdk_cloudformation::Client,
    stack_name: &str,
) -> Result<Option<StackStatus>> {
    let started = std::time::Instant::now();
    loop {
        let s = stack_status(cfn, stack_name).await?;
        match &s {
            Some(st) if st.as_str().ends_with("_IN_PROGRESS") && started.elapsed() < STACK_WAIT => {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            _ => return Ok(s),
        }
    }
}

/// Polls the change set until it is ready or failed: (status, reason, changes).
async fn wait_change_set(
    cfn: &aws_sdk_cloudformation::Client,
    stack_name: &str,
    name: &str,
) -> Result<(ChangeSetStatus, String, usize)> {
    let started = std::time::Instant::now();
    loop {
        let d = cfn
            .describe_change_set()
            .stack_name(stack_name)
            .change_set_name(name)
            .send()
            .await
            .context("describing the change set")?;
        let status = d.status().cloned().context("change set without status")?;
        match status {
            ChangeSetStatus::CreateComplete | ChangeSetStatus::Failed => {
                return Ok((
                    status,
                    d.status_reason().unwrap_or_default().to_string(),
                    d.changes().len(),
                ));
            }
            _ if started.elapsed() > STACK_WAIT => {
                bail!("change set {name} still {status} after {STACK_WAIT:?}")
            }
            _ => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}
