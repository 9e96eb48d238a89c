//! facectl's data folder by the XDG Base Directory rule: `$XDG_DATA_HOME`
//! when it is an absolute path (the rule ignores a relative one), else
//! `$HOME/.local/share`; facectl's is `facectl/` in it. Collections live
//! there, and an installed facectl finds its models in `models/` of it.
//!
//! Two environment variables, so a few lines here rather than a crate:
//! neither `dirs` nor `directories` is in the dependency tree, and their
//! per-OS folders (`~/Library/Application Support` on macOS) would move
//! the store of existing users.

use std::ffi::OsString;
use std::path::PathBuf;

/// `$XDG_DATA_HOME/facectl`, else `~/.local/share/facectl`; `None` when
/// neither variable gives a folder.
pub fn data_dir() -> Option<PathBuf> {
    data_dir_from(std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME"))
}

/// [`data_dir`] from the two variables' values.
pub fn data_dir_from(xdg_data_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let data_home = xdg_data_home
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| {
            home.filter(|home| !home.is_empty())
                .map(|home| PathBuf::from(home).join(".local/share"))
        })?;
    Some(data_home.join("facectl"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(xdg: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
        data_dir_from(xdg.map(OsString::from), home.map(OsString::from))
    }

    #[test]
    fn xdg_data_home_first_then_home() {
        assert_eq!(
            dir(Some("/data"), Some("/home/ann")),
            Some(PathBuf::from("/data/facectl"))
        );
        assert_eq!(
            dir(None, Some("/home/ann")),
            Some(PathBuf::from("/home/ann/.local/share/facectl"))
        );
    }

    #[test]
    fn a_relative_or_empty_xdg_data_home_is_ignored() {
        for xdg in ["", "relative/data"] {
            assert_eq!(
                dir(Some(xdg), Some("/home/ann")),
                Some(PathBuf::from("/home/ann/.local/share/facectl")),
                "{xdg:?}"
            );
        }
        assert_eq!(dir(Some("relative"), None), None);
        assert_eq!(dir(None, Some("")), None);
    }
}
