//! `cargo xtask build`: every Lambda function as a static musl `bootstrap`
//! through cargo-lambda (from the managed tools venv, with zig as linker),
//! packaged per architecture as `target/lambda-dist/<arch>/<function>.zip`
//! (`bootstrap` + `models/`), plus the same files unpacked beside it in
//! `target/lambda-dist/<arch>/<function>/`, the layout of `/var/task`, which
//! the local runs (RIE) use as is. `--profile host` packages this
//! machine's own dev binaries instead, for the local stack only.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use face_contracts::Architecture;
use local_aws::Tools;
use zip::write::SimpleFileOptions;

use crate::blobs;

/// The detector and recognizer every face function runs.
const FACE_MODELS: &[&str] = &[
    "yunet_s_dynamic.onnx",
    "dlib_face_recognition_resnet_model_v1.onnx",
];

/// A Lambda function: its crate (whose binary has the same name) and the
/// model files its artifact carries. Add new functions here.
#[derive(Debug, Clone, Copy)]
pub struct Function {
    pub name: &'static str,
    pub models: &'static [&'static str],
}

/// Every function of lambdas/README.md, in build order.
pub const FUNCTIONS: &[Function] = &[
    Function {
        name: "enroll",
        models: FACE_MODELS,
    },
    Function {
        name: "recognize",
        models: FACE_MODELS,
    },
    Function {
        name: "scan-worker",
        models: FACE_MODELS,
    },
    // The HTTPS API's handler: detect, compare, enroll, search.
    Function {
        name: "api",
        models: FACE_MODELS,
    },
    // Checks `x-api-key` against the keys table; runs no model.
    Function {
        name: "authorizer",
        models: &[],
    },
];

/// Lambda's limit for a zip uploaded directly (not through S3).
const MAX_ZIP_BYTES: u64 = 50 * 1024 * 1024;
/// Lambda's limit for the unzipped function.
const MAX_UNZIPPED_BYTES: u64 = 250 * 1024 * 1024;
/// Zip entries get this date so the same files give the same zip (and the
/// same code hash when deploying).
const ZIP_DATE: (u16, u8, u8) = (1980, 1, 1);

/// How `cargo xtask build` builds for each of Lambda's architectures.
trait BuildTarget {
    fn rust_target(self) -> &'static str;
    fn rustflags(self) -> &'static str;
    fn lambda_dir(self, target: &Path) -> PathBuf;
}

impl BuildTarget for Architecture {
    fn rust_target(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64-unknown-linux-musl",
            Architecture::Arm64 => "aarch64-unknown-linux-musl",
        }
    }

    /// The floor of Lambda's hosts, never the build host's CPU: x86-64-v3
    /// (AVX2, as in .cargo/config.toml) and Graviton2 (Neoverse N1). Passed
    /// as RUSTFLAGS because cargo-lambda otherwise sets its own target-cpu
    /// there, which would also hide the config file's.
    fn rustflags(self) -> &'static str {
        match self {
            Architecture::X86_64 => "-C target-cpu=x86-64-v3",
            Architecture::Arm64 => "-C target-cpu=neoverse-n1",
        }
    }

    /// Where cargo-lambda puts `<function>/bootstrap`: its default for
    /// x86_64 (lambdas/README.md), a folder of its own for arm64.
    fn lambda_dir(self, target: &Path) -> PathBuf {
        match self {
            Architecture::X86_64 => target.join("lambda"),
            Architecture::Arm64 => target.join("lambda-arm64"),
        }
    }
}

/// `--arch`: Lambda's names (`x86_64`, `arm64`).
pub fn parse_arch(name: &str) -> Result<Architecture, String> {
    Architecture::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Architecture::ALL.map(Architecture::as_str).into();
        format!("expected one of {}", names.join(", "))
    })
}

/// The cargo profile of a build (Cargo.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// What ships: LTO, one codegen unit.
    Release,
    /// The test gate's: release without LTO, parallel codegen.
    Ci,
    /// For the local stack only (x86_64 Linux): the dev profile for this
    /// machine's own target, glibc, from the workspace's build, so every
    /// dependency is the one xtask and facectl were built with and the
    /// functions cost a link instead of a second build of everything (15
    /// min cold on 2 cores for `ci`). Never shipped: a deploy to AWS
    /// rebuilds with `release`.
    Host,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Ci => "ci",
            Profile::Host => "host",
        }
    }

    /// What the local stack builds for `arch` when its zips are missing:
    /// [`Profile::Host`] where this machine's own binaries are that
    /// architecture's (x86_64 Linux), else `ci`.
    pub fn local_default(arch: Architecture) -> Profile {
        if HOST_IS_X86_64_LINUX && arch == Architecture::X86_64 {
            Profile::Host
        } else {
            Profile::Ci
        }
    }

    /// `--release` keeps cargo-lambda's own release settings (as before
    /// the `ci` profile existed); any other profile is named.
    fn cargo_lambda_args(self) -> &'static [&'static str] {
        match self {
            Profile::Release => &["--release"],
            Profile::Ci => &["--profile", "ci"],
            // Not a cargo-lambda build (see `build_on_host`); named for
            // completeness.
            Profile::Host => &["--profile", "dev"],
        }
    }
}

