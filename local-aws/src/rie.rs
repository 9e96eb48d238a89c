//! A real Lambda `bootstrap` under AWS's Runtime Interface Emulator.
//!
//! The RIE serves the Lambda Runtime API to the bootstrap and an invoke
//! endpoint to us; like Lambda it starts the bootstrap (init) on the first
//! invoke, so the first [`Rie::invoke`] is the cold start. Each instance gets
//! its own two loopback ports (invoke endpoint and runtime API), so several
//! functions run side by side.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use face_contracts::Architecture;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::process::{ServerProcess, free_port, log_tail, port_open, with_port_retries};
use crate::tools::Tools;

/// How long the RIE may take to listen after spawn (a few ms here).
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Variables passed through from the caller's environment, for debugging.
const PASS_THROUGH: [&str; 2] = ["RUST_LOG", "RUST_BACKTRACE"];

/// How the function is presented to the bootstrap.
#[derive(Debug, Clone)]
pub struct RieOptions {
    /// `AWS_LAMBDA_FUNCTION_NAME`, also the log file's name. Default `function`.
    pub function_name: String,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`. Default 1024.
    pub memory_mib: u32,
    /// `AWS_LAMBDA_FUNCTION_TIMEOUT`; invokes wait this long plus 10 s.
    /// Default 60.
    pub timeout_s: u32,
    /// Where the log goes. Default `target/tools/logs`.
    pub log_dir: Option<PathBuf>,
    /// What the bootstrap was built for. Default: this machine's. Another
    /// architecture runs, RIE and bootstrap, under QEMU's user-mode
    /// emulator ([`Tools::emulator_for`]): the same code, much slower.
    pub architecture: Architecture,
}

impl Default for RieOptions {
    fn default() -> Self {
        Self {
            function_name: "function".into(),
            memory_mib: 1024,
            timeout_s: 60,
            log_dir: None,
            architecture: crate::tools::host_architecture(),
        }
    }
}

/// A running RIE with its bootstrap; both are ended on drop.
#[derive(Debug)]
pub struct Rie {
    process: ServerProcess,
    port: u16,
    spawned_at: Instant,
    listening_after: Duration,
    invoke_timeout: Duration,
}

/// One invoke's outcome and its wall time (request sent → response read).
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The function's response, or the error it returned.
    pub result: Result<Value, FunctionError>,
    pub wall_time: Duration,
}

/// An error the function returned: the RIE answers 200 with a body carrying
/// `errorType` and `errorMessage`.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionError {
    pub error_type: String,
    pub error_message: String,
    /// The whole error body.
    pub body: Value,
}

impl Invocation {
    /// The response, or [`Error::Function`] when the function failed.
    pub fn ok(self) -> Result<Value> {
        self.result.map_err(|e| Error::Function {
            error_type: e.error_type,
            error_message: e.error_message,
        })
    }
}

impl Rie {
    /// Runs `bootstrap` under the RIE with [`RieOptions::default`] and the
    /// given variables (typically [`crate::MotoServer::client_env`] plus the
    /// function's own). The environment is otherwise clean, as on Lambda: the
    /// caller's variables do not leak in, except `RUST_LOG` and
    /// `RUST_BACKTRACE`. The working directory and `LAMBDA_TASK_ROOT` are the
    /// bootstrap's folder.
    pub fn start(bootstrap: &Path, env: &[(String, String)]) -> Result<Self> {
        Self::start_with(
            Tools::ensure_default()?,
            &RieOptions::default(),
            bootstrap,
            env,
        )
    }

    /// [`Rie::start`] with explicit tools and options.
    pub fn start_with(
        tools: &Tools,
        options: &RieOptions,
        bootstrap: &Path,
        env: &[(String, String)],
    ) -> Result<Self> {
        if !bootstrap.is_file() {
            return Err(Error::MissingTool(format!(
                "bootstrap {} not found (build it with `cargo xtask build`)",
                bootstrap.display()
            )));
        }
        let bootstrap =
            std::path::absolute(bootstrap).map_err(Error::io("resolving", bootstrap))?;
        let task_root = bootstrap
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        with_port_retries(|| Self::start_once(tools, options, &bootstrap, &task_root, env))
    }

    fn start_once(
        tools: &Tools,
        options: &RieOptions,
        bootstrap: &Path,
        task_root: &Path,
        env: &[(String, String)],
    ) -> Result<Self> {
        let (port, api_port) = (free_port()?, free_port()?);
        let log_dir = options
            .log_dir
            .clone()
            .unwrap_or_else(|| tools.dir.join("logs"));
        let log = log_dir.join(format!("{}-{port}.log", options.function_name));

        let rie = tools.rie_for(options.architecture)?;
        let emulator = Tools::emulator_for(options.architecture)?;
        let mut command = match &emulator {
            Some(qemu) => {
                let mut command = Command::new(qemu);
                command.arg(&rie);
                command
            }
            None => Command::new(&rie),
        };
        command
            .arg("--runtime-interface-emulator-address")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--runtime-api-address")
            .arg(format!("127.0.0.1:{api_port}"))
            // The RIE runs its arguments as the bootstrap's command line.
            .args(emulator.iter())
            .arg(bootstrap)
            .current_dir(task_root)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LAMBDA_TASK_ROOT", task_root)
            .env("AWS_LAMBDA_FUNCTION_NAME", &options.function_name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                options.memory_mib.to_string(),
            )
            .env("AWS_LAMBDA_FUNCTION_TIMEOUT", options.timeout_s.to_string())
            // Lambda sets it and the RIE does not. An RIE inits its function
            // on the first invoke, which waits for it: an on-demand start.
            .env(
                face_contracts::env::LAMBDA_INITIALIZATION_TYPE,
                face_contracts::env::ON_DEMAND,
            );
        for name in PASS_THROUGH {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command.envs(env.iter().map(|(k, v)| (k, v)));

        let spawned_at = Instant::now();
        let mut process = ServerProcess::spawn("aws-lambda-rie", command, &log)?;
        process.wait_ready(START_TIMEOUT, || port_open(port))?;
        let listening_after = spawned_at.elapsed();
        tracing::debug!(port, log = %log.display(), "RIE listening");
        Ok(Self {
            process,
            port,
            spawned_at,
            listening_after,
            invoke_timeout: Duration::from_secs(u64::from(options.timeout_s) + 10),
        })
    }

    /// `http://127.0.0.1:PORT/2015-03-31/functions/function/invocations`.
    pub fn invocations_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/2015-03-31/functions/function/invocations",
            self.port
        )
    }

    /// Invokes the function synchronously with `event`.
    ///
    /// `Ok` holds both successes and function errors (see [`Invocation`]);
    /// `Err` means the invoke itself failed (RIE gone, timeout, a non-JSON or
    /// non-200 reply), with the log's tail in the message.
    pub fn invoke(&self, event: &Value) -> Result<Invocation> {
        let url = self.invocations_url();
        // A non-200 reply is read like any other (its body says why).
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(2)))
            .timeout_global(Some(self.invoke_timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let started = Instant::now();
        let reply = agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(&event.to_string());
        let (status, body) = match reply {
            Ok(r) => (r.status().as_u16(), r.into_body().read_to_string()),
            Err(e) => return Err(self.invoke_failed(e.to_string())),
        };
        let body = body.map_err(|e| self.invoke_failed(format!("reading the reply: {e}")))?;
        let wall_time = started.elapsed();
        if status != 200 {
            return Err(self.invoke_failed(format!("HTTP {status}: {body}")));
        }
        let value: Value = serde_json::from_str(&body).map_err(|e| Error::NotJson {
            reason: e.to_string(),
            body: body.chars().take(2000).collect(),
        })?;
        Ok(Invocation {
            result: classify(value),
            wall_time,
        })
    }

    /// When the RIE process was spawned (the start of a cold start).
    pub fn spawned_at(&self) -> Instant {
        self.spawned_at
    }

    /// Spawn → the RIE accepts connections.
    pub fn listening_after(&self) -> Duration {
        self.listening_after
    }

    /// The init phase of the last cold start (bootstrap exec → its first
    /// `next` call, i.e. models loaded), from the RIE's `INIT REPORT` log
    /// line; `None` before the first invoke.
    pub fn init_duration(&self) -> Option<Duration> {
        let text = std::fs::read_to_string(self.process.log()).ok()?;
        let line = text.lines().rev().find(|l| l.contains("INIT REPORT("))?;
        let ms = line
            .split("durationMs:")
            .nth(1)?
            .trim()
            .trim_end_matches(')')
            .trim()
            .parse::<f64>()
            .ok()?;
        Duration::try_from_secs_f64(ms / 1000.0).ok()
    }

    /// Whether an invocation is running now: the log's last `INVOKE START`
    /// has no end after it yet.
    pub fn invocation_in_flight(&self) -> bool {
        let text = std::fs::read_to_string(self.process.log()).unwrap_or_default();
        let started = text.rfind("INVOKE START(");
        let done = text.rfind("INVOKE RTDONE(").max(text.rfind("Invoke DONE"));
        started.is_some() && done < started
    }

    /// SIGKILLs the function's process while an invocation is in flight, as
    /// a crash or an out-of-memory kill would end it on Lambda, and waits for
    /// the RIE to report the invocation failed (its next invoke starts a new
    /// process, a cold start). Returns the killed pids.
    pub fn kill_function_mid_invocation(&self, within: Duration) -> Result<Vec<u32>> {
        let deadline = Instant::now() + within;
        let kills_logged = || {
            std::fs::read_to_string(self.process.log())
                .unwrap_or_default()
                .matches("signal: killed")
                .count()
        };
        let before = kills_logged();
        let killed = loop {
            if Instant::now() >= deadline {
                return Err(Error::Http {
                    what: "killing the function mid-invocation".into(),
                    message: format!("no invocation was in flight within {within:?}"),
                });
            }
            if self.invocation_in_flight() {
                let killed = self.process.kill_descendants();
                if !killed.is_empty() {
                    break killed;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let reported_by = Instant::now() + Duration::from_secs(30);
        while Instant::now() < reported_by {
            if kills_logged() > before {
                return Ok(killed);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(self.invoke_failed(format!(
            "killed {killed:?}, but the RIE did not report the invocation failed"
        )))
    }

    /// The RIE's log: its own lines and the bootstrap's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        self.process.log()
    }

    /// The last `lines` lines of [`Rie::log_path`].
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(self.process.log(), lines)
    }

    fn invoke_failed(&self, message: String) -> Error {
        Error::Http {
            what: format!(
                "invoking {} (log {})",
                self.invocations_url(),
                self.process.log().display()
            ),
            message: format!("{message}\n{}", self.log_tail(30)),
        }
    }
}

/// A body with `errorType` and `errorMessage` is a function error.
fn classify(value: Value) -> Result<Value, FunctionError> {
    let error_type = value.get("errorType").and_then(Value::as_str);
    match (error_type, value.get("errorMessage")) {
        (Some(error_type), Some(message)) => Err(FunctionError {
            error_type: error_type.to_string(),
            error_message: message
                .as_str()
                .map_or_else(|| message.to_string(), str::to_string),
            body: value,
        }),
        _ => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_bodies_are_function_errors() {
        let err =
            classify(json!({"errorType": "BadInput", "errorMessage": "no face"})).unwrap_err();
        assert_eq!(err.error_type, "BadInput");
        assert_eq!(err.error_message, "no face");
    }

    #[test]
    fn other_bodies_are_successes() {
        let ok = json!({"faces": [], "errorType_count": 0});
        assert_eq!(classify(ok.clone()).unwrap(), ok);
        assert!(classify(json!({"errorType": "only a field"})).is_ok());
        assert!(classify(json!("a string")).is_ok());
    }
}
