//! Child processes that die with their owner, free loopback ports, log tails.

use std::collections::HashSet;
use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use crate::error::{Error, Result};

/// How long a child gets to exit after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(3);

/// Ports this process has handed out, so two servers started at once in one
/// test binary never get the same one (the OS may reuse a just-freed port).
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// The pids of the servers alive in this process (spawned, not dropped),
/// for [`terminate_all`].
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Ends every server this process started and still runs, with its whole
/// tree (for the RIE, the function's bootstrap): SIGTERM, then SIGKILL to
/// whatever is left after the grace period. For a signal handler; a
/// server's drop does the same for one.
pub fn terminate_all() {
    let pids: Vec<u32> = LIVE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let trees: Vec<(u32, Vec<u32>)> = pids.iter().map(|&p| (p, descendants(p))).collect();
    for &(pid, _) in &trees {
        if let Some(p) = to_pid(pid) {
            let _ = kill_process(p, Signal::TERM);
        }
    }
    let deadline = Instant::now() + TERM_GRACE;
    while trees.iter().any(|&(pid, _)| running(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for (pid, descendants) in trees {
        for p in std::iter::once(pid).chain(descendants).filter_map(to_pid) {
            let _ = kill_process(p, Signal::KILL);
        }
    }
}

/// Installs, once per process, a SIGINT/SIGTERM/SIGHUP handler that runs
/// [`terminate_all`] and then exits as the signal would have (128 + its
/// number). Spawning the first server installs it, so moto and every RIE
/// die with the command however it is stopped: Ctrl-C, a CI timeout's
/// SIGTERM, a closed terminal. (Without it, a signal sent to the command
/// alone left its servers running, orphaned.)
pub fn stop_servers_on_signal() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            Ok(mut signals) => {
                std::thread::spawn(move || {
                    if let Some(signal) = signals.forever().next() {
                        terminate_all();
                        std::process::exit(128 + signal);
                    }
                });
            }
            Err(e) => tracing::warn!("no signal handler, servers may outlive a signal: {e}"),
        }
    });
}

/// Whether `pid` is alive (not gone, not a zombie).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .is_some_and(|i| !stat[i..].starts_with(") Z"))
    })
}

