//! A synthetic image set for tests and smoke runs: deterministic from a seed,
//! any shape and class count, and learnable.
//!
//! Each class gets its own pattern per channel: a brightness level plus a
//! low-frequency plane wave (random direction, frequency and phase). An image
//! is its class pattern plus independent uniform pixel noise. The brightness
//! alone separates classes after global pooling; the waves reward
//! convolutions. Both survive a 4-pixel crop shift and a flip well enough
//! that a short search's loss falls.

use super::{Dataset, Meta, Rng};
use crate::bail;
use crate::error::Result;
use crate::shape::Shape;

/// Peak pixel noise, ± this many grey levels.
const NOISE: f32 = 40.0;
/// Amplitude of a class's wave, grey levels.
const WAVE: f32 = 45.0;

/// `n` images of `c×h×w` in `classes` classes. Labels cycle through the
/// classes in a seeded random order, so every class is present once
/// `n >= classes` and any prefix is close to balanced. Normalisation mean and
/// std are measured on the generated pixels.
pub fn generate(n: usize, c: usize, h: usize, w: usize, classes: usize, seed: u64) -> Result<Dataset> {
    build("synthetic", n, (c, h, w), classes, seed, seed)
}

/// A training set of `n_train` and a test set of `n_test` images that share
/// class patterns but have independent labels and noise. The test set is
/// normalised with the training set's statistics, as for real data.
pub fn generate_pair(
    n_train: usize,
    n_test: usize,
    (c, h, w): (usize, usize, usize),
    classes: usize,
    seed: u64,
) -> Result<(Dataset, Dataset)> {
    let train = build("synthetic", n_train, (c, h, w), classes, seed, seed)?;
    let mut test = build("synthetic-test", n_test, (c, h, w), classes, seed, seed ^ TEST_SALT)?;
    test.mean = train.mean.clone();
    test.std = train.std.clone();
    Ok((train, test))
}

/// Mixed into the seed of a test set's labels and noise.
const TEST_SALT: u64 = 0x7E57_7E57_7E57_7E57;

fn build(
    name: &str,
    n: usize,
    (c, h, w): (usize, usize, usize),
    classes: usize,
    pattern_seed: u64,
    sample_seed: u64,
) -> Result<Dataset> {
    if n == 0 || c == 0 || h == 0 || w == 0 {
        bail!("{name}: shape ({n}, {c}, {h}, {w}) has a zero dimension; expected all positive");
    }
    if classes == 0 || classes > 256 {
        bail!("{name}: {classes} classes; expected 1..=256");
    }
    let shape = Shape::nchw(n, c, h, w);
    let Some(total) = n.checked_mul(c).and_then(|x| x.checked_mul(h)).and_then(|x| x.checked_mul(w)) else {
        bail!("{name}: shape {shape:?} is too large");
    };
    let plane = h * w;
    let patterns = patterns(classes, c, h, w, pattern_seed);

    let mut rng = Rng::stream(sample_seed, 1);
    let mut labels = Vec::with_capacity(n);
    let mut order: Vec<u8> = (0..classes).map(|k| k as u8).collect();
    while labels.len() < n {
        rng.shuffle(&mut order);
        labels.extend(order.iter().take(n - labels.len()));
    }

    let mut rng = Rng::stream(sample_seed, 2);
    let mut pixels = Vec::with_capacity(total);
    for &label in &labels {
        let pat = &patterns[usize::from(label) * c * plane..][..c * plane];
        for &p in pat {
            let v = p + (rng.unit_f32() * 2.0 - 1.0) * NOISE;
            pixels.push(v.round().clamp(0.0, 255.0) as u8);
        }
    }

    let (mean, std) = channel_stats(&pixels, c, plane);
    let meta = Meta {
        name: name.to_string(),
        classes: (0..classes).map(|k| format!("class{k}")).collect(),
        mean,
        std,
        hflip: true,
    };
    Dataset::new(meta, shape, pixels, labels)
}

/// (classes, c, h, w) pattern values in grey levels, before noise.
fn patterns(classes: usize, c: usize, h: usize, w: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::stream(seed, 0);
    let mut out = Vec::with_capacity(classes * c * h * w);
    for _ in 0..classes * c {
        let level = 60.0 + 136.0 * rng.unit_f32();
        let angle = std::f32::consts::TAU * rng.unit_f32();
        // One to three periods across the image: low enough to survive crops.
        let freq = std::f32::consts::TAU * (1.0 + 2.0 * rng.unit_f32()) / h.max(w) as f32;
        let phase = std::f32::consts::TAU * rng.unit_f32();
        let (fy, fx) = (freq * angle.sin(), freq * angle.cos());
        for y in 0..h {
            for x in 0..w {
                out.push(level + WAVE * (fy * y as f32 + fx * x as f32 + phase).sin());
            }
        }
    }
    out
}

/// Per-channel mean and std of pixel/255 over all images.
fn channel_stats(pixels: &[u8], c: usize, plane: usize) -> (Vec<f32>, Vec<f32>) {
    let mut sum = vec![0f64; c];
    let mut sq = vec![0f64; c];
    for (j, &p) in pixels.iter().enumerate() {
        let ch = (j / plane) % c;
        let v = f64::from(p) / 255.0;
        sum[ch] += v;
        sq[ch] += v * v;
    }
    let count = (pixels.len() / c) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
    let std = sq.iter().zip(&mean).map(|(q, m)| ((q / count - m * m).max(0.0)).sqrt().max(1e-3) as f32).collect();
    (mean.into_iter().map(|m| m as f32).collect(), std)
}
