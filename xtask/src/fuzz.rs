//! `cargo xtask fuzz`: the coverage-guided fuzz targets of `fuzz/` under
//! AFL++ (through cargo-afl, on the stable toolchain), one after the
//! other, each for a fixed time, then one line per target from AFL's
//! `fuzzer_stats`. Any crash fails the command and names its input file.
//!
//! The tools are provisioned on first use, pinned, under `target/tools/`:
//! `cargo install cargo-afl --version CARGO_AFL_VERSION --locked --root
//! target/tools/cargo-afl`, then `cargo afl config --build` (AFL++ from
//! the source cargo-afl ships, built for this rustc, without LLVM plugins:
//! rustc's own SanitizerCoverage instruments the code) with
//! `XDG_DATA_HOME=target/tools/afl`, where cargo-afl keeps AFL++. A stamp
//! records the cargo-afl version and the rustc it was built for; while it
//! matches, nothing is installed again. `fuzz/` is its own workspace,
//! built into `target/fuzz`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// cargo-afl (and the `afl` crate `fuzz/` pins to the same version),
/// pinned: it decides the AFL++ release and the instrumentation flags.
pub const CARGO_AFL_VERSION: &str = "0.18.2";

/// Every target, in the order `--target all` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "image-decode",
        what: "face-core's decode_image (JPEG, PNG, WebP, EXIF) with the default limits",
    },
    Target {
        name: "mp4-index",
        what: "face-video's VideoIndex::from_bytes, its summary and chunk plan",
    },
    Target {
        name: "mp4-sparse-header",
        what: "scan-worker's ranged header reads and index (VideoIndexes::get on in-memory S3)",
    },
    Target {
        name: "h264-chunk",
        what: "every planned chunk decoded by FrameReader from its byte span alone",
    },
    Target {
        name: "events",
        what: "the functions' payloads: S3/SQS events, direct invokes, API proxy events, authorizer",
    },
];

/// One fuzz target: a bin of `fuzz/` and its seed folder `fuzz/corpus/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub name: &'static str,
    pub what: &'static str,
}

#[derive(Debug, clap::Args)]
pub struct FuzzArgs {
    /// Target to fuzz: image-decode, mp4-index, mp4-sparse-header,
    /// h264-chunk, events, or all (each in turn, for the time given)
    #[arg(long, default_value = "all")]
    pub target: String,
    /// Minutes of fuzzing per target
    #[arg(long, conflicts_with = "seconds")]
    pub minutes: Option<u64>,
    /// Seconds of fuzzing per target (CI's brief run: `--target all
    /// --seconds 10`) [default: 60]
    #[arg(long)]
    pub seconds: Option<u64>,
    /// Memory limit of the target process in MiB (AFL's -m): an input that
    /// needs more is a crash
    #[arg(long, default_value_t = 2048)]
    pub memory_mib: u64,
    /// Time limit of one input in ms (AFL's -t); slower inputs are saved as
    /// hangs, which are listed but do not fail the run
    #[arg(long, default_value_t = 500)]
    pub timeout_ms: u64,
    /// Rewrite fuzz/corpus/ with the seed generator (fuzz/src/bin/seeds.rs)
    /// instead of fuzzing
    #[arg(long, conflicts_with_all = ["minutes", "seconds"])]
    pub seeds: bool,
}

impl FuzzArgs {
    fn seconds(&self) -> u64 {
        match (self.minutes, self.seconds) {
            (Some(m), _) => m.saturating_mul(60),
            (None, Some(s)) => s,
            (None, None) => 60,
        }
    }
}

/// The targets `--target` names.
pub fn select(target: &str) -> Result<Vec<Target>> {
    if target == "all" {
        return Ok(TARGETS.to_vec());
    }
    match TARGETS.iter().find(|t| t.name == target) {
        Some(t) => Ok(vec![*t]),
        None => bail!(
            "no fuzz target {target:?}: one of {}, or all",
            TARGETS
                .iter()
                .map(|t| t.name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// What one run left in AFL's `fuzzer_stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuzzStats {
    pub execs: u64,
    pub run_time_s: u64,
    pub crashes: u64,
    pub hangs: u64,
    /// Inputs in the queue at the end (seeds included).
    pub corpus: u64,
}

/// Reads `fuzzer_stats` (`key : value` lines). AFL++ 4 says
/// `saved_crashes`/`saved_hangs`, earlier releases `unique_*`.
pub fn parse_stats(text: &str) -> Result<FuzzStats> {
    let fields: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let number = |names: &[&str]| -> Result<u64> {
        let (name, value) = names
            .iter()
            .find_map(|n| fields.get(n).map(|v| (*n, *v)))
            .with_context(|| format!("fuzzer_stats has no {}", names.join(" or ")))?;
        value
            .parse()
            .with_context(|| format!("fuzzer_stats: {name} is {value:?}, not a number"))
    };
    Ok(FuzzStats {
        execs: number(&["execs_done"])?,
        run_time_s: number(&["run_time"])?,
        crashes: number(&["saved_crashes", "unique_crashes"])?,
        hangs: number(&["saved_hangs", "unique_hangs"])?,
        corpus: number(&["corpus_count", "paths_total"])?,
    })
}

/// The line printed per target.
pub fn summary(target: &str, stats: &FuzzStats) -> String {
    let per_s = stats.execs / stats.run_time_s.max(1);
    format!(
        "fuzz {target}: {} execs in {} s, {} crashes ({per_s} execs/s, {} hangs, corpus {})",
        stats.execs, stats.run_time_s, stats.crashes, stats.hangs, stats.corpus
    )
}

/// The inputs AFL saved in a findings folder (`crashes/`, `hangs/`): its
/// `id:...` files, not the README.
pub fn findings(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("id:"))
        })
        .collect();
    files.sort();
    files
}

