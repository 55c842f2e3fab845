//! The training augmentation (SPEC §4) and per-channel normalisation of u8
//! images into f32 NCHW batch buffers, plus the plain (normalise-only) path
//! for evaluation.
//!
//! Augmentation follows torchvision's `RandomCrop(32, padding=4)` then
//! `RandomHorizontalFlip()` then `Normalize(mean, std)`: the padding is zero
//! in pixel space (before normalisation), so padded pixels come out as
//! `(0 - mean) / std`, not 0.

use super::{Dataset, Rng};
use crate::bail;
use crate::error::Result;

/// Zero padding of the random crop, pixels on each side (SPEC §4).
pub const PAD: usize = 4;

/// One image's augmentation: output pixel (y, x) reads source pixel
/// (y + dy, x' + dx), where x' = w−1−x if `flip` else x, and reads 0 outside
/// the source. A crop at offset (oy, ox) of the image padded by p is
/// dy = oy − p, dx = ox − p.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Aug {
    pub dy: isize,
    pub dx: isize,
    pub flip: bool,
}

impl Aug {
    /// No crop shift, no flip: normalisation only.
    pub const IDENTITY: Aug = Aug { dy: 0, dx: 0, flip: false };

    /// Draws a crop offset uniform in 0..=2·pad for rows, then for columns,
    /// then (only if `allow_flip`) a fair coin for the flip.
    pub fn random(rng: &mut Rng, pad: usize, allow_flip: bool) -> Aug {
        let p = pad as isize;
        let dy = rng.below(2 * pad + 1) as isize - p;
        let dx = rng.below(2 * pad + 1) as isize - p;
        let flip = allow_flip && rng.coin();
        Aug { dy, dx, flip }
    }
}

/// `table[ch * 256 + v] = (v / 255 − mean[ch]) / std[ch]`: the normalised
/// value of every byte in every channel.
pub(crate) fn norm_table(ds: &Dataset) -> Vec<f32> {
    let mut t = Vec::with_capacity(ds.mean().len() * 256);
    for (&m, &s) in ds.mean().iter().zip(ds.std()) {
        t.extend((0..256).map(|v| (v as f32 / 255.0 - m) / s));
    }
    t
}

/// Writes image `i` of `ds`, augmented by `aug` and normalised, into `dst`
/// (c, h, w) (`=`, every element). Panics if `i >= ds.len()` or `dst` is not
/// one image long; the batch functions check both before calling.
pub fn write_image(ds: &Dataset, i: usize, aug: Aug, dst: &mut [f32]) {
    write_with(ds, &norm_table(ds), i, aug, dst);
}

pub(crate) fn write_with(ds: &Dataset, table: &[f32], i: usize, aug: Aug, dst: &mut [f32]) {
    let [_, c, h, w] = ds.shape().0;
    let src = ds.image(i); // (c, h, w)
    assert_eq!(dst.len(), src.len(), "write_image: destination is not one image long");
    for ch in 0..c {
        let lut = &table[ch * 256..(ch + 1) * 256];
        let zero = lut[0];
        let plane = &src[ch * h * w..(ch + 1) * h * w];
        for y in 0..h {
            let row = &mut dst[(ch * h + y) * w..(ch * h + y + 1) * w];
            let sy = y as isize + aug.dy;
            if sy < 0 || sy >= h as isize {
                row.fill(zero);
                continue;
            }
            let srow = &plane[sy as usize * w..(sy as usize + 1) * w];
            for (x, out) in row.iter_mut().enumerate() {
                let xs = if aug.flip { w - 1 - x } else { x };
                let sx = xs as isize + aug.dx;
                *out = if sx < 0 || sx >= w as isize { zero } else { lut[usize::from(srow[sx as usize])] };
            }
        }
    }
}

pub(crate) fn check_buffers(ds: &Dataset, images: usize, x: &[f32], labels: &[f32]) -> Result<()> {
    let [_, c, h, w] = ds.shape().0;
    if x.len() != images * ds.image_len() {
        bail!("batch buffer holds {} floats; expected {images}×{c}×{h}×{w} = {}", x.len(), images * ds.image_len());
    }
    if labels.len() != images {
        bail!("label buffer holds {} floats; expected {images}", labels.len());
    }
    Ok(())
}

