//! Checkpoints: a text header (`key=value` lines) and named f32 tensors in
//! one binary file, written atomically (temp file, fsync, rename) so a run
//! killed at any moment leaves either the old or the new checkpoint.
//!
//! Layout: `RARTSCK1`, u64 header length, header bytes (UTF-8), u64 tensor
//! count, then per tensor: u64 name length, name, u64 element count, f32
//! little-endian data.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::{Context, Error, Result};

const MAGIC: &[u8; 8] = b"RARTSCK1";

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

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC);
        let header: String = self.header.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        b.extend_from_slice(&(header.len() as u64).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        for (name, data) in &self.tensors {
            b.extend_from_slice(&(name.len() as u64).to_le_bytes());
            b.extend_from_slice(name.as_bytes());
            b.extend_from_slice(&(data.len() as u64).to_le_bytes());
            b.extend_from_slice(bytemuck::cast_slice(data));
        }
        b
    }

    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<Checkpoint> {
        let mut r = Reader { b: bytes, pos: 0, what };
        if r.bytes(8)? != MAGIC {
            crate::bail!("{what}: not a rarts checkpoint (expected the magic bytes RARTSCK1)");
        }
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
        if r.pos != bytes.len() {
            crate::bail!("{what}: {} unexpected bytes after the last tensor", bytes.len() - r.pos);
        }
        Ok(ck)
    }

    /// Writes to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&self.to_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        };
        write().ctx(|| format!("writing checkpoint {}", path.display()))
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

/// Writes `text` to `path` atomically.
pub fn write_text_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).and_then(|_| fs::rename(&tmp, path)).ctx(|| format!("writing {}", path.display()))
}