/// A free TCP port on 127.0.0.1, never handed out before by this process.
pub(crate) fn free_port() -> Result<u16> {
    for _ in 0..64 {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| Error::Http {
            what: "binding a loopback port".into(),
            message: e.to_string(),
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::Http {
                what: "reading a bound port".into(),
                message: e.to_string(),
            })?
            .port();
        let mut guard = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if guard.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
    Err(Error::Http {
        what: "finding a free loopback port".into(),
        message: "64 tries gave only ports already handed out".into(),
    })
}

/// Runs `start` up to three times: a port found free may be taken by
/// another process (an outgoing connection's ephemeral port) before our
/// server binds it, and then the server exits at once.
pub(crate) fn with_port_retries<T>(mut start: impl FnMut() -> Result<T>) -> Result<T> {
    let mut attempt = 1;
    loop {
        match start() {
            Err(Error::StartFailed { reason, .. })
                if attempt < 3 && reason.starts_with("exited") =>
            {
                tracing::debug!(attempt, %reason, "server exited while starting; new port");
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub(crate) fn port_open(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// The last `lines` lines of a log file, for error messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(text) = std::fs::read(path) else {
        return String::from("(no log)");
    };
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A spawned server whose whole process tree is ended on drop: SIGTERM
/// first (the RIE then kills its runtime itself), SIGKILL after a grace
/// period to the child and every descendant still alive.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    child: Child,
    log: PathBuf,
    what: &'static str,
}

impl ServerProcess {
    /// Spawns `command` with stdout and stderr appended to `log`.
    pub(crate) fn spawn(what: &'static str, mut command: Command, log: &Path) -> Result<Self> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
        }
        let out = File::create(log).map_err(Error::io("creating", log))?;
        let err = out.try_clone().map_err(Error::io("duplicating", log))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        stop_servers_on_signal();
        let child = command.spawn().map_err(|e| Error::StartFailed {
            what,
            reason: format!("spawning {:?}: {e}", command.get_program()),
            log: log.to_path_buf(),
            log_tail: String::new(),
        })?;
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(child.id());
        Ok(Self {
            child,
            log: log.to_path_buf(),
            what,
        })
    }

    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// `None` while running, else how it ended.
    pub(crate) fn exit_status(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown ({e})")),
        }
    }

    /// An error naming this process, with the tail of its log.
    pub(crate) fn start_failed(&self, reason: impl Into<String>) -> Error {
        Error::StartFailed {
            what: self.what,
            reason: reason.into(),
            log: self.log.clone(),
            log_tail: log_tail(&self.log, 30),
        }
    }

    /// SIGKILLs every descendant of the server (for the RIE: the function's
    /// bootstrap) and leaves the server itself running; returns their pids.
    pub(crate) fn kill_descendants(&self) -> Vec<u32> {
        let killed: Vec<u32> = descendants(self.child.id())
            .into_iter()
            .filter(|&d| to_pid(d).is_some_and(|p| kill_process(p, Signal::KILL).is_ok()))
            .collect();
        killed
    }

    /// Polls `ready` until it holds, the process exits, or `timeout` passes.
    pub(crate) fn wait_ready(
        &mut self,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status() {
                return Err(self.start_failed(format!("exited with {status}")));
            }
            if ready() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.start_failed(format!("no answer within {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let pid = self.child.id();
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|&p| p != pid);
        // Collected before the parent dies: orphans get re-parented to init.
        let descendants = descendants(pid);
        if let Some(p) = to_pid(pid) {
            let _ = kill_process(p, Signal::TERM);
        }
        let deadline = Instant::now() + TERM_GRACE;
        while self.exit_status().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.exit_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for d in descendants {
            if let Some(p) = to_pid(d) {
                let _ = kill_process(p, Signal::KILL);
            }
        }
    }
}

fn to_pid(pid: u32) -> Option<Pid> {
    i32::try_from(pid).ok().and_then(Pid::from_raw)
}

/// Every process whose ancestry leads to `root`, from /proc.
fn descendants(root: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(u32, u32)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let current = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == current)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// The parent pid from /proc/PID/stat (the field after the `(comm)`).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_never_handed_out_twice() {
        let ports: HashSet<u16> = (0..20).map(|_| free_port().unwrap()).collect();
        assert_eq!(ports.len(), 20);
    }

    #[test]
    fn drop_kills_the_child_and_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sleep.log");
        let mut command = Command::new("sh");
        command.args(["-c", "sleep 300 & echo started; wait"]);
        let mut server = ServerProcess::spawn("sleeper", command, &log).unwrap();
        server
            .wait_ready(Duration::from_secs(5), || {
                std::fs::read_to_string(&log).is_ok_and(|t| t.contains("started"))
            })
            .unwrap();
        let kids = descendants(server.child.id());
        assert_eq!(kids.len(), 1, "the shell's sleep: {kids:?}");
        drop(server);
        std::thread::sleep(Duration::from_millis(100));
        let alive = parent_of(kids[0]).is_some()
            && !std::fs::read_to_string(format!("/proc/{}/stat", kids[0]))
                .unwrap_or_default()
                .contains(") Z");
        assert!(!alive, "sleep {} survived the drop", kids[0]);
    }

    /// Set in the child of the test below: the folder to work in.
    const SIGNAL_CHILD_DIR: &str = "LOCAL_AWS_TEST_SIGNAL_CHILD";

    /// The child's part of the test below (run only by it): a server whose
    /// own child is a `sleep`, its pid written, then waiting to be killed.
    #[test]
    #[ignore = "run by a_signal_ends_the_servers_with_the_process"]
    fn signal_child() {
        let Some(dir) = std::env::var_os(SIGNAL_CHILD_DIR).map(PathBuf::from) else {
            return;
        };
        let mut command = Command::new("sh");
        command.args(["-c", "sleep 300 & echo $! > \"$1\"; wait", "sh"]);
        command.arg(dir.join("sleep.pid"));
        let _server = ServerProcess::spawn("sleeper", command, &dir.join("sleep.log")).unwrap();
        std::fs::write(dir.join("ready"), "").unwrap();
        std::thread::sleep(Duration::from_secs(60));
    }

    #[test]
    fn a_signal_ends_the_servers_with_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "process::tests::signal_child",
                "--exact",
                "--include-ignored",
            ])
            .env(SIGNAL_CHILD_DIR, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let pid_file = dir.path().join("sleep.pid");
        while !(dir.path().join("ready").exists() && pid_file.exists()) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the child never started its server"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let sleep: u32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(running(sleep), "the server's sleep is running");
        kill_process(to_pid(child.id()).unwrap(), Signal::TERM).unwrap();
        let status = child.wait().unwrap();
        // As SIGTERM would have ended it, after the handler's cleanup.
        assert_eq!(status.code(), Some(128 + 15), "{status}");
        std::thread::sleep(Duration::from_millis(100));
        assert!(!running(sleep), "sleep {sleep} outlived its process");
    }
}
