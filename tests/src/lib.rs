//! Helpers of the end-to-end tests: the built function artifacts, unpacked
//! as Lambda would, and the labelled data beside the checkout.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use face_contracts::Architecture;

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The labelled development set: `$FACE_DATA_DIR`, else `../shared/data`
/// beside the checkout. Missing data is a failure, never a skip.
pub fn data(rel: &str) -> Vec<u8> {
    let path = data_path(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (set FACE_DATA_DIR)", path.display()))
}

/// Where [`data`] reads `rel` from.
pub fn data_path(rel: &str) -> PathBuf {
    data_dir().join(rel)
}

/// The labelled data folder: `$FACE_DATA_DIR`, else `../shared/data`.
pub fn data_dir() -> PathBuf {
    devset::data_dir(None, &workspace())
}

/// The zip `cargo xtask build --arch <arch>` made for `function`.
pub fn artifact(function: &str, arch: Architecture) -> PathBuf {
    workspace()
        .join("target/lambda-dist")
        .join(arch.as_str())
        .join(format!("{function}.zip"))
}

/// Unpacks a function's zip into `dest` as Lambda unpacks it into
/// `/var/task`, and returns the path of its `bootstrap`.
pub fn unpack(function: &str, arch: Architecture, dest: &Path) -> Result<PathBuf> {
    let zip_path = artifact(function, arch);
    let file = std::fs::File::open(&zip_path).with_context(|| {
        format!(
            "{} is missing: run `cargo xtask build --arch {arch}` first",
            zip_path.display()
        )
    })?;
    let mut archive =
        zip::ZipArchive::new(file).with_context(|| format!("reading {}", zip_path.display()))?;
    archive
        .extract(dest)
        .with_context(|| format!("unpacking {}", zip_path.display()))?;
    Ok(dest.join("bootstrap"))
}

/// Unpacks `function`'s x86_64 artifact into `dir/<name>` and runs it
/// under the Runtime Interface Emulator as `name`, with `env`.
pub fn start_function(
    function: &str,
    name: &str,
    dir: &Path,
    env: &[(String, String)],
) -> Result<local_aws::Rie> {
    start_function_for(Architecture::X86_64, function, name, dir, env)
}

/// [`start_function`] with `arch`'s artifact: on another machine than
/// its own, RIE and bootstrap run under QEMU's user-mode emulator.
pub fn start_function_for(
    arch: Architecture,
    function: &str,
    name: &str,
    dir: &Path,
    env: &[(String, String)],
) -> Result<local_aws::Rie> {
    let bootstrap = unpack(function, arch, &dir.join(name))?;
    let options = local_aws::RieOptions {
        function_name: name.into(),
        memory_mib: 2048,
        // Emulated, a cold start and a video chunk take tens of seconds.
        timeout_s: if Architecture::host() == Some(arch) {
            120
        } else {
            600
        },
        log_dir: None,
        architecture: arch,
    };
    Ok(local_aws::Rie::start_with(
        local_aws::Tools::ensure_default()?,
        &options,
        &bootstrap,
        env,
    )?)
}

/// The data bucket of the function tests.
pub const BUCKET: &str = "faces-data";
/// Their people table (`collection`, `person`).
pub const PEOPLE: &str = "faces-people";
/// Their results table (`result_id`).
pub const RESULTS: &str = "faces-results";

/// What every face function needs, made directly with the SDK on moto (the
/// stacks' own deployment is tested by `cargo xtask deploy --stack
/// local`): the data bucket, the people and results tables and the FIFO
/// results queue.
#[derive(Debug)]
pub struct FunctionResources {
    pub s3: aws_sdk_s3::Client,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub results_queue: String,
}

impl FunctionResources {
    pub async fn provision(moto: &local_aws::MotoServer) -> Result<Self> {
        use aws_sdk_dynamodb::types::KeyType;
        let config = moto.sdk_config().await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        let dynamo = aws_sdk_dynamodb::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        s3.create_bucket().bucket(BUCKET).send().await?;
        let people_keys = [("collection", KeyType::Hash), ("person", KeyType::Range)];
        create_table(&dynamo, PEOPLE, &people_keys).await?;
        create_table(&dynamo, RESULTS, &[("result_id", KeyType::Hash)]).await?;
        let results_queue = sqs
            .create_queue()
            .queue_name("faces-results.fifo")
            .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
            .send()
            .await?
            .queue_url
            .context("CreateQueue answered no URL")?;
        Ok(Self {
            s3,
            dynamo,
            sqs,
            results_queue,
        })
    }

    /// moto's client variables and the functions' own for these resources.
    pub fn function_env(&self, moto: &local_aws::MotoServer) -> Vec<(String, String)> {
        use face_contracts::env as vars;
        let mut env = moto.client_env();
        for (name, value) in [
            (vars::BUCKET, BUCKET),
            (vars::PEOPLE_TABLE, PEOPLE),
            (vars::RESULTS_TABLE, RESULTS),
            (vars::RESULTS_QUEUE_URL, self.results_queue.as_str()),
        ] {
            env.push((name.to_string(), value.to_string()));
        }
        env
    }

    /// Uploads `bytes` as `key` into the data bucket.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.s3
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from(bytes))
            .send()
            .await
            .with_context(|| format!("putting {key}"))?;
        Ok(())
    }
}

/// Creates an on-demand table whose keys are strings: `(name, HASH|RANGE)`.
pub async fn create_table(
    dynamo: &aws_sdk_dynamodb::Client,
    name: &str,
    keys: &[(&str, aws_sdk_dynamodb::types::KeyType)],
) -> Result<()> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, ScalarAttributeType,
    };
    let mut create = dynamo
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for (key, kind) in keys {
        create = create
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(*key)
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(*key)
                    .key_type(kind.clone())
                    .build()?,
            );
    }
    create
        .send()
        .await
        .with_context(|| format!("creating table {name}"))?;
    Ok(())
}
