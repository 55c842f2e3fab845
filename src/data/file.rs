//! Reading a data file through a memory map, with errors that name the file.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;
use memmap2::Mmap;

use crate::bail;
use crate::error::{Context, Result};

/// Maps `path` read-only. `expected` says what the file should hold; it goes
/// into the error for a missing or empty file.
pub(crate) fn map(path: &Path, expected: &str) -> Result<Mmap> {
    let shown = path.display();
    if !path.exists() {
        bail!("{shown}: no such file; expected {expected}");
    }
    if !path.is_file() {
        bail!("{shown}: not a regular file; expected {expected}");
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

/// Inflates a gzip stream; `what` names its source in the error.
pub(crate) fn gunzip(bytes: &[u8], what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    GzDecoder::new(bytes).read_to_end(&mut out).ctx(|| format!("{what}: not a valid gzip stream"))?;
    Ok(out)
}
