//! The function zips of `cargo xtask build` and their content-hash keys.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use face_stacks::{Architecture, Assets, FunctionName};
use sha2::{Digest, Sha256};

/// `target/lambda-dist/<arch>/<function>.zip` (lambdas/README.md).
pub fn zip_path(root: &Path, function: FunctionName, arch: Architecture) -> PathBuf {
    root.join("target")
        .join("lambda-dist")
        .join(arch.as_str())
        .join(format!("{function}.zip"))
}

/// The asset key of the built zip: `<function>/<arch>/<sha256>.zip`.
pub fn hash_key(root: &Path, function: FunctionName, arch: Architecture) -> Result<String> {
    let path = zip_path(root, function, arch);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Assets::key_for(
        function,
        arch,
        &hex::encode(Sha256::digest(&bytes)),
    ))
}
