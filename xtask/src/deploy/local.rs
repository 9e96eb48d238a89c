//! The local AWS of `--stack local`: one moto server shared by deploy,
//! smoke-test and teardown, which run as separate processes.
//!
//! The first command that needs it starts `moto_server` (from the pinned
//! tools venv of `local-aws`) detached, on a free loopback port, and writes
//! `{endpoint_url, pid}` to `<deploy dir>/local/moto.json` (`target/deploy`
//! unless `$FACE_DEPLOY_DIR` names another); later commands
//! attach to that endpoint. `teardown --stack local` stops it and removes
//! the file. `$FACE_LOCAL_AWS_ENDPOINT` attaches to a server someone else
//! runs (the tests do) and is never stopped by us.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use face_contracts::env::LOCAL_AWS_ENDPOINT;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct State {
    endpoint_url: String,
    pid: u32,
}

fn state_file(root: &Path) -> PathBuf {
    super::deploy_dir(root).join("local/moto.json")
}

/// The endpoint of a running local AWS, starting one if needed.
pub fn ensure(root: &Path) -> Result<String> {
    if let Ok(endpoint) = std::env::var(LOCAL_AWS_ENDPOINT) {
        local_aws::MotoServer::attach(&endpoint)
            .with_context(|| format!("${LOCAL_AWS_ENDPOINT}"))?;
        return Ok(endpoint);
    }
    if let Some(endpoint) = running(root) {
        return Ok(endpoint);
    }
    let tools = local_aws::Tools::ensure_default().context("provisioning moto")?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let log_path = super::deploy_dir(root).join(format!("local/moto-{port}.log"));
    std::fs::create_dir_all(log_path.parent().unwrap_or(root))?;
    let log = std::fs::File::create(&log_path)?;
    let child = Command::new(&tools.moto_server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", tools.moto_server.display()))?;
    let endpoint_url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while local_aws::MotoServer::attach(&endpoint_url).is_err() {
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "moto did not answer within 60 s; see {}",
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let state = State {
        endpoint_url: endpoint_url.clone(),
        pid: child.id(),
    };
    std::fs::write(state_file(root), serde_json::to_vec_pretty(&state)?)?;
    println!(
        "local AWS: moto at {endpoint_url} (pid {}, log {})",
        state.pid,
        log_path.display()
    );
    Ok(endpoint_url)
}

/// The local gateway's port: `$FACE_LOCAL_API_PORT`, else 8450.
pub fn api_port() -> Result<u16> {
    let value = std::env::var(face_contracts::env::LOCAL_API_PORT).ok();
    Ok(face_stacks::local_api_port(value.as_deref())?)
}

/// The endpoint of the managed server if it still answers.
pub fn running(root: &Path) -> Option<String> {
    if let Ok(endpoint) = std::env::var(LOCAL_AWS_ENDPOINT) {
        return Some(endpoint);
    }
    let state: State = serde_json::from_slice(&std::fs::read(state_file(root)).ok()?).ok()?;
    local_aws::MotoServer::attach(&state.endpoint_url)
        .ok()
        .map(|_| state.endpoint_url)
}

/// Stops the managed server (not one given by `$FACE_LOCAL_AWS_ENDPOINT`).
pub fn stop(root: &Path) -> Result<()> {
    if std::env::var(LOCAL_AWS_ENDPOINT).is_ok() {
        return Ok(());
    }
    let path = state_file(root);
    let Ok(bytes) = std::fs::read(&path) else {
        return Ok(());
    };
    let state: State = serde_json::from_slice(&bytes)?;
    // Only the pid we recorded, and only if it still serves our endpoint.
    if local_aws::MotoServer::attach(&state.endpoint_url).is_ok() {
        let status = Command::new("kill").arg(state.pid.to_string()).status()?;
        if status.success() {
            println!("local AWS: stopped moto (pid {})", state.pid);
        }
    }
    std::fs::remove_file(&path)?;
    Ok(())
}
