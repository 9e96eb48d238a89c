//! `cargo xtask deploy | teardown` (and the pieces they share): one
//! CloudFormation stack per region from `face-stacks`, against real AWS
//! (standard profile/region chain) or, with `--stack local`, against a moto
//! server on loopback that this xtask runs itself (see [`local`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use face_sdk_config::SdkConfig;
use face_stacks::Deployment;

pub mod api_key;
pub mod apply;
pub mod artifacts;
pub mod dispatch;
pub mod load;
pub mod local;
pub mod outputs;
pub mod results_queue;
pub mod scan;
pub mod serve;
pub mod smoke;
pub mod teardown;

/// `--stack`: an embedded deployment name or a YAML file.
#[derive(Debug, Clone, clap::Args)]
pub struct StackArg {
    /// Deployment: `local` (moto on loopback, no AWS account), `dev`,
    /// `prod` (stacks/<NAME>.yaml), or a path to a YAML file
    #[arg(long, default_value = "local")]
    pub stack: String,
}

impl StackArg {
    pub fn is_local(&self) -> bool {
        self.stack == "local"
    }
}

/// Where the commands send their requests.
#[derive(Debug, Clone)]
pub enum Target {
    /// The standard credential chain, one explicit region per config.
    Aws,
    /// moto server at this endpoint, test credentials.
    Local { endpoint_url: String },
}

impl Target {
    /// One SDK config for `region`, built explicitly: never through
    /// process-wide state, so several regions can be served at once.
    pub async fn sdk_config(&self, region: &str) -> SdkConfig {
        match self {
            Target::Aws => face_sdk_config::region_config(None, region).await,
            Target::Local { endpoint_url } => {
                face_sdk_config::local_config(endpoint_url, region).await
            }
        }
    }

    /// S3 wants path-style addressing when an endpoint is set.
    pub fn s3(&self, config: &SdkConfig) -> aws_sdk_s3::Client {
        let builder = aws_sdk_s3::config::Builder::from(config);
        let local = matches!(self, Target::Local { .. }) || config.endpoint_url().is_some();
        aws_sdk_s3::Client::from_conf(builder.force_path_style(local).build())
    }
}

/// The account the config's credentials belong to.
pub async fn account_id(config: &SdkConfig) -> Result<String> {
    let identity = aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
        .context("sts:GetCallerIdentity (are credentials configured?)")?;
    identity
        .account
        .context("GetCallerIdentity returned no account")
}

/// Where deploy keeps its state under the checkout: `$FACE_DEPLOY_DIR`,
/// else `target/deploy` ([`face_stacks::deploy_dir`]).
pub fn deploy_dir(root: &Path) -> PathBuf {
    root.join(face_stacks::deploy_dir())
}

/// `<deploy dir>/<stack>/`: its `<region>.json` records, where facectl and
/// the coordinator read them by default.
pub fn state_dir(root: &Path, deployment: &Deployment) -> PathBuf {
    deploy_dir(root).join(&deployment.name)
}

/// Regions selected by `--region` (all when empty); unknown ones are errors.
pub fn select_regions<'a>(
    deployment: &'a Deployment,
    wanted: &[String],
) -> Result<Vec<&'a face_stacks::RegionPlan>> {
    if wanted.is_empty() {
        return Ok(deployment.regions.iter().collect());
    }
    wanted
        .iter()
        .map(|w| match deployment.region(w) {
            Some(r) => Ok(r),
            None => bail!("{} does not list region {w}", deployment.name),
        })
        .collect()
}

/// A line of progress: plain text, one per step (CI logs read well).
pub fn step(region: &str, message: impl std::fmt::Display) {
    println!("[{region}] {message}");
}