/// Fills `x` (b, c, h, w) and `labels` (b,) with images `indices` of `ds`,
/// normalised, not augmented (`=`). `b = indices.len()`.
pub fn fill_plain(ds: &Dataset, indices: &[usize], x: &mut [f32], labels: &mut [f32]) -> Result<()> {
    check_buffers(ds, indices.len(), x, labels)?;
    if let Some(&i) = indices.iter().find(|&&i| i >= ds.len()) {
        bail!("image index {i} is out of range for {} ({} images)", ds.name(), ds.len());
    }
    let table = norm_table(ds);
    let m = ds.image_len();
    for ((&i, xo), yo) in indices.iter().zip(x.chunks_exact_mut(m)).zip(labels.iter_mut()) {
        write_with(ds, &table, i, Aug::IDENTITY, xo);
        *yo = f32::from(ds.labels()[i]);
    }
    Ok(())
}

/// The evaluation path: fills `x` (b, c, h, w) and `labels` (b,) with images
/// `start..start + b` of `ds` in order, normalised only, where `b = labels.len()`.
/// Returns how many images it wrote: `b`, or fewer for the last batch, whose
/// unused tail of `x` and `labels` is left as it was.
pub fn fill_eval(ds: &Dataset, start: usize, x: &mut [f32], labels: &mut [f32]) -> Result<usize> {
    let b = labels.len();
    check_buffers(ds, b, x, labels)?;
    if start >= ds.len() {
        bail!("evaluation batch starts at image {start}; {} has {} images", ds.name(), ds.len());
    }
    let count = b.min(ds.len() - start);
    let indices: Vec<usize> = (start..start + count).collect();
    let m = ds.image_len();
    fill_plain(ds, &indices, &mut x[..count * m], &mut labels[..count])?;
    Ok(count)
}

/// DARTS' `Cutout(length)` (quark0/darts `cnn/utils.py`) on one normalised
/// image `x` (c, h, w), in place: a centre drawn uniformly over the image,
/// the `size`×`size` square around it (clipped at the borders) set to 0 in
/// every channel. `size` 0 leaves the image as it is.
pub fn cutout(rng: &mut Rng, size: usize, c: usize, h: usize, w: usize, x: &mut [f32]) {
    if size == 0 {
        return;
    }
    let (cy, cx) = (rng.below(h), rng.below(w));
    let (y0, y1) = (cy.saturating_sub(size / 2), (cy + size / 2).min(h));
    let (x0, x1) = (cx.saturating_sub(size / 2), (cx + size / 2).min(w));
    for plane in x.chunks_exact_mut(h * w).take(c) {
        for row in plane.chunks_exact_mut(w).take(y1).skip(y0) {
            row[x0..x1].fill(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cutout;
    use crate::data::Rng;

    #[test]
    fn cutout_zeroes_one_clipped_square_in_every_channel() {
        let (c, h, w) = (3, 10, 12);
        let mut rng = Rng::new(5);
        for _ in 0..50 {
            let mut x = vec![1.0f32; c * h * w];
            cutout(&mut rng, 4, c, h, w, &mut x);
            let zeros: Vec<usize> = (0..h * w).filter(|&i| x[i] == 0.0).collect();
            // At most 4×4, at least the 2×2 a corner centre keeps.
            assert!((4..=16).contains(&zeros.len()), "{} zeros", zeros.len());
            for ch in 1..c {
                assert!(zeros.iter().all(|&i| x[ch * h * w + i] == 0.0), "channel {ch} differs");
            }
            assert_eq!(x.iter().filter(|v| **v == 0.0).count(), c * zeros.len());
        }
        let mut x = vec![1.0f32; c * h * w];
        cutout(&mut rng, 0, c, h, w, &mut x);
        assert!(x.iter().all(|v| *v == 1.0));
    }
}
