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

/// Where a run writes and how it goes about it: what a search and a
/// training share (`--out`, `--resume`/`--force`, `--quiet`, `--no-report`).
#[derive(Clone, Debug, PartialEq)]
pub struct RunOptions {
    /// The output folder.
    pub out: PathBuf,
    /// What to do with an `out` folder that already holds a run.
    pub existing: Existing,
    /// Progress lines on stderr.
    pub progress: bool,
    /// Write `report.html` and its figures into `out` after every epoch.
    pub report: bool,
    /// Also write the checkpoint every this many steps, inside epochs.
    pub checkpoint_every: Option<usize>,
}

impl RunOptions {
    /// A run into `out` that refuses a folder holding a run, with progress
    /// lines and a report.
    pub fn new(out: impl Into<PathBuf>) -> RunOptions {
        RunOptions { out: out.into(), existing: Existing::Refuse, progress: true, report: true, checkpoint_every: None }
    }

    /// The same, quiet (no progress lines).
    pub fn quiet(self) -> RunOptions {
        RunOptions { progress: false, ..self }
    }
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

/// Whether `name` is a temp file that [`write_atomic`] made for `file`:
/// exactly `.FILE.PID.N.tmp`, PID and N decimal numbers (a user's
/// `.FILE.old.tmp` is not ours).
fn is_temp_of(name: &str, file: &str) -> bool {
    let Some(rest) = name.strip_prefix('.').and_then(|r| r.strip_prefix(file)).and_then(|r| r.strip_prefix('.')) else {
        return false;
    };
    let Some(nums) = rest.strip_suffix(".tmp") else { return false };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    matches!(nums.split_once('.'), Some((pid, n)) if digits(pid) && digits(n))
}

/// The names of the files rarts runs write into their folders: an output
/// given one of them in a folder a run made would overwrite the run's.
const RUN_FILE_NAMES: [&str; 11] = [
    "checkpoint.bin",
    "log.jsonl",
    "model.safetensors",
    "genotype.txt",
    "genotype.json",
    "alpha.jsonl",
    "bench.json",
    "report.html",
    "results.md",
    "compare.txt",
    LOCK_FILE,
];

/// The first seven bytes of every rarts checkpoint (`checkpoint.rs`; the
/// eighth is its format version).
pub const CHECKPOINT_MAGIC_STEM: &[u8; 7] = b"RARTSCK";

/// Whether the file at `path` begins as a rarts checkpoint does (whatever
/// its format version); reads its first bytes only.
pub fn looks_like_checkpoint(path: &Path) -> bool {
    let mut magic = [0u8; 7];
    File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic)).is_ok()
        && &magic == CHECKPOINT_MAGIC_STEM
}

/// Whether `dir` is a folder a rarts run made: it holds the lock file, a
/// rarts checkpoint or a comparison's plan.
pub fn is_run_folder(dir: &Path) -> bool {
    dir.join(LOCK_FILE).is_file()
        || looks_like_checkpoint(&dir.join("checkpoint.bin"))
        || dir.join("compare.txt").is_file()
}

/// Refuses `out` (the value of `flag`) where writing it would destroy
/// something the user did not name as an output: one of the command's
/// `inputs` (what, path), anything inside one of `folders` (a data set's), or
/// a file of a run (a run file's name in a run's folder).
pub fn check_output(flag: &str, out: &Path, inputs: &[(&str, &Path)], folders: &[(&str, &Path)]) -> Result<()> {
    let canon = |p: &Path| fs::canonicalize(p).ok();
    // The output may not exist yet: resolve its folder and add its name.
    let out_abs = canon(out).or_else(|| {
        let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Some(canon(parent)?.join(out.file_name()?))
    });
    if let Some(o) = &out_abs {
        for (what, p) in inputs {
            let Some(i) = canon(p) else { continue };
            if *o == i {
                crate::bail!(
                    "{flag} {}: it is {what} {}; expected another path, so that the input is not overwritten",
                    out.display(),
                    p.display()
                );
            }
        }
        for (what, p) in folders {
            let Some(i) = canon(p) else { continue };
            if o.starts_with(&i) {
                crate::bail!("{flag} {}: inside {what} {}; expected a path outside it", out.display(), p.display());
            }
        }
        if let (Some(parent), Some(name)) = (o.parent(), o.file_name())
            && RUN_FILE_NAMES.iter().any(|f| name == *f)
            && is_run_folder(parent)
        {
            crate::bail!(
                "{flag} {}: a file of the rarts run in {}; expected a path outside a run's files",
                out.display(),
                parent.display()
            );
        }
    }
    Ok(())
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

/// `YYYY-MM-DD` of today (UTC).
pub fn today() -> String {
    let days =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{:04}-{m:02}-{d:02}", yoe + era * 400 + (m <= 2) as i64)
}

/// The machine a run is stamped with: the CPU model and the threads used.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpu}, {} threads", crate::par::threads())
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
        assert!(!is_temp_of(".log.jsonl.old.tmp", "log.jsonl"));
        assert!(!is_temp_of(".report.html.tmp", "report.html"));
        assert!(!is_temp_of(".checkpoint.bin.tmp", "checkpoint.bin"));
        assert!(!is_temp_of(".checkpoint.bin.12.x.tmp", "checkpoint.bin"));
        assert!(is_temp_of(".log.jsonl.7.12.tmp", "log.jsonl"));
    }
}
