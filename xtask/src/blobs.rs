//! `cargo xtask fetch-blobs`: every blob of blobs/manifest.toml, from the
//! local mirror folder or its upstream URLs, streamed to a temporary file,
//! verified (size and sha256), then renamed into place. Re-running is a
//! no-op when every file already verifies.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Debug, clap::Args)]
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
    #[serde(default)]
    pub urls: Vec<String>,
}

pub fn read_manifest(root: &Path) -> Result<Manifest> {
    let path = root.join("blobs/manifest.toml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let manifest: Manifest = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    for blob in &manifest.blob {
        if blob.name.contains('/') || blob.sha256.len() != 64 {
            bail!("manifest entry {:?} is malformed (name with '/' or sha256 not 64 hex digits)", blob.name);
        }
    }
    Ok(manifest)
}

fn default_mirror(root: &Path) -> PathBuf {
    std::env::var_os("FACE_BLOBS_MIRROR")
        .map_or_else(|| root.join("../shared/blobs"), PathBuf::from)
}

pub fn fetch(root: &Path, args: &FetchArgs) -> Result<()> {
    let manifest = read_manifest(root)?;
    let dest = args.dest.clone().unwrap_or_else(|| root.join("blobs"));
    let mirror = args.mirror.clone().unwrap_or_else(|| default_mirror(root));
    std::fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut failures = Vec::new();
    for blob in &manifest.blob {
        match fetch_one(blob, &dest, &mirror) {
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

/// Fetches one blob; says where it came from.
fn fetch_one(blob: &Blob, dest: &Path, mirror: &Path) -> Result<String> {
    let target = dest.join(&blob.name);
    if target.is_file() && verify_file(blob, &target).is_ok() {
        return Ok("ok (already verified)".into());
    }
    let mut errors = Vec::new();
    let mirrored = mirror.join(&blob.name);
    if mirrored.is_file() {
        match File::open(&mirrored)
            .map_err(anyhow::Error::from)
            .and_then(|f| install(blob, f, &target))
        {
            Ok(()) => return Ok(format!("copied from {}", mirror.display())),
            Err(e) => errors.push(format!("mirror {}: {e:#}", mirrored.display())),
        }
    } else {
        errors.push(format!("not in mirror {}", mirror.display()));
    }
    for url in &blob.urls {
        match download(blob, url, &target) {
            Ok(()) => return Ok(format!("downloaded from {url}")),
            Err(e) => errors.push(format!("{url}: {e:#}")),
        }
    }
    bail!("no source worked: {}", errors.join("; "))
}

fn download(blob: &Blob, url: &str, target: &Path) -> Result<()> {
    let response = ureq::get(url).call().with_context(|| format!("GET {url}"))?;
    install(blob, response.into_reader(), target)
}

/// Streams `source` into a temporary file beside `target` while hashing,
/// checks size and sha256, then renames. On any failure the temporary file
/// is removed: no partial blob is ever left under the final name.
fn install(blob: &Blob, mut source: impl Read, target: &Path) -> Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.part-{}", blob.name, std::process::id()));
    let result = (|| -> Result<()> {
        let mut file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let bar = progress_bar(blob);
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 16];
        let mut written = 0u64;
        loop {
            let n = source.read(&mut buffer).context("reading the source")?;
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > blob.size_bytes {
                bail!("{} is larger than the expected {} bytes", blob.name, blob.size_bytes);
            }
            hasher.update(&buffer[..n]);
            file.write_all(&buffer[..n]).context("writing")?;
            bar.set_position(written);
        }
        bar.finish_and_clear();
        file.sync_all().context("flushing")?;
        check(blob, written, &hex::encode(hasher.finalize()))
    })();
    match result {
        Ok(()) => std::fs::rename(&tmp, target).with_context(|| format!("renaming into {}", target.display())),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn progress_bar(blob: &Blob) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(blob.size_bytes);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg:40} {bar:30} {bytes}/{total_bytes}") {
        bar.set_style(style);
    }
    bar.set_message(blob.name.clone());
    bar
}

fn check(blob: &Blob, size: u64, sha256: &str) -> Result<()> {
    if size != blob.size_bytes {
        bail!("{}: size {size} bytes, expected {}", blob.name, blob.size_bytes);
    }
    if !sha256.eq_ignore_ascii_case(&blob.sha256) {
        bail!("{}: checksum mismatch: expected sha256 {}, got {sha256}", blob.name, blob.sha256);
    }
    Ok(())
}

/// Verifies a file already in place.
pub fn verify_file(blob: &Blob, path: &Path) -> Result<()> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher).context("hashing")?;
    check(blob, size, &hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob_for(content: &[u8]) -> Blob {
        Blob {
            name: "model.onnx".into(),
            role: "test".into(),
            size_bytes: content.len() as u64,
            sha256: hex::encode(Sha256::digest(content)),
            license: "CC0-1.0".into(),
            urls: vec![],
        }
    }

    #[test]
    fn verified_copy_then_noop_then_checksum_error_leaves_nothing() {
        let mirror = tempfile::tempdir().expect("tempdir");
        let dest = tempfile::tempdir().expect("tempdir");
        std::fs::write(mirror.path().join("model.onnx"), b"weights").expect("write");
        let blob = blob_for(b"weights");
        let how = fetch_one(&blob, dest.path(), mirror.path()).expect("fetch");
        assert!(how.starts_with("copied"), "{how}");
        assert_eq!(std::fs::read(dest.path().join("model.onnx")).expect("read"), b"weights");
        assert!(fetch_one(&blob, dest.path(), mirror.path()).expect("again").contains("already"));

        let wrong = Blob { name: "other.onnx".into(), ..blob_for(b"weightz") };
        std::fs::write(mirror.path().join("other.onnx"), b"weights").expect("write");
        let err = format!("{:#}", fetch_one(&wrong, dest.path(), mirror.path()).expect_err("mismatch"));
        assert!(err.contains("other.onnx") && err.contains(&wrong.sha256), "{err}");
        let leftovers: Vec<_> = std::fs::read_dir(dest.path())
            .expect("list")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(leftovers, vec!["model.onnx".to_string()], "no partial file left");
    }

    #[test]
    fn the_real_manifest_parses() {
        let manifest = read_manifest(&crate::project_root()).expect("manifest");
        assert!(manifest.blob.iter().any(|b| b.name == "yunet_s_dynamic.onnx"));
    }
}
