//! The output folder of a run (`--out`): one process at a time, no silent
//! overwrite, and files that are either whole or absent.
//!
//! - A lock file, `rarts.lock`, holds an OS file lock for as long as the
//!   process lives (the OS releases it when the process dies, also on
//!   SIGKILL): a second process on the same folder is refused at once.
//! - A folder that already holds a run's files is refused unless the run is
//!   resumed, or `--force` removes those files (and only those) first.
//! - Every file is written to a uniquely named temp file, fsynced, renamed
//!   over the old one, and the folder is fsynced: a crash at any moment
//!   leaves the old or the new file, never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Context, Result};

pub const LOCK_FILE: &str = "rarts.lock";

/// What to do with a folder that already holds a run's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Refuse it.
    Refuse,
    /// Keep it: the run continues from what is there.
    Resume,
    /// Remove the run's files, then start anew.
    Force,
}

/// An open, locked output folder.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    /// Held for the life of the process; dropping it releases the lock.
    _lock: File,
}

impl RunDir {
    /// Creates and locks `path` for a run that writes `files` there.
    /// `flag` names the folder's flag in errors (`--out`).
    pub fn open(path: &Path, flag: &str, files: &[&str], existing: Existing) -> Result<RunDir> {
        let shown = path.display();
        fs::create_dir_all(path).ctx(|| format!("{flag} {shown}: cannot create the folder"))?;
        let lock_path = path.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .ctx(|| format!("{flag} {shown}: cannot open the lock file {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => crate::bail!(
                "{flag} {shown}: another rarts process is running in this folder (it holds the lock on {}); \
                 wait for it to end or choose another {flag}",
                lock_path.display()
            ),
            Err(fs::TryLockError::Error(e)) => crate::bail!("{flag} {shown}: cannot lock {}: {e}", lock_path.display()),
        }
        let dir = RunDir { path: path.to_path_buf(), _lock: lock };
        // Temp files of a process that died mid-write: ours, and never whole.
        for entry in fs::read_dir(path).ctx(|| format!("{flag} {shown}: cannot list the folder"))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if files.iter().any(|f| is_temp_of(&name, f)) {
                fs::remove_file(entry.path())
                    .ctx(|| format!("removing the stale temp file {}", entry.path().display()))?;
            }
        }
        let present: Vec<&str> = files.iter().copied().filter(|f| path.join(f).exists()).collect();
        match existing {
            Existing::Refuse if !present.is_empty() => crate::bail!(
                "{flag} {shown} already holds a run ({}); add --resume to continue it, or --force to remove \
                 those files and start over",
                present.join(", ")
            ),
            Existing::Force => {
                for f in &present {
                    fs::remove_file(path.join(f)).ctx(|| format!("--force: removing {}", path.join(f).display()))?;
                }
                dir.sync()?;
            }
            _ => {}
        }
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `bytes` to `name` atomically (see the module doc).
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        write_atomic(&self.path.join(name), bytes)
    }

    fn sync(&self) -> Result<()> {
        sync_dir(&self.path)
    }
}

/// Whether `name` is a temp file that [`write_atomic`] made for `file`.
fn is_temp_of(name: &str, file: &str) -> bool {
    name.strip_prefix('.').and_then(|r| r.strip_prefix(file)).is_some_and(|r| r.starts_with('.') && r.ends_with(".tmp"))
}

/// Writes `bytes` to `path`: a temp file unique to this process and call
/// (`.NAME.PID.N.tmp` beside it), fsync, rename over `path`, fsync the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        crate::bail!("writing {}: {e}", path.display());
    }
    sync_dir(dir)
}

/// fsyncs a folder, so that a rename in it survives a crash.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).ctx(|| format!("syncing the folder {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::is_temp_of;

    #[test]
    fn only_our_temp_names_count_as_stale() {
        assert!(is_temp_of(".checkpoint.bin.123.0.tmp", "checkpoint.bin"));
        assert!(!is_temp_of("checkpoint.bin", "checkpoint.bin"));
        assert!(!is_temp_of(".checkpoint.bin", "checkpoint.bin"));
        assert!(!is_temp_of(".log.jsonl.1.0.tmp", "checkpoint.bin"));
        assert!(!is_temp_of("notes.tmp", "checkpoint.bin"));
    }
}
