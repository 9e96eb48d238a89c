//! Collections kept as JSON files in a local directory:
//! `<store>/collections/<name>.json`, written atomically. Every change
//! (load, change, save) holds `<store>/collections/<name>.lock`
//! exclusively ([`Store::update`]), so concurrent `facectl` processes never
//! lose each other's changes; readers need no lock (a save is a rename).

use std::fs::File;
use std::io::Write;
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

    /// The lock file every change of collection `name` holds.
    pub fn lock_path(&self, name: &str) -> PathBuf {
        self.root.join("collections").join(format!("{name}.lock"))
    }

    /// Waits for and takes the exclusive lock of collection `name`; it is
    /// released when the returned guard is dropped (or the process ends).
    /// The lock file stays: removing it would let two processes lock two
    /// different files of the same name.
    pub fn lock(&self, name: &str) -> Result<CollectionLock> {
        Self::validate_name(name)?;
        let path = self.lock_path(name);
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening the lock file {}", path.display()))?;
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        Ok(CollectionLock { _file: file })
    }

    /// Changes collection `name` under its lock: loads it (`None` when it
    /// does not exist yet), hands it to `change`, saves what `change`
    /// returns. Whatever another process saved before the lock was taken
    /// is in what `change` gets, so no change is lost.
    pub fn update<T>(
        &self,
        name: &str,
        change: impl FnOnce(Option<Collection>) -> Result<(Collection, T)>,
    ) -> Result<T> {
        let _lock = self.lock(name)?;
        let (collection, out) = change(self.load(name)?)?;
        self.save_locked(name, &collection)?;
        Ok(out)
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
        self.load(name)?.ok_or_else(|| self.missing(name))
    }

    /// The error of a collection that does not exist.
    pub fn missing(&self, name: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "collection {name:?} does not exist in {} (enroll someone first)",
            self.root.display()
        )
    }

    /// Replaces the collection under its lock ([`Store::update`] to change
    /// what is stored).
    pub fn save(&self, name: &str, collection: &Collection) -> Result<()> {
        let _lock = self.lock(name)?;
        self.save_locked(name, collection)
    }

    /// Writes to a temporary file, flushed to disk, then renames and
    /// flushes the folder: neither a crash nor a power cut leaves a
    /// half-written collection. The caller holds the lock.
    fn save_locked(&self, name: &str, collection: &Collection) -> Result<()> {
        Self::validate_name(name)?;
        let path = self.path(name);
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join(format!(".{name}.json.tmp-{}", std::process::id()));
        let json = serde_json::to_vec_pretty(collection).context("serializing the collection")?;
        let written = File::create(&tmp)
            .and_then(|mut file| {
                file.write_all(&json)?;
                file.sync_all()
            })
            .with_context(|| format!("writing {}", tmp.display()))
            .and_then(|()| {
                std::fs::rename(&tmp, &path)
                    .with_context(|| format!("replacing {}", path.display()))
            });
        if let Err(e) = written {
            // Never leave a partial temporary file behind.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        // The rename is durable once the folder's entry is.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("flushing {}", dir.display()))?;
        Ok(())
    }
}

/// The exclusive lock of one collection ([`Store::lock`]), held until
/// dropped.
#[derive(Debug)]
pub struct CollectionLock {
    _file: File,
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

    /// The lock is exclusive (flock: per open file, so even within one
    /// process) until its guard is dropped.
    #[test]
    fn the_lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path().to_path_buf());
        let held = store.lock("team").expect("lock");
        let other = File::options()
            .write(true)
            .open(store.lock_path("team"))
            .expect("open");
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(held);
        other.try_lock().expect("free once dropped");
    }

    /// Concurrent updates each see the others' saved changes: none is lost.
    #[test]
    fn concurrent_updates_are_all_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path().to_path_buf());
        std::thread::scope(|scope| {
            for i in 0..8 {
                let store = &store;
                scope.spawn(move || {
                    store
                        .update("team", |c| {
                            let mut c = c.unwrap_or_else(|| Collection::new("v1"));
                            c.people.insert(format!("p{i}"), Default::default());
                            Ok((c, ()))
                        })
                        .expect("update");
                });
            }
        });
        assert_eq!(store.load_existing("team").expect("load").people.len(), 8);
    }

    /// A save that fails leaves the stored collection and no temporary file.
    #[test]
    fn a_failed_save_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path().to_path_buf());
        // A non-empty folder where the collection file goes: the rename fails.
        std::fs::create_dir_all(store.path("team").join("x")).expect("mkdir");
        store
            .save("team", &Collection::new("v1"))
            .expect_err("cannot replace a folder");
        let left: Vec<String> = std::fs::read_dir(dir.path().join("collections"))
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        let mut left = left;
        left.sort();
        assert_eq!(left, ["team.json", "team.lock"]);
    }
}
