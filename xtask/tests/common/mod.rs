//! What the local-stack tests share: running the real `cargo xtask` binary
//! against their moto server, the local gateway (`cargo xtask serve`), API
//! calls and keys.

// Each test file compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use local_aws::MotoServer;
use serde_json::{Value, json};

/// The deploy state (`$FACE_DEPLOY_DIR`) of the test that owns `moto`: its
/// own, under cargo's temporary folder, so local-stack tests can run side
/// by side and never touch a developer's `target/deploy`. Keyed by this
/// process and moto's port, both unique while the test runs.
pub fn deploy_dir(moto: &MotoServer) -> std::path::PathBuf {
    let port = moto
        .endpoint_url()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("deploy-{}-{port}", std::process::id()))
}

/// The environment of every xtask and facectl the tests run against `moto`.
pub fn stack_env(moto: &MotoServer) -> [(&'static str, std::ffi::OsString); 2] {
    [
        (
            face_contracts::env::LOCAL_AWS_ENDPOINT,
            moto.endpoint_url().into(),
        ),
        (
            face_contracts::env::DEPLOY_DIR,
            deploy_dir(moto).into_os_string(),
        ),
    ]
}

/// `moto`'s deploy record of the local stack (`<region>.json`).
pub fn local_record(moto: &MotoServer) -> Value {
    let path = deploy_dir(moto).join("face-local/us-east-1.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("a deploy record")
}

/// `cargo xtask ARGS` against `moto`, its output echoed to the test log.
pub fn xtask(moto: &MotoServer, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .envs(stack_env(moto))
        .output()
        .expect("running xtask");
    eprintln!(
        "$ xtask {}\n{}{}",
        args.join(" "),
        // Never echo a created key into the test log.
        if args.contains(&"create") {
            "(stdout withheld: it holds a key)\n".into()
        } else {
            String::from_utf8_lossy(&out.stdout)
        },
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The stdout of a command that must have succeeded.
pub fn ok(out: &Output) -> String {
    assert!(out.status.success(), "xtask failed: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `cargo xtask api-key create`: the key is the last line of stdout.
pub fn create_key(moto: &MotoServer, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["api-key", "create", "--stack", "local", "--name", name];
    args.extend_from_slice(extra);
    let stdout = ok(&xtask(moto, &args));
    let key = stdout.lines().last().unwrap_or_default().trim().to_string();
    assert!(key.starts_with("fk_") && key.len() > 20, "not a key");
    key
}

/// `cargo xtask serve`, stopped when dropped (its stdin closes).
pub struct Gateway {
    child: Child,
    stdin: Option<ChildStdin>,
    pub url: String,
}

impl Gateway {
    pub fn start(moto: &MotoServer) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args([
                "serve",
                "--stack",
                "local",
                "--port",
                "0",
                "--exit-on-stdin-eof",
            ])
            .envs(stack_env(moto))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting xtask serve");
        let stdin = child.stdin.take();
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    eprintln!("serve: {line}");
                    if let Some(url) = line.strip_prefix("api_url: ") {
                        break url.trim().to_string();
                    }
                }
                _ => panic!("xtask serve ended before printing api_url"),
            }
        };
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("serve: {line}");
            }
        });
        Gateway { child, stdin, url }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client whose 4xx and 5xx replies come back as replies, with
/// their bodies (the error contract is what the tests read).
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(180)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// One request; any status comes back with its JSON body.
pub fn call(method: &str, url: &str, key: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let request = match body {
        Some(b) => request
            .header("content-type", "application/json")
            .body(b.to_string()),
        None => request.body(String::new()),
    };
    read(agent().run(request.expect("a valid request")))
}

pub fn read(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
    let response = match response {
        Ok(r) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = response.status().as_u16();
    let text = response.into_body().read_to_string().expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
    (status, body)
}

pub fn b64(bytes: &[u8]) -> Value {
    json!({ "base64": base64::engine::general_purpose::STANDARD.encode(bytes) })
}

/// The `facectl` binary beside the xtask's (the workspace's test build
/// makes it with `--features facectl/cloud`: these tests use its cloud
/// commands), run from the checkout where `--stack local` finds the deploy
/// record, with `key` as `$FACE_API_KEY`.
pub fn facectl(moto: &MotoServer, key: &str, args: &[&str]) -> Output {
    facectl_with_env(moto, key, &[], args)
}

/// [`facectl`] with extra environment, e.g. `moto.client_env()` for the
/// commands that read AWS directly (`results`, `scan-status`).
pub fn facectl_with_env(
    moto: &MotoServer,
    key: &str,
    env: &[(String, String)],
    args: &[&str],
) -> Output {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_xtask")).with_file_name("facectl");
    let out = Command::new(&bin)
        .args(args)
        .current_dir(local_aws::workspace_root())
        .envs(stack_env(moto))
        .env("FACE_API_KEY", key)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (built by the workspace's test build; alone: cargo build -p facectl --features cloud)",
                bin.display()
            )
        });
    eprintln!(
        "$ facectl {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
