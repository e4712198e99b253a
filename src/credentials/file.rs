//! A file read again whenever it changes on disk.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// What identifies one version of a file without reading it: Kubernetes replaces a
/// mounted secret by swapping a symlink, which changes the inode; an editor or
/// `echo >` changes length or modification time.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: m.len(),
        modified: m.modified().ok(),
        #[cfg(unix)]
        inode: {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        },
    })
}

/// A credential or token file. [`WatchedFile::changed`] is a `stat`, cheap enough
/// to call before every request.
#[derive(Debug)]
pub struct WatchedFile {
    path: PathBuf,
    last: Mutex<Option<Stamp>>,
}

impl WatchedFile {
    pub fn new(path: PathBuf) -> WatchedFile {
        WatchedFile {
            path,
            last: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file differs from what [`WatchedFile::read`] last saw (or was
    /// never read).
    pub fn changed(&self) -> bool {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.is_none() || *last != stamp(&self.path)
    }

    /// Remember the file as it is now, without reading it (for callers that read
    /// it their own way, such as PEM files).
    pub fn mark_seen(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = stamp(&self.path);
    }

    /// Read the whole file, trimmed. The error names the file, never its content.
    pub fn read(&self) -> Result<String, String> {
        let before = stamp(&self.path);
        let content = std::fs::read_to_string(&self.path)
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = before;
        Ok(content.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_file_is_seen_as_changed_and_read_again() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("token");
        std::fs::write(&path, "one\n")?;
        let f = WatchedFile::new(path.clone());
        assert!(f.changed(), "never read counts as changed");
        assert_eq!(f.read()?, "one");
        assert!(!f.changed());
        // Same length, new content: the swap Kubernetes does (a new inode).
        let tmp = dir.path().join("token.new");
        std::fs::write(&tmp, "two\n")?;
        std::fs::rename(&tmp, &path)?;
        assert!(f.changed());
        assert_eq!(f.read()?, "two");
        assert!(!f.changed());
        std::fs::remove_file(&path)?;
        assert!(f.changed());
        assert!(
            f.read()
                .is_err_and(|e| e.contains("token") && !e.contains("two"))
        );
        Ok(())
    }
}
