//! The pinned tools, provisioned once under `target/tools/`:
//!
//! - `venv/`: a Python venv with `moto[server]`, `cargo-lambda` and `ziglang`
//!   (the linker cargo-lambda drives for musl targets), and `cfn-lint`;
//! - `bin/aws-lambda-rie-<arch>`: AWS's Lambda Runtime Interface Emulator,
//!   taken out of the `aws-sam-cli` wheel, which ships it for both
//!   architectures: this machine's at provisioning, the other one when a
//!   bootstrap of that architecture first runs ([`Tools::rie_for`]), under
//!   QEMU's user-mode emulator ([`Tools::emulator_for`]).
//!
//! A stamp file records what was installed; when it matches the pins and
//! every file is there, [`Tools::ensure`] runs no command at all, so it works
//! offline after the first run. A file lock makes concurrent callers (test
//! threads, test binaries, xtask) wait for one another.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use face_contracts::Architecture;

use crate::error::{Error, Result};

/// `moto[server]`, pinned: moto's behaviour differs between releases.
pub const MOTO_VERSION: &str = "5.2.5";
/// `cargo-lambda`, pinned.
pub const CARGO_LAMBDA_VERSION: &str = "1.9.2";
/// `ziglang`, pinned to a zig that cargo-lambda's zigbuild supports.
pub const ZIGLANG_VERSION: &str = "0.14.1";
/// `cfn-lint`, pinned: the test gate lints every synthesized template with
/// it (new releases add rules).
pub const CFN_LINT_VERSION: &str = "1.58.0";
/// `aws-sam-cli`, whose wheel carries the RIE binaries.
pub const SAM_CLI_VERSION: &str = "1.170.0";

const STAMP: &str = ".local-aws-stamp";

/// Paths of the provisioned tools.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `target/tools`.
    pub dir: PathBuf,
    /// The venv's `python`.
    pub python: PathBuf,
    /// The venv's `moto_server`.
    pub moto_server: PathBuf,
    /// The venv's `cargo-lambda` (run as `cargo-lambda lambda build ...`,
    /// or put [`Tools::path_env`] on PATH and run `cargo lambda build`).
    pub cargo_lambda: PathBuf,
    /// The venv's `cfn-lint`.
    pub cfn_lint: PathBuf,
    /// The folder holding the `zig` executable of the ziglang package.
    pub zig_dir: PathBuf,
    /// The RIE binary for this machine's architecture.
    pub rie: PathBuf,
}