/// Where the pinned tools and the builds live.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
    /// `target/tools/cargo-afl`: `cargo install --root`.
    pub cargo_afl_root: PathBuf,
    /// `target/tools/afl`: cargo-afl's `XDG_DATA_HOME` (AFL++ lives here).
    pub afl_data: PathBuf,
    /// `target/fuzz`: the fuzz workspace's `CARGO_TARGET_DIR`.
    pub target_dir: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            cargo_afl_root: root.join("target/tools/cargo-afl"),
            afl_data: root.join("target/tools/afl"),
            target_dir: root.join("target/fuzz"),
        }
    }

    pub fn crate_dir(&self) -> PathBuf {
        self.root.join("fuzz")
    }

    pub fn corpus(&self, target: &str) -> PathBuf {
        self.crate_dir().join("corpus").join(target)
    }

    pub fn out(&self, target: &str) -> PathBuf {
        self.target_dir.join("out").join(target)
    }

    pub fn binary(&self, target: &str) -> PathBuf {
        self.target_dir.join("release").join(target)
    }

    /// A command with cargo-afl on `PATH` (so `cargo afl` finds it), its
    /// AFL++ and the fuzz workspace's target folder.
    fn command(&self, program: &str) -> Command {
        let mut path = vec![self.cargo_afl_root.join("bin")];
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let mut command = Command::new(program);
        command
            .env(
                "PATH",
                std::env::join_paths(path).unwrap_or_else(|_| OsString::from("")),
            )
            .env("XDG_DATA_HOME", &self.afl_data)
            .env("CARGO_TARGET_DIR", &self.target_dir)
            .current_dir(self.crate_dir());
        command
    }
}

