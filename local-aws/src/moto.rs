//! moto server on loopback: AWS's APIs (S3, DynamoDB, SQS, IAM, Lambda,
//! CloudFormation, ...) in one local process.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::process::{ServerProcess, free_port, with_port_retries};
use crate::tools::Tools;

/// How long moto may take to answer after spawn (about 1 s here).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The region the harness uses unless told otherwise.
pub const DEFAULT_REGION: &str = "us-east-1";

/// A moto server: started and owned (killed on drop), or attached to.
#[derive(Debug)]
pub struct MotoServer {
    endpoint: String,
    process: Option<ServerProcess>,
}

impl MotoServer {
    /// Starts `moto_server -H 127.0.0.1 -p PORT` on a free port, with IAM's
    /// managed policies loaded, from the tools venv (provisioned if needed),
    /// and waits until it answers. Its log is `target/tools/logs/moto-PORT.log`.
    pub fn start() -> Result<Self> {
        Self::start_with(Tools::ensure_default()?)
    }

    /// [`MotoServer::start`] with explicit tools.
    pub fn start_with(tools: &Tools) -> Result<Self> {
        with_port_retries(|| Self::start_once(tools))
    }

    fn start_once(tools: &Tools) -> Result<Self> {
        let port = free_port()?;
        let log = tools.dir.join("logs").join(format!("moto-{port}.log"));
        let mut command = Command::new(&tools.moto_server);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true");
        let mut process = ServerProcess::spawn("moto_server", command, &log)?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let probe = endpoint.clone();
        process.wait_ready(START_TIMEOUT, || answers(&probe).is_ok())?;
        tracing::debug!(%endpoint, "moto server started");
        Ok(Self {
            endpoint,
            process: Some(process),
        })
    }

    /// Uses a moto server that is already running at `endpoint_url` (e.g.
    /// `http://127.0.0.1:5000`); nothing is killed on drop.
    pub fn attach(endpoint_url: &str) -> Result<Self> {
        let endpoint = endpoint_url.trim_end_matches('/').to_string();
        answers(&endpoint)?;
        Ok(Self {
            endpoint,
            process: None,
        })
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint_url(&self) -> &str {
        &self.endpoint
    }

    /// The server's log file, when this harness started it.
    pub fn log_path(&self) -> Option<PathBuf> {
        self.process.as_ref().map(|p| p.log().to_path_buf())
    }

    /// Forgets every resource of every service (`POST /moto-api/reset`).
    pub fn reset(&self) -> Result<()> {
        let url = format!("{}/moto-api/reset", self.endpoint);
        agent()
            .post(&url)
            .send_empty()
            .map_err(|e| http_error(&url, e))?;
        Ok(())
    }

    /// What a process needs to talk to this server as if it were AWS:
    /// `AWS_ENDPOINT_URL`, dummy credentials (`testing`), `AWS_REGION` and
    /// `AWS_DEFAULT_REGION` ([`DEFAULT_REGION`]). Give it to [`crate::Rie`]
    /// together with the function's own variables.
    pub fn client_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_SESSION_TOKEN", "testing"),
            ("AWS_REGION", DEFAULT_REGION),
            ("AWS_DEFAULT_REGION", DEFAULT_REGION),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// An SDK config aimed at this server: its endpoint, test credentials,
    /// [`DEFAULT_REGION`]. For S3 build the client with
    /// `aws_sdk_s3::config::Builder::from(&config).force_path_style(true)`.
    pub async fn sdk_config(&self) -> face_sdk_config::SdkConfig {
        face_sdk_config::local_config(&self.endpoint, DEFAULT_REGION).await
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_millis(500)))
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// `GET /moto-api/` answers 200 once moto serves requests.
fn answers(endpoint: &str) -> Result<()> {
    let url = format!("{endpoint}/moto-api/");
    agent()
        .get(&url)
        .call()
        .map(drop)
        .map_err(|e| http_error(&url, e))
}

fn http_error(url: &str, e: ureq::Error) -> Error {
    Error::Http {
        what: format!("moto at {url}"),
        message: e.to_string(),
    }
}
