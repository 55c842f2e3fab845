//! The IDX format of MNIST and Fashion-MNIST (LeCun et al.), raw or gzipped.
//!
//! Big-endian header: a 4-byte magic (0, 0, type 0x08 = unsigned byte,
//! number of dimensions), then one u32 per dimension, then the data.
//! Images: magic 2051 (3 dimensions: n, rows, cols). Labels: magic 2049
//! (1 dimension: n).

use std::path::{Path, PathBuf};

use super::{Dataset, Meta, Split, file, names};
use crate::bail;
use crate::error::{Error, Result};
use crate::shape::Shape;

pub const IMAGES_MAGIC: u32 = 2051;
pub const LABELS_MAGIC: u32 = 2049;

pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// Which IDX data set a directory holds; it decides class names,
/// normalisation and whether flips are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Mnist,
    FashionMnist,
}

pub const FASHION_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
pub const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

impl Kind {
    pub fn meta(self, name: &str) -> Meta {
        match self {
            // Mean and std of the 60,000 training images, pixel/255.
            Kind::FashionMnist => Meta {
                name: name.to_string(),
                classes: names(&FASHION_CLASSES),
                mean: vec![0.2860],
                std: vec![0.3530],
                hflip: true,
            },
            // A mirrored digit is a different glyph (or none): no flips.
            Kind::Mnist => Meta {
                name: name.to_string(),
                classes: names(&MNIST_CLASSES),
                mean: vec![0.1307],
                std: vec![0.3081],
                hflip: false,
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Mnist => "mnist",
            Kind::FashionMnist => "fashion-mnist",
        }
    }
}

/// Loads a directory with `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`
/// and optionally `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each
/// raw or with a `.gz` suffix.
pub fn load(dir: &Path, kind: Kind) -> Result<Split> {
    if !dir.is_dir() {
        bail!(
            "{}: no such directory; expected a {} directory with {TRAIN_IMAGES}[.gz] and {TRAIN_LABELS}[.gz] \
             (and optionally {TEST_IMAGES}[.gz], {TEST_LABELS}[.gz])",
            dir.display(),
            kind.name()
        );
    }
    let name = kind.name();
    let train_images = find(dir, TRAIN_IMAGES)?;
    let train_labels = find(dir, TRAIN_LABELS)?;
    let train = load_pair(&train_images, &train_labels, kind.meta(name))?;
    let test = match (find(dir, TEST_IMAGES), find(dir, TEST_LABELS)) {
        (Ok(images), Ok(labels)) => {
            let test = load_pair(&images, &labels, kind.meta(&format!("{name}-test")))?;
            let (a, b) = (train.shape(), test.shape());
            if (a.c(), a.h(), a.w()) != (b.c(), b.h(), b.w()) {
                bail!(
                    "{}: images of {}×{}, but {} has images of {}×{}; expected the test images to be the size \
                     of the training images",
                    images.display(),
                    b.h(),
                    b.w(),
                    train_images.display(),
                    a.h(),
                    a.w()
                );
            }
            Some(test)
        }
        (Err(_), Err(_)) => None,
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => {
            bail!("{e} (the test images and labels come as a pair)")
        }
    };
    Ok(Split { train, test })
}

/// `dir/stem` if present, else `dir/stem.gz`.
fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    let raw = dir.join(stem);
    if file::present(&raw)? {
        return Ok(raw);
    }
    let gz = dir.join(format!("{stem}.gz"));
    if file::present(&gz)? {
        return Ok(gz);
    }
    bail!("{}: neither {stem} nor {stem}.gz is there", dir.display())
}

/// Loads one images file and one labels file (raw or gzipped) into a set.
pub fn load_pair(images: &Path, labels: &Path, meta: Meta) -> Result<Dataset> {
    let img_map = file::map(images, "an IDX images file (magic 2051)")?;
    let lab_map = file::map(labels, "an IDX labels file (magic 2049)")?;
    parse(&img_map, &lab_map, &images.display().to_string(), &labels.display().to_string(), meta)
}

