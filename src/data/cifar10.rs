//! CIFAR-10 in its official binary layout (Krizhevsky, 2009): records of
//! 3,073 bytes, one label byte then 3,072 pixel bytes (the 1,024 red values,
//! then green, then blue, each plane 32×32 row-major). That is already CHW,
//! so a record's pixels are copied straight into the NCHW buffer.

use std::path::{Path, PathBuf};

use super::{Dataset, Meta, Split, file, names};
use crate::bail;
use crate::error::Result;
use crate::shape::Shape;

pub const CHANNELS: usize = 3;
pub const SIDE: usize = 32;
pub const IMAGE_BYTES: usize = CHANNELS * SIDE * SIDE; // 3072
pub const RECORD_BYTES: usize = 1 + IMAGE_BYTES; // 3073
pub const TRAIN_FILES: [&str; 5] =
    ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
pub const TEST_FILE: &str = "test_batch.bin";
/// The directory the official archive `cifar-10-binary.tar.gz` unpacks to.
pub const ARCHIVE_DIR: &str = "cifar-10-batches-bin";

pub const CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
/// Per-channel mean and std of the 50,000 training images, pixel/255
/// (the values quark0/darts `cnn/utils.py` uses).
pub const MEAN: [f32; 3] = [0.491_399_68, 0.482_158_27, 0.446_531_24];
pub const STD: [f32; 3] = [0.247_032_33, 0.243_485_05, 0.261_587_68];

const EXPECTED: &str = "CIFAR-10 binary records of 3073 bytes (1 label byte + 3072 pixel bytes)";

pub fn meta(name: &str) -> Meta {
    Meta { name: name.to_string(), classes: names(&CLASSES), mean: MEAN.to_vec(), std: STD.to_vec(), hflip: true }
}

/// Loads `path`: a single `.bin` file (a training set, no test set), or a
/// directory holding `data_batch_1.bin`..`data_batch_5.bin` and optionally
/// `test_batch.bin` (or the archive's `cifar-10-batches-bin/` inside it).
pub fn load(path: &Path) -> Result<Split> {
    if path.is_file() {
        return Ok(Split { train: load_files("cifar10", &[path.to_path_buf()])?, test: None });
    }
    if file::present(path)?
        && let Some(kind) = file::special_kind(path).filter(|k| *k != "a folder")
    {
        bail!("{}: {kind}, not a CIFAR-10 folder or file", path.display());
    }
    if !path.is_dir() {
        bail!(
            "{}: no such file or directory; expected a CIFAR-10 directory with {}..{} \
             (and optionally {TEST_FILE}), or a single .bin file",
            path.display(),
            TRAIN_FILES[0],
            TRAIN_FILES[4]
        );
    }
    let nested = path.join(ARCHIVE_DIR);
    let dir = if !file::present(&path.join(TRAIN_FILES[0]))? && nested.is_dir() { nested } else { path.to_path_buf() };
    let train: Vec<PathBuf> = TRAIN_FILES.iter().map(|f| dir.join(f)).collect();
    let mut missing = Vec::new();
    for (f, p) in TRAIN_FILES.iter().zip(&train) {
        if !file::present(p)? {
            missing.push(*f);
        }
    }
    if !missing.is_empty() {
        bail!(
            "{}: missing {}; expected a CIFAR-10 directory with {}..{} (and optionally {TEST_FILE})",
            dir.display(),
            missing.join(", "),
            TRAIN_FILES[0],
            TRAIN_FILES[4]
        );
    }
    let test_path = dir.join(TEST_FILE);
    let test = if file::present(&test_path)? { Some(load_files("cifar10-test", &[test_path])?) } else { None };
    Ok(Split { train: load_files("cifar10", &train)?, test })
}

/// Reads and concatenates the records of `files`, in order.
pub fn load_files(name: &str, files: &[PathBuf]) -> Result<Dataset> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for path in files {
        let map = file::map(path, EXPECTED)?;
        parse_into(&map, &path.display().to_string(), &mut pixels, &mut labels)?;
    }
    let n = labels.len();
    Dataset::new(meta(name), Shape::nchw(n, CHANNELS, SIDE, SIDE), pixels, labels)
}

/// Parses CIFAR-10 records held in memory; `what` names them in errors.
pub fn parse(bytes: &[u8], name: &str, what: &str) -> Result<Dataset> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    parse_into(bytes, what, &mut pixels, &mut labels)?;
    let n = labels.len();
    Dataset::new(meta(name), Shape::nchw(n, CHANNELS, SIDE, SIDE), pixels, labels)
}

fn parse_into(bytes: &[u8], what: &str, pixels: &mut Vec<u8>, labels: &mut Vec<u8>) -> Result<()> {
    if bytes.is_empty() {
        bail!("{what}: empty file; expected {EXPECTED}");
    }
    if !bytes.len().is_multiple_of(RECORD_BYTES) {
        bail!(
            "{what}: its size, {} bytes, is not a multiple of the {RECORD_BYTES}-byte CIFAR-10 record \
             ({} whole records and {} bytes over); expected {EXPECTED}",
            bytes.len(),
            bytes.len() / RECORD_BYTES,
            bytes.len() % RECORD_BYTES
        );
    }
    let n = bytes.len() / RECORD_BYTES;
    pixels.reserve(n * IMAGE_BYTES);
    labels.reserve(n);
    for (i, rec) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        let label = rec[0];
        if usize::from(label) >= CLASSES.len() {
            bail!("{what}: record {i} (byte offset {}) has label byte {label}; expected 0..9", i * RECORD_BYTES);
        }
        labels.push(label);
        pixels.extend_from_slice(&rec[1..]);
    }
    Ok(())
}