/// Whether xtask runs on an x86_64 Linux machine, whose own binaries the
/// x86_64 RIE runs as they are.
const HOST_IS_X86_64_LINUX: bool = cfg!(all(target_os = "linux", target_arch = "x86_64"));

/// The file in `target/lambda-dist/<arch>/` naming the profile its
/// artifacts were built with.
const PROFILE_MARKER: &str = "PROFILE";

/// The profile the artifacts of `arch` were last built with.
pub fn built_profile(root: &Path, arch: Architecture) -> Option<Profile> {
    let dist = crate::target_dir(root)
        .join("lambda-dist")
        .join(arch.as_str());
    let name = std::fs::read_to_string(dist.join(PROFILE_MARKER)).ok()?;
    [Profile::Release, Profile::Ci, Profile::Host]
        .into_iter()
        .find(|p| p.name() == name.trim())
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Lambda architecture to build for: x86_64 or arm64
    #[arg(long, value_parser = parse_arch, default_value = "x86_64")]
    pub arch: Architecture,
    /// Cargo profile
    #[arg(long, value_enum, default_value_t = Profile::Release)]
    pub profile: Profile,
    /// Build only these functions (repeatable) [default: all]
    #[arg(long = "function", value_name = "NAME")]
    pub functions: Vec<String>,
}

/// One packaged function.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub function: &'static str,
    /// `target/lambda-dist/<arch>/<function>.zip`.
    pub zip: PathBuf,
    /// `target/lambda-dist/<arch>/<function>/` (`bootstrap`, `models/`).
    pub unpacked: PathBuf,
    pub zip_bytes: u64,
    pub unzipped_bytes: u64,
}

impl Artifact {
    /// The unpacked `bootstrap`, to run under the RIE.
    pub fn bootstrap(&self) -> PathBuf {
        self.unpacked.join("bootstrap")
    }
}

pub fn run(root: &Path, args: &BuildArgs) -> Result<()> {
    let artifacts = build(root, args.arch, args.profile, &args.functions)?;
    println!(
        "{:<12} {:>12} {:>12}  zip",
        "function", "zip MB", "unzipped MB"
    );
    for a in &artifacts {
        println!(
            "{:<12} {:>12.2} {:>12.2}  {}",
            a.function,
            mb(a.zip_bytes),
            mb(a.unzipped_bytes),
            a.zip.display()
        );
    }
    Ok(())
}

/// Builds and packages `functions` (all when empty) for `arch`.
pub fn build(
    root: &Path,
    arch: Architecture,
    profile: Profile,
    functions: &[String],
) -> Result<Vec<Artifact>> {
    let selected = select(functions)?;
    let models_dir = ensure_models(root, &selected)?;
    let target = crate::target_dir(root);
    let started = Instant::now();
    let bootstraps = if profile == Profile::Host {
        build_on_host(root, arch, &selected)?
    } else {
        build_with_cargo_lambda(root, arch, profile, &selected)?
    };
    eprintln!("== built in {:.0} s", started.elapsed().as_secs_f64());

    let dist = target.join("lambda-dist").join(arch.as_str());
    std::fs::create_dir_all(&dist)?;
    // Written before packaging: a half-packaged dist never claims `release`.
    std::fs::write(dist.join(PROFILE_MARKER), "unknown")?;
    let mut artifacts = Vec::new();
    for (f, bootstrap) in selected.iter().zip(&bootstraps) {
        let bytes = std::fs::read(bootstrap).with_context(|| {
            format!(
                "the build reported success but {} is unreadable",
                bootstrap.display()
            )
        })?;
        check_bootstrap(f.name, &bytes)?;
        artifacts.push(package(f, &bytes, &models_dir, &dist)?);
    }
    std::fs::write(dist.join(PROFILE_MARKER), profile.name())?;
    for a in &artifacts {
        ensure!(
            a.zip_bytes <= MAX_ZIP_BYTES,
            "{} is {:.1} MB, over Lambda's 50 MB direct-upload limit",
            a.zip.display(),
            mb(a.zip_bytes)
        );
        ensure!(
            a.unzipped_bytes <= MAX_UNZIPPED_BYTES,
            "{} unzips to {:.1} MB, over Lambda's 250 MB limit",
            a.zip.display(),
            mb(a.unzipped_bytes)
        );
    }
    Ok(artifacts)
}

