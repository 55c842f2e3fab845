//! Elementwise kernels and the BLAS-1 reductions.

mod cpu;
mod cuda;
mod op;

/// The CUDA kernels this family launches: its module and their names.
pub const CUDA_KERNELS: (&str, &[&str]) = cuda::Kernels::NAMES;

pub(crate) use cpu::dot_f64;

use crate::device::kernel_params::{DevPtr, kernel_params};
use crate::device::{Device, Write};
use crate::error::Result;

pub use op::*;

/// One term of a mixed edge in [`ElementwiseOps::mix_bwd`]: its weight's
/// index, its input, and its input's gradient with how to write it (absent
/// when that gradient is not needed).
pub struct MixGrad<'a, B> {
    pub idx: usize,
    pub x: &'a B,
    pub dx: Option<(&'a mut B, Write)>,
}

/// Shape of a per-channel factor: x `(n, c, hw)`, factors `m` `(cm)`,
/// channel `ch` taking `m[ch mod cm]` (`cm` divides `c`: several networks
/// side by side share one set of factors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleGeom {
    pub n: usize,
    pub c: usize,
    pub hw: usize,
    pub cm: usize,
}

/// Terms the mix kernels take in one launch; `MIX_MAX` of `kernels/elementwise.cu`.
pub const MIX_MAX: usize = 40;

kernel_params! {
    /// What the mix kernels are told, passed by value (832 bytes): the up to
    /// [`MIX_MAX`] terms of a mixed node (each term's input, its input's
    /// gradient — 0: not wanted — and its weight's index), their count `nt`
    /// and the `n` elements of y; `add` (mix_fwd) 0 overwrites y, 1 adds;
    /// bit t of `add_mask` (mix_bwd_partial) set: term t adds to its gradient
    /// rather than overwriting it; `parts` (mix_bwd_finish) the partial sums
    /// per term.
    pub struct MixParams {
        pub x: [DevPtr; MIX_MAX],
        pub d: [DevPtr; MIX_MAX],
        pub idx: [i32; MIX_MAX],
        pub nt: i32,
        pub add: i32,
        pub add_mask: u64,
        pub n: i64,
        pub parts: i32,
    }
}

kernel_params! {
    /// fill_f32: y[0..n) = v.
    pub struct FillParams {
        pub v: f32,
        pub n: i64,
    }
}

kernel_params! {
    /// The kernels over n elements told nothing else: copy, relu and mul (forward
    /// and backward), sum_all_bwd, reduce_partial.
    pub struct LenParams {
        pub n: i64,
    }
}

kernel_params! {
    /// copy_elem_f32: `y[to] = x[from]`.
    pub struct CopyElemParams {
        pub from: i64,
        pub to: i64,
    }
}

kernel_params! {
    /// axpy_f32: y (=|+=) a·x over n elements, `add` 0 | 1.
    pub struct AxpyParams {
        pub a: f32,
        pub add: i32,
        pub n: i64,
    }
}

kernel_params! {
    /// drop_path_fwd/bwd: `total` elements, each sample's mask entry covering
    /// `per` of them; `add` 0 overwrites, 1 adds.
    pub struct DropPathParams {
        pub per: i64,
        pub total: i64,
        pub add: i32,
    }
}

kernel_params! {
    /// axpy_elem_f32: y += `w[idx]·x` over n elements.
    pub struct AxpyElemParams {
        pub idx: i64,
        pub n: i64,
    }
}

kernel_params! {
    /// reduce_finish_f32: the sum of `parts` partial sums into `out[idx]`, added to
    /// it when `accumulate` is 1.
    pub struct ReduceFinishParams {
        pub parts: i32,
        pub accumulate: i32,
        pub idx: i64,
    }
}

kernel_params! {
    /// The channel-scale kernels: x (n, c, hw) scaled per channel by m, whose cm
    /// entries repeat over the c channels; `add` (bwd_data) 0 overwrites, 1 adds.
    pub struct ChannelScaleParams {
        pub n: i64,
        pub hw: i64,
        pub c: i32,
        pub cm: i32,
        pub add: i32,
    }
}

