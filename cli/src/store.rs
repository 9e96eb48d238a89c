//! Collections kept as JSON files in a local directory:
//! `<store>/collections/<name>.json`, written atomically.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use face_core::Collection;

/// The store root: `--store` (or `$FACECTL_STORE`, read by the command
/// line), else the data folder ([`crate::xdg`]: `$XDG_DATA_HOME/facectl` or
/// `~/.local/share/facectl`), else `.facectl` here.
pub fn store_dir(flag: Option<&Path>) -> PathBuf {
    match flag {
        Some(dir) => dir.to_path_buf(),
        None => crate::xdg::data_dir().unwrap_or_else(|| PathBuf::from(".facectl")),
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// Collection names become file names: the API's one rule, so a local
    /// collection's name is valid on a deployed stack too.
    pub fn validate_name(name: &str) -> Result<()> {
        Ok(face_api::ids::validate_collection_name(name)?)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join("collections").join(format!("{name}.json"))
    }

    /// The stored collection, or `None` when it does not exist yet.
    pub fn load(&self, name: &str) -> Result<Option<Collection>> {
        Self::validate_name(name)?;
        let path = self.path(name);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let collection = serde_json::from_slice(&bytes)
            .with_context(|| format!("collection file {} is not valid", path.display()))?;
        Ok(Some(collection))
    }

    /// The stored collection, or an error naming it when missing.
    pub fn load_existing(&self, name: &str) -> Result<Collection> {
        self.load(name)?.with_context(|| {
            format!(
                "collection {name:?} does not exist in {} (enroll someone first)",
                self.root.display()
            )
        })
    }

    /// Writes to a temporary file, then renames: a crash never leaves a
    /// half-written collection.
    pub fn save(&self, name: &str, collection: &Collection) -> Result<()> {
        Self::validate_name(name)?;
        let path = self.path(name);
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join(format!(".{name}.json.tmp-{}", std::process::id()));
        let json = serde_json::to_vec_pretty(collection).context("serializing the collection")?;
        std::fs::write(&tmp, json).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path().to_path_buf());
        assert!(store.load("team").expect("load").is_none());
        let c = Collection::new("v1");
        store.save("team", &c).expect("save");
        assert_eq!(store.load_existing("team").expect("load"), c);
        assert!(Store::validate_name("../etc").is_err());
        assert!(Store::validate_name("").is_err());
        // Once refused here only; the API has always taken it.
        assert!(Store::validate_name(".team").is_ok());
        assert!(store.load_existing("other").is_err());
    }
}