impl Tools {
    /// `<workspace>/target/tools` (or `$CARGO_TARGET_DIR/tools`).
    pub fn default_dir() -> PathBuf {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::workspace_root().join("target"));
        target.join("tools")
    }

    /// [`Tools::ensure`] on [`Tools::default_dir`], once per process.
    pub fn ensure_default() -> Result<&'static Tools> {
        static TOOLS: OnceLock<Tools> = OnceLock::new();
        if let Some(tools) = TOOLS.get() {
            return Ok(tools);
        }
        let tools = Tools::ensure(&Tools::default_dir())?;
        Ok(TOOLS.get_or_init(|| tools))
    }

    /// Provisions every tool under `dir` unless the stamp says it is done.
    pub fn ensure(dir: &Path) -> Result<Tools> {
        std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
        let lock_path = dir.join(".lock");
        let lock = File::create(&lock_path).map_err(Error::io("creating", &lock_path))?;
        lock.lock().map_err(Error::io("locking", &lock_path))?;

        let venv = dir.join("venv");
        let stamp_path = venv.join(STAMP);
        let wanted = stamp_text();
        let stamped = std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == wanted);
        if let (true, Ok(tools)) = (stamped, Tools::locate(dir)) {
            return Ok(tools);
        }

        tracing::info!(dir = %dir.display(), "provisioning tools (first run takes a minute)");
        if !venv.join("bin/python").is_file() {
            let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
            run(
                "creating the tools venv",
                Command::new(python).arg("-m").arg("venv").arg(&venv),
            )?;
        }
        let python = venv.join("bin/python");
        run(
            "pip install of the pinned tools",
            Command::new(&python)
                .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
                .arg(format!("moto[server]=={MOTO_VERSION}"))
                .arg(format!("cargo-lambda=={CARGO_LAMBDA_VERSION}"))
                .arg(format!("ziglang=={ZIGLANG_VERSION}"))
                .arg(format!("cfn-lint=={CFN_LINT_VERSION}")),
        )?;
        extract_rie(&python, dir, host_architecture())?;
        let tools = Tools::locate(dir)?;
        std::fs::write(&stamp_path, wanted).map_err(Error::io("writing", &stamp_path))?;
        Ok(tools)
    }

    /// The RIE binary for `arch`: this machine's ([`Tools::rie`]), or the
    /// other architecture's, taken out of the same wheel on first use.
    pub fn rie_for(&self, arch: Architecture) -> Result<PathBuf> {
        let path = self.dir.join("bin").join(rie_file_name(arch));
        if path == self.rie || path.is_file() {
            return Ok(path);
        }
        let lock_path = self.dir.join(".lock");
        let lock = File::create(&lock_path).map_err(Error::io("creating", &lock_path))?;
        lock.lock().map_err(Error::io("locking", &lock_path))?;
        if !path.is_file() {
            extract_rie(&self.python, &self.dir, arch)?;
        }
        Ok(path)
    }

    /// How this machine runs a binary built for `arch`: directly (`None`),
    /// or under QEMU's user-mode emulator, `qemu-<machine>-static` from
    /// `PATH` (an emulated program that execs another program execs it
    /// natively, so the RIE and its bootstrap each get their own QEMU).
    pub fn emulator_for(arch: Architecture) -> Result<Option<PathBuf>> {
        find_emulator(arch, &std::env::var_os("PATH").unwrap_or_default())
    }

    /// The tool paths, if every one of them exists.
    fn locate(dir: &Path) -> Result<Tools> {
        let venv = dir.join("venv");
        let zig_dir = find_zig_dir(&venv)?;
        let tools = Tools {
            dir: dir.to_path_buf(),
            python: venv.join("bin/python"),
            moto_server: venv.join("bin/moto_server"),
            cargo_lambda: venv.join("bin/cargo-lambda"),
            cfn_lint: venv.join("bin/cfn-lint"),
            zig_dir,
            rie: dir.join("bin").join(rie_name()),
        };
        for path in [
            &tools.python,
            &tools.moto_server,
            &tools.cargo_lambda,
            &tools.cfn_lint,
            &tools.rie,
        ] {
            if !path.is_file() {
                return Err(Error::MissingTool(format!("{} is missing", path.display())));
            }
        }
        Ok(tools)
    }

    /// `PATH` with the venv's `bin/` and zig's folder first, for running
    /// `cargo lambda build`.
    pub fn path_env(&self) -> OsString {
        let mut dirs = vec![self.dir.join("venv/bin"), self.zig_dir.clone()];
        if let Some(path) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&path));
        }
        std::env::join_paths(dirs).unwrap_or_default()
    }
}

fn stamp_text() -> String {
    format!(
        "moto[server]=={MOTO_VERSION}\ncargo-lambda=={CARGO_LAMBDA_VERSION}\n\
         ziglang=={ZIGLANG_VERSION}\ncfn-lint=={CFN_LINT_VERSION}\n\
         aws-sam-cli=={SAM_CLI_VERSION} ({})\n",
        rie_name()
    )
}

/// [`Tools::emulator_for`] on the search path `path`.
fn find_emulator(arch: Architecture, path: &std::ffi::OsStr) -> Result<Option<PathBuf>> {
    if Architecture::host() == Some(arch) {
        return Ok(None);
    }
    let names = [
        format!("qemu-{}-static", arch.machine_name()),
        format!("qemu-{}", arch.machine_name()),
    ];
    std::env::split_paths(path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .map(Some)
        .ok_or_else(|| {
            Error::MissingTool(format!(
                "running {arch} bootstraps on this machine needs QEMU's user-mode emulator \
                 `{}` on PATH (Debian: apt-get install qemu-user-static)",
                names[0]
            ))
        })
}

/// `aws-lambda-rie-x86_64` or `aws-lambda-rie-arm64`, for this machine.
pub fn rie_name() -> &'static str {
    rie_file_name(host_architecture())
}

/// This machine's architecture; on one Lambda lacks, x86_64's tools, as
/// before architectures were told apart.
pub(crate) fn host_architecture() -> Architecture {
    Architecture::host().unwrap_or(Architecture::X86_64)
}

