//! Reading a data file through a memory map, with errors that name the file.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;
use memmap2::Mmap;

use crate::bail;
use crate::error::{Context, Result};

/// Whether something is at `path`: false only when there is no entry at
/// all. An entry that cannot be followed (a symbolic link to nothing, a loop
/// of links, one without permission) is an error saying so, not "absent".
pub(crate) fn present(path: &Path) -> Result<bool> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => bail!("{}: cannot be read: {e}", path.display()),
        Ok(_) => match std::fs::metadata(path) {
            Ok(_) => Ok(true),
            Err(e) => bail!(
                "{}: a symbolic link that leads nowhere or in a loop ({e}); expected a file, or no entry at all",
                path.display()
            ),
        },
    }
}

/// What the entry at `path` is, for messages: "a folder", "a FIFO (named
/// pipe)", "a character device", …; `None` for a regular file.
pub(crate) fn special_kind(path: &Path) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = match std::fs::metadata(path) {
        Ok(m) => m.file_type(),
        Err(_) => return Some("a symbolic link that leads nowhere or in a loop"),
    };
    Some(if t.is_file() {
        return None;
    } else if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    })
}

/// Maps `path` read-only. `expected` says what the file should hold; it goes
/// into the error for a missing or empty file.
pub(crate) fn map(path: &Path, expected: &str) -> Result<Mmap> {
    let shown = path.display();
    if !present(path)? {
        bail!("{shown}: no such file; expected {expected}");
    }
    if let Some(kind) = special_kind(path) {
        bail!("{shown}: {kind}, not a regular file; expected {expected}");
    }
    if let Ok(abs) = std::fs::canonicalize(path)
        && (abs.starts_with("/proc") || abs.starts_with("/sys"))
    {
        bail!("{shown}: a file the kernel makes up as it is read (/proc, /sys), not data; expected {expected}");
    }
    let file = File::open(path).ctx(|| format!("opening {shown}"))?;
    let len = file.metadata().ctx(|| format!("reading the size of {shown}"))?.len();
    if len == 0 {
        bail!("{shown}: empty file; expected {expected}");
    }
    // SAFETY: the map is read-only and private to this process. Another
    // process truncating the file while it is mapped would fault the reads;
    // that is the documented limit of memory-mapped input, and data files are
    // not written while a run reads them. Callers copy out of the map at once
    // and drop it, so no borrow outlives this load.
    unsafe { Mmap::map(&file) }.ctx(|| format!("memory-mapping {shown}"))
}

/// True for bytes that start with the gzip magic number 1f 8b.
pub(crate) fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// The most a gzip stream may inflate to: far above any IDX data set
/// (Fashion-MNIST's training images are 47 MB), and a bound on what a gzip
/// bomb can make rarts allocate.
pub(crate) const GUNZIP_LIMIT: u64 = 1 << 30;

/// Inflates a gzip stream of at most [`GUNZIP_LIMIT`] bytes; `what` names
/// its source in the error.
pub(crate) fn gunzip(bytes: &[u8], what: &str) -> Result<Vec<u8>> {
    gunzip_at_most(bytes, what, GUNZIP_LIMIT)
}

pub(crate) fn gunzip_at_most(bytes: &[u8], what: &str, limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    GzDecoder::new(bytes).take(limit + 1).read_to_end(&mut out).ctx(|| format!("{what}: not a valid gzip stream"))?;
    if out.len() as u64 > limit {
        bail!(
            "{what}: inflates to more than {limit} bytes from {} compressed (a gzip bomb?); expected a gzipped \
             data file of at most {limit} bytes",
            bytes.len()
        );
    }
    Ok(out)
}

/// Refuses, before allocating, `n` images of `image_bytes` each that the
/// machine's free memory cannot hold.
pub(crate) fn check_fits(n: usize, image_bytes: usize) -> Result<()> {
    let gib = |b: f64| b / (1u64 << 30) as f64;
    let bytes = (n as f64) * (image_bytes as f64);
    if let Some(avail) = crate::hugealloc::mem_available()
        && bytes > avail as f64
    {
        crate::bail!(
            "{n} images of {image_bytes} bytes need {:.1} GiB, but only {:.1} GiB of memory is available; \
             expected fewer or smaller images",
            gib(bytes),
            gib(avail as f64)
        );
    }
    Ok(())
}
