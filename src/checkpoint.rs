//! Checkpoints: a text header (`key=value` lines) and named f32 tensors in
//! one binary file, with a checksum of the whole content, written atomically
//! (see [`crate::rundir::write_atomic`]) so a run killed at any moment leaves
//! either the old or the new checkpoint.
//!
//! Layout (format version 2): `RARTSCK2`, u64 header length, header bytes
//! (UTF-8), u64 tensor count, then per tensor: u64 name length, name, u64
//! element count, f32 little-endian data; last, the u64 [`hash64`] of every
//! byte before it. All integers little-endian.
//!
//! Reading refuses, naming the file: another magic, a version other than 2,
//! a checksum that does not match, a truncated or overlong file, and any
//! tensor holding a NaN or an infinity.

use std::fs;
use std::path::Path;

use crate::error::{Context, Error, Result};
use crate::hash::hash64;

/// The first seven magic bytes (defined with the run folder's files, which
/// recognise a checkpoint by them); the eighth is the format version digit.
const MAGIC_STEM: &[u8; 7] = crate::rundir::CHECKPOINT_MAGIC_STEM;

pub const VERSION: u8 = 2;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    /// `key=value` lines.
    pub header: Vec<(String, String)>,
    pub tensors: Vec<(String, Vec<f32>)>,
}

impl Checkpoint {
    pub fn set(&mut self, key: &str, value: impl ToString) {
        self.header.push((key.to_string(), value.to_string()));
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.header.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The value of `key`, parsed; an error names the file's field.
    pub fn parse<T: std::str::FromStr>(&self, key: &str) -> Result<T> {
        let v = self.get(key).ok_or_else(|| Error(format!("checkpoint has no field '{key}'")))?;
        v.parse().map_err(|_| Error(format!("checkpoint field '{key}' has an unreadable value '{v}'")))
    }

    pub fn push(&mut self, name: impl Into<String>, data: Vec<f32>) {
        self.tensors.push((name.into(), data));
    }

    /// Removes and returns the next tensor, checking its name and size.
    pub fn take(&mut self, cursor: &mut usize, name: &str, len: usize) -> Result<Vec<f32>> {
        let Some((n, d)) = self.tensors.get_mut(*cursor) else {
            crate::bail!("checkpoint ends before tensor '{name}'");
        };
        if n != name || d.len() != len {
            crate::bail!(
                "checkpoint tensor {} is '{n}' with {} elements; expected '{name}' with {len}: \
                 was it written by a search with other settings?",
                *cursor,
                d.len()
            );
        }
        *cursor += 1;
        Ok(std::mem::take(d))
    }

    /// The first tensor holding a NaN or an infinity: (name, element, value).
    pub fn first_non_finite(&self) -> Option<(&str, usize, f32)> {
        self.tensors
            .iter()
            .find_map(|(name, d)| d.iter().position(|v| !v.is_finite()).map(|i| (name.as_str(), i, d[i])))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC_STEM);
        b.push(b'0' + VERSION);
        let header: String = self.header.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        b.extend_from_slice(&(header.len() as u64).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        for (name, data) in &self.tensors {
            b.extend_from_slice(&(name.len() as u64).to_le_bytes());
            b.extend_from_slice(name.as_bytes());
            b.extend_from_slice(&(data.len() as u64).to_le_bytes());
            for v in data {
                b.extend_from_slice(&v.to_le_bytes());
            }
        }
        let sum = hash64(&b);
        b.extend_from_slice(&sum.to_le_bytes());
        b
    }

    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<Checkpoint> {
        if bytes.len() < 8 || &bytes[..7] != MAGIC_STEM {
            crate::bail!("{what}: not a rarts checkpoint (it does not start with the magic bytes RARTSCK)");
        }
        let version = bytes[7];
        if version != b'0' + VERSION {
            crate::bail!(
                "{what}: checkpoint format version {}; this rarts reads version {VERSION} only \
                 (start the search anew, or continue it with the rarts that wrote it)",
                if version.is_ascii_graphic() { (version as char).to_string() } else { format!("byte {version}") }
            );
        }
        if bytes.len() < 8 + 8 + 8 + 8 {
            crate::bail!("{what}: truncated ({} bytes; a checkpoint has at least 32)", bytes.len());
        }
        let (body, tail) = bytes.split_at(bytes.len() - 8);
        let stored = u64::from_le_bytes(tail.try_into().expect("8 bytes"));
        let computed = hash64(body);
        if stored != computed {
            crate::bail!(
                "{what}: checksum mismatch (stored {stored:016x}, computed {computed:016x}): the file is \
                 corrupted or truncated"
            );
        }
        let mut r = Reader { b: body, pos: 8, what };
        let hlen = r.len()?;
        let header = std::str::from_utf8(r.bytes(hlen)?).map_err(|_| Error(format!("{what}: header is not UTF-8")))?;
        let mut ck = Checkpoint::default();
        for line in header.lines() {
            let (k, v) =
                line.split_once('=').ok_or_else(|| Error(format!("{what}: header line '{line}' is not key=value")))?;
            ck.set(k, v);
        }
        let count = r.len()?;
        for _ in 0..count {
            let nlen = r.len()?;
            let name = String::from_utf8_lossy(r.bytes(nlen)?).into_owned();
            let n = r.len()?;
            let raw = r.bytes(n.checked_mul(4).ok_or_else(|| Error(format!("{what}: tensor '{name}' too large")))?)?;
            let data = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            ck.tensors.push((name, data));
        }
        if r.pos != body.len() {
            crate::bail!("{what}: {} unexpected bytes after the last tensor", body.len() - r.pos);
        }
        if let Some((name, i, v)) = ck.first_non_finite() {
            crate::bail!("{what}: tensor '{name}' holds {v} at element {i}; a checkpoint holds only finite values");
        }
        Ok(ck)
    }

    /// Writes to `path` atomically; refuses a checkpoint with a non-finite value.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some((name, i, v)) = self.first_non_finite() {
            crate::bail!("{}: not written: tensor '{name}' holds {v} at element {i}", path.display());
        }
        crate::rundir::write_atomic(path, &self.to_bytes())
    }

    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = fs::read(path).ctx(|| format!("reading checkpoint {}", path.display()))?;
        Checkpoint::from_bytes(&bytes, &path.display().to_string())
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    what: &'a str,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.b.len() - self.pos < n {
            crate::bail!("{}: truncated at byte {} (wanted {n} more bytes)", self.what, self.pos);
        }
        self.pos += n;
        Ok(&self.b[self.pos - n..self.pos])
    }

    fn len(&mut self) -> Result<usize> {
        let b = self.bytes(8)?;
        let v = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        usize::try_from(v).map_err(|_| Error(format!("{}: length {v} too large", self.what)))
    }
}