/// The RIE's file name for `arch`, in the wheel and in `bin/`.
fn rie_file_name(arch: Architecture) -> &'static str {
    match arch {
        Architecture::X86_64 => "aws-lambda-rie-x86_64",
        Architecture::Arm64 => "aws-lambda-rie-arm64",
    }
}

/// `venv/lib/python3.X/site-packages/ziglang`.
fn find_zig_dir(venv: &Path) -> Result<PathBuf> {
    let lib = venv.join("lib");
    let entries = std::fs::read_dir(&lib).map_err(Error::io("reading", &lib))?;
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages/ziglang"))
        .find(|dir| dir.join("zig").is_file())
        .ok_or_else(|| {
            Error::MissingTool(format!(
                "no site-packages/ziglang/zig under {}",
                lib.display()
            ))
        })
}

/// Downloads the aws-sam-cli wheel (no dependencies) unless it is there,
/// and copies `arch`'s RIE binary out of it into `dir/bin`, executable.
fn extract_rie(python: &Path, dir: &Path, arch: Architecture) -> Result<()> {
    let name = rie_file_name(arch);
    let downloads = dir.join("downloads");
    let wheel = find_wheel(&downloads);
    let wheel = match wheel {
        Some(w) => w,
        None => {
            run(
                "pip download of the aws-sam-cli wheel (it carries the RIE)",
                Command::new(python)
                    .args(["-m", "pip", "download", "--disable-pip-version-check", "-q"])
                    .args(["--no-deps", "--only-binary", ":all:", "-d"])
                    .arg(&downloads)
                    .arg(format!("aws-sam-cli=={SAM_CLI_VERSION}")),
            )?;
            find_wheel(&downloads).ok_or_else(|| {
                Error::MissingTool(format!(
                    "pip reported success but no aws_sam_cli-{SAM_CLI_VERSION}-*.whl is in {}",
                    downloads.display()
                ))
            })?
        }
    };
    let inner = format!("samcli/local/rapid/{name}");
    let file = File::open(&wheel).map_err(Error::io("opening", &wheel))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| {
        Error::MissingTool(format!("{} is not a readable wheel: {e}", wheel.display()))
    })?;
    let mut entry = archive
        .by_name(&inner)
        .map_err(|e| Error::MissingTool(format!("{} has no {inner}: {e}", wheel.display())))?;
    let mut bytes = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
    entry
        .read_to_end(&mut bytes)
        .map_err(Error::io("extracting the RIE from", &wheel))?;

    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).map_err(Error::io("creating", &bin))?;
    let dest = bin.join(name);
    let partial = bin.join(format!(".{name}.partial"));
    std::fs::write(&partial, &bytes).map_err(Error::io("writing", &partial))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))
        .map_err(Error::io("making executable", &partial))?;
    std::fs::rename(&partial, &dest).map_err(Error::io("renaming into place", &dest))?;
    Ok(())
}

fn find_wheel(downloads: &Path) -> Option<PathBuf> {
    let prefix = format!("aws_sam_cli-{SAM_CLI_VERSION}-");
    std::fs::read_dir(downloads)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
        })
}

/// Runs a provisioning command; a failure names it and shows its output.
fn run(what: &str, command: &mut Command) -> Result<()> {
    let rendered = format!("{command:?}");
    let output = command.output().map_err(|e| Error::Command {
        what: what.to_string(),
        command: rendered.clone(),
        status: "not started".into(),
        output: e.to_string(),
    })?;
    if output.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    Err(Error::Command {
        what: what.to_string(),
        command: rendered,
        status: output.status.to_string(),
        output: lines[lines.len().saturating_sub(20)..].join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_runs_its_own_architecture_and_qemu_the_other() {
        let host = Architecture::host().expect("a Lambda architecture");
        let other = Architecture::ALL.into_iter().find(|a| *a != host).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = std::env::join_paths([dir.path()]).unwrap();
        assert_eq!(find_emulator(host, &path).unwrap(), None);

        let Err(Error::MissingTool(message)) = find_emulator(other, &path) else {
            panic!("no QEMU in an empty folder");
        };
        assert!(
            message.contains("apt-get install qemu-user-static"),
            "{message}"
        );
        assert!(message.contains(other.as_str()), "{message}");

        let qemu = dir
            .path()
            .join(format!("qemu-{}-static", other.machine_name()));
        std::fs::write(&qemu, "").unwrap();
        assert_eq!(find_emulator(other, &path).unwrap(), Some(qemu));
    }
}
