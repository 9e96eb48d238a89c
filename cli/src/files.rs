//! Reading the photos named on the command line (never more than the
//! pipeline would decode, and only regular files), and writing outputs
//! whole.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use face_core::DecodeError;

/// The bytes of the regular file `path`, refused unread when over
/// `max_bytes` (the pipeline's `decode_limits.max_encoded_bytes`): a FIFO
/// or device would block or never end, and a huge file would be read whole
/// only for the decoder to refuse it. The size is checked again while
/// reading, as the file may grow in between. The errors do not name the
/// path: callers add it as their output needs.
pub fn read_image_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>> {
    // Checked before opening: opening a FIFO waits for a writer.
    let metadata = std::fs::metadata(path).context("cannot read")?;
    if !metadata.is_file() {
        bail!("cannot read: not a regular file");
    }
    if metadata.len() > max_bytes {
        return Err(too_large(metadata.len(), max_bytes));
    }
    let file = std::fs::File::open(path).context("cannot read")?;
    // The path may have been replaced since; what is open is what counts.
    if !file.metadata().context("cannot read")?.is_file() {
        bail!("cannot read: not a regular file");
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .context("cannot read")?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(bytes.len() as u64, max_bytes));
    }
    Ok(bytes)
}

/// Fails unless a file can be written at `path` as far as the folders go:
/// its folder exists and `path` is not a folder. For outputs written after
/// long work, checked before it (`flag` names the option in the error).
pub fn check_output_path(flag: &str, path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!(
            "{flag} {}: the folder {} does not exist",
            path.display(),
            dir.display()
        );
    }
    if path.is_dir() {
        bail!("{flag} {}: is a folder", path.display());
    }
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over
/// `path`: a failure never leaves a half-written file there (nor the
/// temporary one). A `path` that is there but not a regular file (a
/// symlink, `/dev/stdout`, a FIFO) is written through instead, as
/// `fs::write` does: a rename would replace it with a regular file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
        return std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()));
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let written = std::fs::write(&tmp, bytes)
        .with_context(|| format!("writing {} (first as {})", path.display(), tmp.display()))
        .and_then(|()| {
            std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn too_large(size_bytes: u64, limit_bytes: u64) -> anyhow::Error {
    DecodeError::EncodedTooLarge {
        size_bytes,
        limit_bytes,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_file_up_to_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ten.bin");
        std::fs::write(&path, [7u8; 10]).expect("write");
        assert_eq!(read_image_file(&path, 10).expect("read"), vec![7u8; 10]);
    }

    #[test]
    fn refuses_a_file_over_the_limit_unread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.bin");
        // Sparse: 1 GiB long, no blocks written, so reading it would cost
        // the memory the limit is there to spare.
        std::fs::File::create(&path)
            .and_then(|f| f.set_len(1 << 30))
            .expect("sparse file");
        let e = read_image_file(&path, 15 << 20).expect_err("over the limit");
        assert!(
            matches!(
                e.downcast_ref::<DecodeError>(),
                Some(DecodeError::EncodedTooLarge {
                    size_bytes: 1_073_741_824,
                    ..
                })
            ),
            "{e:#}"
        );
    }

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = read_image_file(dir.path(), 15 << 20).expect_err("a folder");
        assert!(format!("{e:#}").contains("not a regular file"), "{e:#}");
        // A device that never ends: refused before any read.
        let e = read_image_file(Path::new("/dev/zero"), 15 << 20).expect_err("a device");
        assert!(format!("{e:#}").contains("not a regular file"), "{e:#}");
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("photo.jpg");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        // Opening it would block this test forever.
        let e = read_image_file(&fifo, 15 << 20).expect_err("a FIFO");
        assert!(format!("{e:#}").contains("not a regular file"), "{e:#}");
    }

    #[test]
    fn outputs_are_checked_and_written_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("report.html");
        check_output_path("--report", &out).expect("a new file in a folder");
        let e = check_output_path("--report", &dir.path().join("no/report.html"))
            .expect_err("no folder");
        assert!(format!("{e}").contains("does not exist"), "{e}");
        let e = check_output_path("--report", dir.path()).expect_err("a folder");
        assert!(format!("{e}").contains("is a folder"), "{e}");

        write_atomically(&out, b"one").expect("write");
        write_atomically(&out, b"two").expect("overwrite");
        assert_eq!(std::fs::read(&out).expect("read"), b"two");
        // A folder in the way fails the write and leaves no temporary file.
        let folder = dir.path().join("taken");
        std::fs::create_dir(&folder).expect("mkdir");
        std::fs::write(folder.join("x"), b"x").expect("write");
        write_atomically(&folder, b"three").expect_err("a folder is in the way");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    /// A symlinked output stays a symlink: its destination gets the bytes
    /// (as `/dev/stdout` would), where a rename would replace the link.
    #[test]
    fn a_symlinked_output_is_written_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("target.html");
        std::fs::write(&target, b"old").expect("write");
        let link = dir.path().join("report.html");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        write_atomically(&link, b"new").expect("write through the link");
        assert!(
            std::fs::symlink_metadata(&link)
                .expect("the link")
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&target).expect("read"), b"new");
        // A dangling link creates its destination, as `fs::write` does.
        let gone = dir.path().join("gone.html");
        let dangling = dir.path().join("montage.mp4");
        std::os::unix::fs::symlink(&gone, &dangling).expect("symlink");
        write_atomically(&dangling, b"mp4").expect("write through the link");
        assert!(
            std::fs::symlink_metadata(&dangling)
                .expect("the link")
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&gone).expect("read"), b"mp4");
    }

    #[test]
    fn a_missing_file_cannot_be_read() {
        let e = read_image_file(Path::new("/nonexistent/x.jpg"), 10).expect_err("missing");
        assert!(format!("{e:#}").starts_with("cannot read: "), "{e:#}");
    }
}