/// Flat kernels over whole buffers and the reductions
/// (`kernels/elementwise.cu` on CUDA).
pub trait ElementwiseOps: Device {
    /// `y = v`
    fn fill(&self, y: &mut Self::Buf, v: f32) -> Result<()>;
    /// `dst = src`
    fn copy(&self, src: &Self::Buf, dst: &mut Self::Buf) -> Result<()>;
    /// `y (=|+=) a·x`, as `write` says
    fn axpy(&self, a: f32, x: &Self::Buf, y: &mut Self::Buf, write: Write) -> Result<()>;
    /// `y[to] = x[from]` (a loss into the step's statistics, read later).
    fn copy_elem(&self, x: &Self::Buf, from: usize, y: &mut Self::Buf, to: usize) -> Result<()>;
    /// `y = max(x, 0)`
    fn relu_fwd(&self, x: &Self::Buf, y: &mut Self::Buf) -> Result<()>;
    /// `dx += dy · [x > 0]`
    fn relu_bwd(&self, x: &Self::Buf, dy: &Self::Buf, dx: &mut Self::Buf) -> Result<()>;
    /// `y = a ⊙ b`
    fn mul_fwd(&self, a: &Self::Buf, b: &Self::Buf, y: &mut Self::Buf) -> Result<()>;
    /// `da += dy ⊙ b` (the other factor's gradient is the same call with a, b swapped)
    fn mul_bwd(&self, b: &Self::Buf, dy: &Self::Buf, da: &mut Self::Buf) -> Result<()>;
    /// `y[n, …] (=|+=) x[n, …] · mask[n]`, as `write` says — drop path
    /// (adding: a term of a sum with drop path); `x` holds `mask.len()`
    /// equal samples.
    fn drop_path_fwd(&self, x: &Self::Buf, mask: &Self::Buf, y: &mut Self::Buf, write: Write) -> Result<()>;
    /// `dx[n, …] (=|+=) dy[n, …] · mask[n]`, as `write` says
    fn drop_path_bwd(&self, mask: &Self::Buf, dy: &Self::Buf, dx: &mut Self::Buf, write: Write) -> Result<()>;
    /// `y[n, ch, …] = x[n, ch, …] · m[ch mod cm]` — a factor per channel
    /// (the width search's mask mix `Σ_k w_k · mask_k` as one factor a
    /// channel).
    fn channel_scale_fwd(&self, g: &ScaleGeom, x: &Self::Buf, m: &Self::Buf, y: &mut Self::Buf) -> Result<()>;
    /// `dx (=|+=) dy · m[ch mod cm]` (as its `Write` says) and `dm[k] += Σ dy ·
    /// x` over the samples, the channels `ch ≡ k` and the pixels (summed in
    /// f64); each only when given.
    #[allow(clippy::too_many_arguments)]
    fn channel_scale_bwd(
        &self,
        g: &ScaleGeom,
        x: &Self::Buf,
        m: &Self::Buf,
        dy: &Self::Buf,
        dx: Option<(&mut Self::Buf, Write)>,
        dm: Option<&mut Self::Buf>,
    ) -> Result<()>;
    /// `y += w[idx] · x` — one term of a mixed edge, the weight read on the device.
    fn axpy_elem(&self, w: &Self::Buf, idx: usize, x: &Self::Buf, y: &mut Self::Buf) -> Result<()>;
    /// `y = Σ_t w[idx_t] · x_t` — a mixed edge's forward, the weights read on
    /// the device. The default is a fill and one `axpy_elem` per term.
    fn mix_fwd(&self, w: &Self::Buf, terms: &[(usize, &Self::Buf)], y: &mut Self::Buf) -> Result<()> {
        self.fill(y, 0.0)?;
        for &(idx, x) in terms {
            self.axpy_elem(w, idx, x, y)?;
        }
        Ok(())
    }
    /// `y = Σ_t x_t[n, …] · mask_t[n]` (no mask: the term as it is) — the sum
    /// of an evaluation node's ops, each with its drop path. The default is
    /// one `drop_path_fwd` or `axpy` per term, the first overwriting.
    fn masked_sum_fwd(&self, terms: &[(&Self::Buf, Option<&Self::Buf>)], y: &mut Self::Buf) -> Result<()> {
        for (t, &(x, mask)) in terms.iter().enumerate() {
            let write = if t == 0 { Write::Set } else { Write::Add };
            match mask {
                Some(m) => self.drop_path_fwd(x, m, y, write)?,
                None => self.axpy(1.0, x, y, write)?,
            }
        }
        Ok(())
    }
    /// `out[idx] += Σ a ⊙ b` — the gradient of a mixed-edge weight.
    fn dot_elem(&self, a: &Self::Buf, b: &Self::Buf, out: &mut Self::Buf, idx: usize) -> Result<()>;
    /// A mixed edge's backward, `y = Σ_t w[idx_t] · x_t`, in one pass over
    /// `dy`: for each term `dx_t (=|+=) w[idx_t] · dy` as its `Write` says,
    /// and with `dw`, `dw[idx_t] += Σ dy ⊙ x_t`. The same as one `axpy_elem`
    /// and one `dot_elem` per term.
    fn mix_bwd(
        &self,
        w: &Self::Buf,
        dy: &Self::Buf,
        terms: &mut [MixGrad<'_, Self::Buf>],
        dw: Option<&mut Self::Buf>,
    ) -> Result<()>;
    /// `y[0] = Σ x`
    fn sum_all_fwd(&self, x: &Self::Buf, y: &mut Self::Buf) -> Result<()>;
    /// `dx += dy[0]` for every element
    fn sum_all_bwd(&self, dy: &Self::Buf, dx: &mut Self::Buf) -> Result<()>;
}