fn rustc_version() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn run(what: &str, command: &mut Command) -> Result<()> {
    println!("$ {command:?}");
    let status = command
        .status()
        .with_context(|| format!("{what}: starting {command:?}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Installs cargo-afl and builds AFL++ unless the stamp says both are
/// there for this rustc.
pub fn ensure_tools(layout: &Layout) -> Result<()> {
    let stamp = layout.afl_data.join(".xtask-stamp");
    let wanted = format!("cargo-afl=={CARGO_AFL_VERSION}\n{}\n", rustc_version()?);
    let cargo_afl = layout.cargo_afl_root.join("bin/cargo-afl");
    if cargo_afl.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(());
    }
    println!("fuzz: provisioning cargo-afl {CARGO_AFL_VERSION} and AFL++ (first run: minutes)");
    std::fs::create_dir_all(&layout.afl_data)?;
    let mut install = Command::new("cargo");
    install
        .args([
            "install",
            "cargo-afl",
            "--locked",
            "--version",
            CARGO_AFL_VERSION,
        ])
        .arg("--root")
        .arg(&layout.cargo_afl_root);
    run("installing cargo-afl", &mut install)?;
    // --force: a rustc update needs AFL++'s runtime rebuilt for it.
    run(
        "building AFL++ (cargo afl config --build)",
        layout
            .command("cargo")
            .args(["afl", "config", "--build", "--force"]),
    )?;
    std::fs::write(&stamp, wanted).with_context(|| format!("writing {}", stamp.display()))?;
    Ok(())
}

/// `cargo afl build --release` of the targets' bins (plus `extra`). Every
/// bin shares one set of dependencies (the AWS SDKs included), so a build
/// for one target is reused by all.
fn build(layout: &Layout, targets: &[Target], extra: &[&str]) -> Result<()> {
    let mut command = layout.command("cargo");
    command.args(["afl", "build", "--release", "--locked"]);
    // OpenH264's C++ calls fuzz/src/trace_pc.c at every block, so the
    // decoder's edges count as coverage (rustc instruments only Rust).
    let mut cxxflags = std::env::var("CXXFLAGS").unwrap_or_default();
    cxxflags.push_str(" -fsanitize-coverage=trace-pc");
    command.env("CXXFLAGS", cxxflags.trim());
    for name in targets.iter().map(|t| t.name).chain(extra.iter().copied()) {
        command.args(["--bin", name]);
    }
    run("building the fuzz targets", &mut command)
}

/// One target for `seconds`: a fresh findings folder, the seeds as input.
fn fuzz_one(layout: &Layout, target: &Target, args: &FuzzArgs) -> Result<FuzzStats> {
    let seconds = args.seconds();
    let out = layout.out(target.name);
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    std::fs::create_dir_all(&out)?;
    let log_path = layout
        .target_dir
        .join("out")
        .join(format!("{}.log", target.name));
    let log = std::fs::File::create(&log_path)?;
    println!(
        "fuzz {}: {} s on {} (log: {})",
        target.name,
        seconds,
        target.what,
        log_path.display()
    );
    let mut command = layout.command("cargo");
    command
        .args(["afl", "fuzz", "-i"])
        .arg(layout.corpus(target.name))
        .arg("-o")
        .arg(&out)
        .args(["-V", &seconds.to_string()])
        .args(["-m", &args.memory_mib.to_string()])
        .args(["-t", &args.timeout_ms.to_string()])
        .arg("--")
        .arg(layout.binary(target.name))
        // No curses screen; no CPU governor or core dump pattern checks
        // (CI machines and containers); no core pinning (the cores are
        // shared with builds and tests).
        .env("AFL_NO_UI", "1")
        .env("AFL_SKIP_CPUFREQ", "1")
        .env("AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES", "1")
        .env("AFL_NO_AFFINITY", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let status = command
        .status()
        .with_context(|| format!("starting afl-fuzz for {}", target.name))?;
    let stats_path = out.join("default/fuzzer_stats");
    if !status.success() || !stats_path.is_file() {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(25).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "afl-fuzz for {} failed ({status}; a seed that crashes or hangs stops it):\n{}",
            target.name,
            tail.join("\n")
        );
    }
    let text = std::fs::read_to_string(&stats_path)
        .with_context(|| format!("reading {}", stats_path.display()))?;
    parse_stats(&text)
}

/// How long a hang is given when run again on its own.
const HANG_RECHECK: Duration = Duration::from_secs(10);

/// Runs `binary` on `input` (stdin) once, outside AFL: how long it took,
/// or that it was still running after `limit` (then it is killed). A slow
/// input (a big image within the limits) finishes; a loop does not.
fn rerun(binary: &Path, input: &Path, limit: Duration) -> Result<String> {
    let started = Instant::now();
    let mut child = Command::new(binary)
        .stdin(std::fs::File::open(input)?)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("running {}", binary.display()))?;
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait()? {
            return Ok(format!(
                "{:.1} s alone, {status}",
                started.elapsed().as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().ok();
    child.wait().ok();
    Ok(format!(
        "STILL RUNNING after {} s alone: a loop?",
        limit.as_secs()
    ))
}

pub fn run_command(root: &Path, args: &FuzzArgs) -> Result<()> {
    let layout = Layout::new(root);
    let targets = select(&args.target)?;
    ensure_tools(&layout)?;
    if args.seeds {
        build(&layout, &[], &["seeds"])?;
        let corpus = layout.crate_dir().join("corpus");
        return run(
            "writing the seed corpus",
            Command::new(layout.binary("seeds")).arg(corpus),
        );
    }
    build(&layout, &targets, &[])?;
    let mut crashed = Vec::new();
    let mut lines = Vec::new();
    for target in &targets {
        let stats = fuzz_one(&layout, target, args)?;
        let line = summary(target.name, &stats);
        println!("{line}");
        lines.push(line);
        let default = layout.out(target.name).join("default");
        for hang in findings(&default.join("hangs")) {
            let alone = rerun(&layout.binary(target.name), &hang, HANG_RECHECK)?;
            println!("  hang (not failing; {alone}): {}", hang.display());
        }
        let crashes = findings(&default.join("crashes"));
        if stats.crashes > 0 || !crashes.is_empty() {
            crashed.push((target.name, crashes));
        }
    }
    if targets.len() > 1 {
        println!("== fuzz summary");
        for line in &lines {
            println!("{line}");
        }
    }
    if crashed.is_empty() {
        return Ok(());
    }
    for (name, files) in &crashed {
        for file in files {
            println!(
                "crash {name}: {} (replay: {} < FILE)",
                file.display(),
                layout.binary(name).display()
            );
        }
    }
    bail!(
        "crashes in {}: each becomes a regression test in the crate that owns the code",
        crashed
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATS: &str = "start_time        : 1764584400
last_update       : 1764585000
run_time          : 600
fuzzer_pid        : 4242
cycles_done       : 3
execs_done        : 1234567
execs_per_sec     : 2057.61
corpus_count      : 812
saved_crashes     : 2
saved_hangs       : 1
stability         : 99.80%
command_line      : afl-fuzz -i fuzz/corpus/events -o target/fuzz/out/events -V 600 -- x
";

    #[test]
    fn reads_afl_plus_plus_stats() {
        let stats = parse_stats(STATS).unwrap();
        assert_eq!(
            stats,
            FuzzStats {
                execs: 1_234_567,
                run_time_s: 600,
                crashes: 2,
                hangs: 1,
                corpus: 812,
            }
        );
        assert_eq!(
            summary("events", &stats),
            "fuzz events: 1234567 execs in 600 s, 2 crashes (2057 execs/s, 1 hangs, corpus 812)"
        );
    }

    #[test]
    fn reads_older_names_and_refuses_a_missing_field() {
        let old = STATS
            .replace("saved_crashes", "unique_crashes")
            .replace("saved_hangs", "unique_hangs")
            .replace("corpus_count", "paths_total");
        assert_eq!(parse_stats(&old).unwrap().crashes, 2);
        let cut = STATS.replace("execs_done", "execs_gone");
        let err = parse_stats(&cut).unwrap_err().to_string();
        assert!(err.contains("execs_done"), "{err}");
    }

    #[test]
    fn targets_are_named_and_all_is_every_one() {
        assert_eq!(select("all").unwrap().len(), TARGETS.len());
        assert_eq!(select("events").unwrap()[0].name, "events");
        let err = select("nope").unwrap_err().to_string();
        assert!(err.contains("image-decode") && err.contains("all"), "{err}");
        // Every target has a bin in fuzz/ and a seed folder.
        let root = crate::project_root();
        let manifest = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("afl = \"={CARGO_AFL_VERSION}\"")),
            "fuzz/ pins the afl crate to cargo-afl's version"
        );
        for target in TARGETS {
            assert!(
                manifest.contains(&format!("name = \"{}\"", target.name)),
                "{} has no bin in fuzz/Cargo.toml",
                target.name
            );
            let corpus = Layout::new(&root).corpus(target.name);
            assert!(
                std::fs::read_dir(&corpus).is_ok_and(|mut d| d.next().is_some()),
                "{} has no seeds",
                corpus.display()
            );
        }
    }

    #[test]
    fn the_fuzz_crate_is_outside_the_workspace() {
        let root = crate::project_root();
        let text = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        let manifest: toml::Table = toml::from_str(&text).unwrap();
        let list = |key: &str| -> Vec<String> {
            manifest["workspace"]
                .get(key)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        assert!(list("exclude").contains(&"fuzz".to_string()));
        // The targets' bodies (`fuzz-targets/`) are a member; the AFL crate
        // is not.
        assert!(
            !list("members")
                .iter()
                .any(|m| m == "fuzz" || m.starts_with("fuzz/"))
        );
        assert!(list("members").contains(&"fuzz-targets".to_string()));
        // Its own workspace, so cargo never walks up to the root's.
        let fuzz = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).unwrap();
        assert!(fuzz.lines().any(|l| l.trim() == "[workspace]"));
    }

    #[test]
    fn only_afl_id_files_are_findings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("README.txt"), "").unwrap();
        std::fs::write(dir.path().join("id:000001,sig:06"), "").unwrap();
        std::fs::write(dir.path().join("id:000000,sig:11"), "").unwrap();
        let names: Vec<String> = findings(dir.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["id:000000,sig:11", "id:000001,sig:06"]);
        assert!(findings(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn a_hang_run_again_says_whether_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("id:000000");
        std::fs::write(&input, "x").unwrap();
        let limit = Duration::from_millis(300);
        let ends = rerun(Path::new("/bin/cat"), &input, limit).unwrap();
        assert!(ends.contains("s alone"), "{ends}");
        let never = rerun(Path::new("/usr/bin/yes"), &input, limit).unwrap();
        assert!(never.starts_with("STILL RUNNING"), "{never}");
    }

    #[test]
    fn time_defaults_to_a_minute() {
        let args = |minutes, seconds| FuzzArgs {
            target: "all".into(),
            minutes,
            seconds,
            memory_mib: 2048,
            timeout_ms: 500,
            seeds: false,
        };
        assert_eq!(args(None, None).seconds(), 60);
        assert_eq!(args(Some(10), None).seconds(), 600);
        assert_eq!(args(None, Some(10)).seconds(), 10);
    }
}
