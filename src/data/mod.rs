//! Image data sets held in memory as u8 pixels, the loaders that fill them
//! (CIFAR-10 binary, image folders of JPEG and PNG files, IDX for MNIST and Fashion-MNIST, a synthetic generator,
//! an embedded Fashion-MNIST subset), the `--data` spec that picks one, and
//! the seeded batch sampler that turns them into normalised f32 batches.

pub mod augment;
pub mod cifar10;
pub mod embedded;
mod file;
pub mod folder;
pub mod idx;
mod rng;
pub mod sampler;
pub mod spec;
pub mod synthetic;

pub use augment::{cutout, fill_eval, fill_plain};
pub use rng::Rng;
pub use sampler::{Sampler, SamplerState, SearchSampler};
pub use spec::DataSpec;

use std::fmt;

use crate::bail;
use crate::error::Result;
use crate::shape::Shape;

/// An image classification set in memory.
///
/// Pixels are u8 in NCHW order, exactly as stored on disk; normalisation to
/// f32 happens per batch, so a 50,000-image CIFAR-10 set costs 150 MB, not 600.
/// `Debug` prints a summary, not the pixels.
#[derive(Clone, PartialEq)]
pub struct Dataset {
    name: String,
    shape: Shape,    // (n, c, h, w)
    pixels: Vec<u8>, // (n, c, h, w)
    labels: Vec<u8>, // (n,)
    classes: Vec<String>,
    mean: Vec<f32>, // (c,) per-channel mean of pixel/255
    std: Vec<f32>,  // (c,) per-channel std of pixel/255
    hflip: bool,
}

/// The per-data-set facts that are not pixels: what the loaders know about a
/// format before reading it.
#[derive(Clone, Debug, PartialEq)]
pub struct Meta {
    pub name: String,
    pub classes: Vec<String>,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// Whether a horizontal flip keeps an image in its class (true for
    /// photographs and clothing, false for digits).
    pub hflip: bool,
}

/// A training set and, where the source has one, a test set.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub train: Dataset,
    pub test: Option<Dataset>,
}

impl Dataset {
    /// Checks that the pieces agree: `pixels.len() == n·c·h·w`,
    /// `labels.len() == n`, every label names a class, one mean and one
    /// positive std per channel.
    pub fn new(meta: Meta, shape: Shape, pixels: Vec<u8>, labels: Vec<u8>) -> Result<Self> {
        let Meta { name, classes, mean, std, hflip } = meta;
        let [n, c, h, w] = shape.0;
        if n == 0 || c == 0 || h == 0 || w == 0 {
            bail!("{name}: shape {shape:?} has a zero dimension; expected at least one image of at least 1×1×1");
        }
        if pixels.len() != shape.numel() {
            bail!("{name}: {} pixel bytes for shape {shape:?}; expected {}", pixels.len(), shape.numel());
        }
        if labels.len() != n {
            bail!("{name}: {} labels for {n} images; expected one label per image", labels.len());
        }
        if classes.is_empty() || classes.len() > 256 {
            bail!("{name}: {} classes; expected 1..=256 (labels are bytes)", classes.len());
        }
        if mean.len() != c || std.len() != c {
            bail!(
                "{name}: {} means and {} stds for {c} channels; expected one of each per channel",
                mean.len(),
                std.len()
            );
        }
        if let Some(s) = std.iter().find(|s| !(**s > 0.0 && s.is_finite())) {
            bail!("{name}: normalisation std {s}; expected a positive finite value");
        }
        if let Some(m) = mean.iter().find(|m| !m.is_finite()) {
            bail!("{name}: normalisation mean {m}; expected a finite value");
        }
        if let Some((i, l)) = labels.iter().enumerate().find(|(_, l)| usize::from(**l) >= classes.len()) {
            bail!("{name}: image {i} has label {l}; expected 0..{}", classes.len() - 1);
        }
        Ok(Dataset { name, shape, pixels, labels, classes, mean, std, hflip })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    /// Feeds the shape, pixels and labels into `h`: what a checkpoint
    /// records of the data a run was made on.
    pub fn fingerprint(&self, h: &mut crate::hash::Hasher) {
        for d in self.shape.0 {
            h.update(&(d as u64).to_le_bytes());
        }
        h.update(&self.pixels);
        h.update(&self.labels);
    }
    /// (n, c, h, w).
    pub fn shape(&self) -> Shape {
        self.shape
    }
    /// Number of images.
    pub fn len(&self) -> usize {
        self.shape.n()
    }
    /// Always false: `new` refuses an empty set. Present for clippy's sake.
    pub fn is_empty(&self) -> bool {
        self.shape.n() == 0
    }
    /// Bytes in one image, c·h·w.
    pub fn image_len(&self) -> usize {
        self.shape.c() * self.shape.hw()
    }
    /// All pixels, (n, c, h, w).
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }
    /// Image `i`, (c, h, w). Panics if `i >= len()` (an indexing bug, not input).
    pub fn image(&self, i: usize) -> &[u8] {
        let m = self.image_len();
        &self.pixels[i * m..(i + 1) * m]
    }
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }
    pub fn classes(&self) -> &[String] {
        &self.classes
    }
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }
    /// Per-channel mean of pixel/255, (c,).
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }
    /// Per-channel std of pixel/255, (c,).
    pub fn std(&self) -> &[f32] {
        &self.std
    }
    /// Whether the training augmentation may flip images left-right.
    pub fn hflip(&self) -> bool {
        self.hflip
    }

    /// The first `n` images (at least one, at most all of them), e.g. to
    /// run a quick search on part of a large set.
    pub fn head(&self, n: usize) -> Dataset {
        let n = n.clamp(1, self.len());
        let [_, c, h, w] = self.shape.0;
        Dataset {
            name: self.name.clone(),
            shape: Shape::nchw(n, c, h, w),
            pixels: self.pixels[..n * self.image_len()].to_vec(),
            labels: self.labels[..n].to_vec(),
            classes: self.classes.clone(),
            mean: self.mean.clone(),
            std: self.std.clone(),
            hflip: self.hflip,
        }
    }
}

impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("name", &self.name)
            .field("shape", &self.shape)
            .field("classes", &self.classes.len())
            .field("first_labels", &&self.labels[..self.labels.len().min(10)])
            .field("mean", &self.mean)
            .field("std", &self.std)
            .field("hflip", &self.hflip)
            .finish_non_exhaustive()
    }
}

/// A short human-readable summary for `rarts info`: size, shape, classes,
/// normalisation and the first ten labels.
pub fn describe(ds: &Dataset) -> String {
    let [n, c, h, w] = ds.shape().0;
    let mut counts = vec![0usize; ds.num_classes()];
    for &l in ds.labels() {
        counts[usize::from(l)] += 1;
    }
    let classes: Vec<String> = ds
        .classes()
        .iter()
        .zip(&counts)
        .enumerate()
        .map(|(i, (name, k))| format!("{i} {} ({k})", crate::error::printable(name)))
        .collect();
    let first: Vec<String> = ds.labels().iter().take(10).map(|l| l.to_string()).collect();
    let list = |v: &[f32]| v.iter().map(|x| format!("{x:.4}")).collect::<Vec<_>>().join(", ");
    format!(
        "{}: {n} images, {c}×{h}×{w}\nclasses ({}, images each): {}\nnormalisation: mean [{}], std [{}]; horizontal flip: {}\nfirst labels: {}\n",
        ds.name(),
        ds.num_classes(),
        classes.join(", "),
        list(ds.mean()),
        list(ds.std()),
        if ds.hflip() { "yes" } else { "no" },
        first.join(" "),
    )
}

pub(crate) fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}