/// [`Profile::Host`]: the functions' binaries from the workspace's own dev
/// build (`--workspace --features facectl/cloud`, the feature set xtask
/// and the demo's facectl are built with, so no dependency is built
/// again); their paths, in `selected`'s order.
fn build_on_host(root: &Path, arch: Architecture, selected: &[Function]) -> Result<Vec<PathBuf>> {
    ensure!(
        HOST_IS_X86_64_LINUX && arch == Architecture::X86_64,
        "the host profile builds this machine's own binaries, which only an x86_64 Linux \
         machine runs under the x86_64 RIE: use --profile ci"
    );
    eprintln!(
        "== cargo build --workspace --features facectl/cloud (dev profile, this machine's target): {}",
        selected
            .iter()
            .map(|f| f.name)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut command = crate::command_from_a_shell("cargo");
    command
        .current_dir(root)
        .args(["build", "--workspace", "--features", "facectl/cloud"]);
    for f in selected {
        command.args(["--bin", f.name]);
    }
    let status = command.status().context("running cargo build")?;
    ensure!(status.success(), "cargo build failed ({status})");
    let debug = crate::target_dir(root).join("debug");
    Ok(selected.iter().map(|f| debug.join(f.name)).collect())
}

/// OpenH264's build script compiles its x86 assembly with `nasm` and, when
/// `nasm` is missing, silently builds the plain C decoder instead: 1.5x
/// slower here (the 1080p street clip, `bench-scan`: 18.1 against 12.3 ms
/// per frame to decode). Says so before an x86_64 build; arm64's NEON
/// assembly needs no `nasm`.
pub fn warn_if_no_nasm() {
    let found = std::process::Command::new("nasm")
        .arg("-v")
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        eprintln!(
            "warning: nasm not found: OpenH264 builds without its x86 assembly and decodes \
             video about 1.5x slower (apt-get install nasm, then cargo clean -p openh264-sys2)"
        );
    }
}