/// Parses an images stream and a labels stream held in memory, each raw or
/// gzipped; `images_what` and `labels_what` name them in errors.
pub fn parse(images: &[u8], labels: &[u8], images_what: &str, labels_what: &str, meta: Meta) -> Result<Dataset> {
    let images = inflate(images, images_what)?;
    let labels = inflate(labels, labels_what)?;
    let (shape, pixels) = parse_images(&images, images_what)?;
    let labels = parse_labels(&labels, labels_what, meta.classes.len())?;
    if labels.len() != shape.n() {
        bail!(
            "{labels_what}: {} labels but {images_what} has {} images; expected the same count",
            labels.len(),
            shape.n()
        );
    }
    Dataset::new(meta, shape, pixels.to_vec(), labels.to_vec())
}

fn inflate<'a>(bytes: &'a [u8], what: &str) -> Result<std::borrow::Cow<'a, [u8]>> {
    Ok(if file::is_gzip(bytes) { file::gunzip(bytes, what)?.into() } else { bytes.into() })
}

/// Reads the header fields after the magic: `dims` big-endian u32 values.
fn header(bytes: &[u8], what: &str, magic: u32, dims: usize, kind: &str) -> Result<Vec<usize>> {
    let head = 4 + 4 * dims;
    let truncated = |n: usize| {
        format!("{what}: {n} bytes is shorter than the {head}-byte IDX {kind} header; the file looks truncated")
    };
    if bytes.len() < 4 {
        return Err(Error(truncated(bytes.len())));
    }
    let word = |i: usize| u32::from_be_bytes([bytes[4 * i], bytes[4 * i + 1], bytes[4 * i + 2], bytes[4 * i + 3]]);
    // The magic first: a labels file given as images says so, not "truncated".
    let found = word(0);
    if found != magic {
        bail!(
            "{what}: IDX magic {found} (0x{found:08x}); expected {magic} (0x{magic:08x}) for an IDX {kind} file \
             of unsigned bytes with {dims} dimension{}",
            if dims == 1 { "" } else { "s" }
        );
    }
    if bytes.len() < head {
        return Err(Error(truncated(bytes.len())));
    }
    Ok((1..=dims).map(|i| word(i) as usize).collect())
}

/// Checks the size of the data after a header: exact, or an error saying by
/// how much it is short or long.
fn body<'a>(bytes: &'a [u8], what: &str, head: usize, want: usize, desc: &str) -> Result<&'a [u8]> {
    let have = bytes.len() - head;
    if have < want {
        bail!("{what}: {have} data bytes after the header; expected {want} for {desc}; the file looks truncated");
    }
    if have > want {
        bail!("{what}: {have} data bytes after the header; expected exactly {want} for {desc}");
    }
    Ok(&bytes[head..])
}

/// An uncompressed IDX images stream: (n, 1, rows, cols) and its pixels.
pub fn parse_images<'a>(bytes: &'a [u8], what: &str) -> Result<(Shape, &'a [u8])> {
    let d = header(bytes, what, IMAGES_MAGIC, 3, "images")?;
    let (n, h, w) = (d[0], d[1], d[2]);
    if n == 0 || h == 0 || w == 0 {
        bail!("{what}: header says {n} images of {h}×{w}; expected at least one image of at least 1×1");
    }
    let want = n.checked_mul(h).and_then(|x| x.checked_mul(w));
    let Some(want) = want else {
        bail!("{what}: header says {n} images of {h}×{w}, too large to hold in memory");
    };
    let pixels = body(bytes, what, 16, want, &format!("{n} images of {h}×{w}"))?;
    Ok((Shape::nchw(n, 1, h, w), pixels))
}

/// An uncompressed IDX labels stream; every label must be below `classes`.
pub fn parse_labels<'a>(bytes: &'a [u8], what: &str, classes: usize) -> Result<&'a [u8]> {
    let d = header(bytes, what, LABELS_MAGIC, 1, "labels")?;
    let n = d[0];
    if n == 0 {
        bail!("{what}: header says 0 labels; expected at least one");
    }
    let labels = body(bytes, what, 8, n, &format!("{n} labels"))?;
    if let Some((i, l)) = labels.iter().enumerate().find(|(_, l)| usize::from(**l) >= classes) {
        bail!("{what}: label {i} is {l}; expected 0..{}", classes.saturating_sub(1));
    }
    Ok(labels)
}

/// Inflates a gzipped IDX file of at most `limit` bytes (the loader's bound
/// is 1 GiB); more is an error naming `what`, not an allocation.
pub fn gunzip_checked(bytes: &[u8], what: &str, limit: u64) -> Result<Vec<u8>> {
    file::gunzip_at_most(bytes, what, limit)
}