/// The target of `--stack`: moto (started if needed) for `local`, else AWS.
fn target_for(root: &Path, stack: &StackArg) -> Result<Target> {
    if stack.is_local() {
        Ok(Target::Local {
            endpoint_url: local::ensure(root)?,
        })
    } else {
        Ok(Target::Aws)
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `cargo xtask deploy`.
pub fn deploy_command(root: &Path, args: &apply::DeployArgs) -> Result<()> {
    let deployment = Deployment::load(&args.stack.stack)?;
    let regions = select_regions(&deployment, &args.regions)?;
    let target = target_for(root, &args.stack)?;
    let changes = runtime()?.block_on(apply::run(root, &target, &deployment, &regions))?;
    let summary: Vec<String> = regions
        .iter()
        .zip(&changes)
        .map(|(r, c)| format!("{}: {c:?}", r.region))
        .collect();
    println!("deployed {}: {}", deployment.name, summary.join(", "));
    Ok(())
}

/// `cargo xtask smoke-test`.
pub fn smoke_command(root: &Path, args: &smoke::SmokeArgs) -> Result<()> {
    let deployment = Deployment::load(&args.stack.stack)?;
    let regions = select_regions(&deployment, &args.regions)?;
    let target = if args.stack.is_local() {
        match local::running(root) {
            Some(endpoint_url) => Target::Local { endpoint_url },
            None => bail!("local AWS is not running: `cargo xtask deploy --stack local` first"),
        }
    } else {
        Target::Aws
    };
    let timeout = std::time::Duration::from_secs(args.timeout_s);
    let data = devset::data_dir(args.data.as_deref(), root);
    runtime()?.block_on(async {
        for region in &regions {
            smoke::run_region(root, &target, &deployment, &region.region, timeout, &data)
                .await
                .with_context(|| {
                    format!("smoke test of {} in {}", deployment.name, region.region)
                })?;
        }
        anyhow::Ok(())
    })?;
    println!("smoke test of {} passed", deployment.name);
    Ok(())
}

/// `cargo xtask load-test`: mixed uploads with faults on the local stack.
pub fn load_command(root: &Path, args: &load::LoadArgs) -> Result<()> {
    runtime()?.block_on(load::run(root, args))
}

/// `cargo xtask serve`: the local stack's API Gateway, until interrupted.
pub fn serve_command(root: &Path, args: &serve::ServeArgs) -> Result<()> {
    runtime()?.block_on(serve::run(root, args))
}

/// The HTTPS API on the local stack (`cargo xtask demo`): a key, the local
/// gateway, the two people of a labelled group photo enrolled and found
/// through `facectl`'s remote mode, and the same API through curl.
pub fn local_api_demo(root: &Path, data: &Path, facectl: &Path) -> Result<()> {
    runtime()?.block_on(async {
        let key = api_key::create_local_key(root, "demo").await?;
        let gateway = serve::start(root, 0).await?;
        let url = gateway.api_url.clone();
        println!("local gateway: {url} (what `cargo xtask serve` runs)");
        let shown = (
            root.to_path_buf(),
            data.to_path_buf(),
            facectl.to_path_buf(),
        );
        let outcome = tokio::task::spawn_blocking(move || {
            let (root, data, facectl) = shown;
            api_walkthrough(&root, &data, &facectl, &url, &key)
        })
        .await
        .context("the API walkthrough")?;
        gateway.stop().await?;
        outcome
    })
}

fn api_walkthrough(root: &Path, data: &Path, facectl: &Path, url: &str, key: &str) -> Result<()> {
    let group = devset::group_of_people(
        &devset::recognition_labels(data)?,
        &devset::detection_labels(data)?,
        2,
    )
    .context("no labelled group photo names two people with two photos each")?;
    let sh = xshell::Shell::new()?;
    sh.change_dir(root);
    sh.set_var(face_contracts::env::API_KEY, key);
    let collection = "demo-api";
    for person in &group.people {
        let name = &person.person;
        let photos: Vec<PathBuf> = person.photos.iter().map(|p| data.join(p)).collect();
        xshell::cmd!(
            sh,
            "{facectl} enroll --endpoint {url} --collection {collection} --person {name} {photos...}"
        )
        .run()?;
    }
    let group_photo = data.join(&group.group_photo);
    xshell::cmd!(
        sh,
        "{facectl} recognize --endpoint {url} --collection {collection} {group_photo}"
    )
    .run()?;
    let (a, b) = (
        data.join(&group.people[0].photos[0]),
        data.join(&group.people[1].photos[0]),
    );
    xshell::cmd!(sh, "{facectl} compare --endpoint {url} {a} {b}").run()?;
    println!(
        "== the same API with curl (key: `cargo xtask api-key create --name NAME | tail -1`):"
    );
    let (header, key_env) = (
        face_contracts::api::KEY_HEADER,
        face_contracts::env::API_KEY,
    );
    let curls = [
        format!("curl -s -H \"{header}: ${key_env}\" {url}/v1/collections"),
        format!(
            "curl -s -H \"{header}: ${key_env}\" -H 'content-type: image/jpeg' --data-binary @{} {url}/v1/collections/{collection}/search",
            group_photo.display()
        ),
        format!("curl -s -w ' %{{http_code}}\\n' -H '{header}: fk_not-a-key' {url}/v1/collections"),
    ];
    for line in curls {
        println!("$ {line}");
        let out = std::process::Command::new("sh")
            .args(["-c", &line])
            .env(face_contracts::env::API_KEY, key)
            .output()
            .context("running curl")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let shown: String = text.chars().take(600).collect();
        println!("{shown}{}", if text.len() > 600 { " …" } else { "" });
    }
    Ok(())
}

/// The video scan through the local stack (`cargo xtask demo`): enroll
/// and scan with the deployed functions under the RIE.
pub fn local_scan_command(root: &Path, data: &Path, facectl: &Path) -> Result<()> {
    let deployment = Deployment::load("local")?;
    let Some(endpoint_url) = local::running(root) else {
        bail!("local AWS is not running: `cargo xtask deploy --stack local` first");
    };
    let region = deployment
        .regions
        .first()
        .map(|r| r.region.clone())
        .context("the local deployment lists no region")?;
    runtime()?.block_on(scan::run_local(
        root,
        &endpoint_url,
        &deployment,
        &region,
        data,
        facectl,
    ))
}

/// `cargo xtask teardown`.
pub fn teardown_command(root: &Path, args: &teardown::TeardownArgs) -> Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    let deployment = Deployment::load(&args.stack.stack)?;
    if args.stack.is_local() && local::running(root).is_none() {
        println!(
            "local AWS is not running: nothing of {} remains",
            deployment.name
        );
        return Ok(());
    }
    if !args.yes && !args.stack.is_local() {
        if !std::io::stdin().is_terminal() {
            bail!(
                "teardown of {} deletes every resource and object: pass --yes",
                deployment.name
            );
        }
        let what = if deployment.production && !args.delete_data {
            "every resource but the data (bucket, tables)"
        } else {
            "every resource and object"
        };
        print!(
            "delete {what} of {} in {} region(s)? type the stack name: ",
            deployment.name,
            deployment.regions.len()
        );
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != deployment.name {
            bail!("not confirmed");
        }
    }
    let target = target_for(root, &args.stack)?;
    runtime()?.block_on(teardown::run(root, &target, &deployment, args.delete_data))?;
    if args.stack.is_local() {
        local::stop(root)?;
    }
    println!("tore down {}", deployment.name);
    Ok(())
}