/// The static musl bootstraps of `selected` through cargo-lambda (with zig
/// as linker); their paths, in `selected`'s order.
fn build_with_cargo_lambda(
    root: &Path,
    arch: Architecture,
    profile: Profile,
    selected: &[Function],
) -> Result<Vec<PathBuf>> {
    let tools = Tools::ensure_default().context("provisioning cargo-lambda and zig")?;
    if matches!(arch, Architecture::X86_64) {
        warn_if_no_nasm();
    }
    let lambda_dir = arch.lambda_dir(&crate::target_dir(root));
    eprintln!(
        "== cargo lambda build --profile {} --target {} ({}); a cold build takes minutes",
        profile.name(),
        arch.rust_target(),
        selected
            .iter()
            .map(|f| f.name)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut command = crate::command_from_a_shell(&tools.cargo_lambda);
    command
        .current_dir(root)
        .args(["lambda", "build"])
        .args(profile.cargo_lambda_args())
        .args(["--target", arch.rust_target()])
        .arg("--lambda-dir")
        .arg(&lambda_dir)
        .env("PATH", tools.path_env())
        .env("RUSTFLAGS", arch.rustflags());
    for f in selected {
        command.args(["--package", f.name]);
    }
    let status = command
        .status()
        .with_context(|| format!("running {}", tools.cargo_lambda.display()))?;
    ensure!(status.success(), "cargo lambda build failed ({status})");
    Ok(selected
        .iter()
        .map(|f| lambda_dir.join(f.name).join("bootstrap"))
        .collect())
}

fn select(names: &[String]) -> Result<Vec<Function>> {
    if names.is_empty() {
        return Ok(FUNCTIONS.to_vec());
    }
    names
        .iter()
        .map(|name| {
            FUNCTIONS
                .iter()
                .find(|f| f.name == name)
                .copied()
                .with_context(|| {
                    let known: Vec<_> = FUNCTIONS.iter().map(|f| f.name).collect();
                    format!("unknown function {name:?}; known: {}", known.join(", "))
                })
        })
        .collect()
}

/// `blobs/`, fetched first when a model the functions need is missing.
fn ensure_models(root: &Path, functions: &[Function]) -> Result<PathBuf> {
    let dir = root.join("blobs");
    let missing = functions
        .iter()
        .flat_map(|f| f.models)
        .any(|m| !dir.join(m).is_file());
    if missing {
        eprintln!("== fetching the model blobs");
        blobs::fetch(root, &blobs::FetchArgs::default())?;
    }
    for model in functions.iter().flat_map(|f| f.models) {
        ensure!(
            dir.join(model).is_file(),
            "{} is missing after cargo xtask fetch-blobs",
            dir.join(model).display()
        );
    }
    Ok(dir)
}

/// A bootstrap must be a static ELF that links mimalloc: musl's own
/// allocator halves tract's speed, and an unused mimalloc would have been
/// dropped by LTO, so its presence means it is the global allocator.
fn check_bootstrap(function: &str, bytes: &[u8]) -> Result<()> {
    ensure!(
        bytes.starts_with(b"\x7fELF"),
        "{function}: bootstrap is not an ELF executable"
    );
    if !contains(bytes, b"mimalloc") {
        bail!(
            "{function}: the bootstrap does not link mimalloc; add \
             `#[global_allocator] static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;`"
        );
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Writes the zip (atomically) and the unpacked folder.
fn package(f: &Function, bootstrap: &[u8], models_dir: &Path, dist: &Path) -> Result<Artifact> {
    let unpacked = dist.join(f.name);
    let models_out = unpacked.join("models");
    std::fs::create_dir_all(&models_out)
        .with_context(|| format!("creating {}", models_out.display()))?;
    write_executable(&unpacked.join("bootstrap"), bootstrap)?;

    let zip_path = dist.join(format!("{}.zip", f.name));
    let partial = dist.join(format!(".{}.zip.partial", f.name));
    let file = File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut zip = zip::ZipWriter::new(file);
    let date = zip::DateTime::from_date_and_time(ZIP_DATE.0, ZIP_DATE.1, ZIP_DATE.2, 0, 0, 0)
        .map_err(|e| anyhow::anyhow!("zip date: {e}"))?;
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(date);
    let mut unzipped_bytes = bootstrap.len() as u64;
    zip.start_file("bootstrap", options.unix_permissions(0o755))?;
    zip.write_all(bootstrap)?;
    zip.add_directory("models/", options.unix_permissions(0o755))?;
    for model in f.models {
        let source = models_dir.join(model);
        let data =
            std::fs::read(&source).with_context(|| format!("reading {}", source.display()))?;
        unzipped_bytes += data.len() as u64;
        zip.start_file(format!("models/{model}"), options.unix_permissions(0o644))?;
        zip.write_all(&data)?;
        let copy = models_out.join(model);
        std::fs::write(&copy, &data).with_context(|| format!("writing {}", copy.display()))?;
    }
    zip.finish()
        .with_context(|| format!("finishing {}", partial.display()))?;
    std::fs::rename(&partial, &zip_path)
        .with_context(|| format!("renaming into {}", zip_path.display()))?;
    let zip_bytes = std::fs::metadata(&zip_path)?.len();
    Ok(Artifact {
        function: f.name,
        zip: zip_path,
        unpacked,
        zip_bytes,
        unzipped_bytes,
    })
}

fn write_executable(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // Replace, never write through: a running RIE may have it open.
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&partial, path).with_context(|| format!("renaming into {}", path.display()))
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_has_a_crate_with_a_binary_of_its_name() {
        let root = crate::project_root();
        for f in FUNCTIONS {
            let manifest = root.join("lambdas").join(f.name).join("Cargo.toml");
            let text = std::fs::read_to_string(&manifest)
                .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
            assert!(
                text.contains(&format!("name = \"{}\"", f.name)),
                "{}",
                manifest.display()
            );
        }
    }

    #[test]
    fn unknown_functions_are_refused_by_name() {
        let err = select(&["nope".into()]).unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("recognize"), "{err}");
        assert_eq!(select(&[]).unwrap().len(), FUNCTIONS.len());
    }

    #[test]
    fn every_function_of_the_stack_is_built_and_only_they() {
        let built: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
        let stacked: Vec<&str> = face_stacks::FunctionName::ALL
            .iter()
            .map(|f| f.as_str())
            .collect();
        assert_eq!(built, stacked);
        let authorizer = FUNCTIONS.iter().find(|f| f.name == "authorizer").unwrap();
        assert!(authorizer.models.is_empty());
    }

    #[test]
    fn a_bootstrap_without_mimalloc_is_refused() {
        let err = check_bootstrap("f", b"\x7fELF plain musl").unwrap_err();
        assert!(err.to_string().contains("mimalloc"));
        assert!(check_bootstrap("f", b"\x7fELF ... mimalloc ...").is_ok());
        assert!(check_bootstrap("f", b"#!/bin/sh").is_err());
    }
}
