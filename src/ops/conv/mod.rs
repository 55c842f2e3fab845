//! 2-D convolution with stride, padding, dilation and groups; dense 3×3 and
//! 1×1, depthwise k×k (sep_conv / dil_conv). Optional ReLU on the input.
//!
//! On the CPU (`cpu.rs`) three implementations, chosen per geometry by
//! [`path`]:
//! - `depthwise`: groups = cin = cout (every sep_conv / dil_conv tap), direct
//!   loops over a zero-padded copy of each plane, no per-tap bounds checks;
//! - `gemm`: everything else (1×1 convs, FactorizedReduce, the stem; one
//!   group or several) as a matrix product per group, with an im2col copy
//!   when the conv is not a plain 1×1;
//! - `reference`: the straightforward loops, the specification the other two
//!   are tested against (tests/conv_paths.rs).
//!
//! On CUDA (`cuda.rs`) the geometry picks one of the three kernel families
//! of `kernels/conv.cu`.

mod chain;
mod cpu;
mod cuda;
mod op;

/// The CUDA kernels this family launches: its module and their names.
pub const CUDA_KERNELS: (&str, &[&str]) = cuda::Kernels::NAMES;
pub mod depthwise;
pub mod gemm;
pub mod reference;

use crate::device::kernel_params::kernel_params;
use crate::device::{Device, Write};
use crate::error::Result;
use crate::ops::bn::BnGeom;
use crate::real::Real;
use crate::shape::Shape;

pub use op::*;

/// 2-D convolution, NCHW input `(n, cin, h, w)`, weights `(cout, cin/groups, k, k)`,
/// output `(n, cout, oh, ow)`. With `relu_in` the kernel reads `max(x, 0)`
/// instead of `x` (every DARTS conv is preceded by a ReLU; fusing it saves a
/// buffer and a pass).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub oh: usize,
    pub ow: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub dil: usize,
    pub groups: usize,
    pub relu_in: bool,
}

impl ConvGeom {
    /// Output size of one spatial axis, as PyTorch computes it.
    pub fn out_len(len: usize, k: usize, stride: usize, pad: usize, dil: usize) -> usize {
        (len + 2 * pad - dil * (k - 1) - 1) / stride + 1
    }
    pub fn x_shape(&self) -> Shape {
        Shape::nchw(self.n, self.cin, self.h, self.w)
    }
    pub fn w_shape(&self) -> Shape {
        Shape::nchw(self.cout, self.cin / self.groups, self.k, self.k)
    }
    pub fn y_shape(&self) -> Shape {
        Shape::nchw(self.n, self.cout, self.oh, self.ow)
    }
    /// Multiply-adds of the forward pass.
    pub fn macs(&self) -> usize {
        self.n * self.cout * self.oh * self.ow * (self.cin / self.groups) * self.k * self.k
    }
}

/// A chain: ReLU → depthwise k×k → 1×1 → BatchNorm, every sep_conv's and
/// dil_conv's body, run as one op so that a backend can keep each image's
/// intermediates (the depthwise output and its gradient, the 1×1 output's
/// gradient) in cache rather than passing them through memory, and take
/// BatchNorm's statistics while the 1×1 output is in cache (`chain.rs` on
/// the CPU).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChainGeom {
    /// The depthwise conv, x → d (any stride, dilation, ReLU on x).
    pub dw: ConvGeom,
    /// The 1×1 conv, d → p (stride 1, no padding, no ReLU; groups = the
    /// networks side by side).
    pub pw: ConvGeom,
    /// The BatchNorm, p → y.
    pub bn: BnGeom,
}

impl ChainGeom {
    /// The chain of `dw`, `pw` and `bn`; `None` unless `dw` is depthwise,
    /// `pw` a plain 1×1 conv reading its output and `bn` a BatchNorm of
    /// that.
    pub fn new(dw: ConvGeom, pw: ConvGeom, bn: BnGeom) -> Option<Self> {
        let depthwise = dw.groups == dw.cin && dw.cout == dw.cin;
        let plain = pw.k == 1 && pw.stride == 1 && pw.pad == 0 && pw.dil == 1 && !pw.relu_in;
        let reads_d = pw.x_shape() == dw.y_shape() && pw.oh == dw.oh && pw.ow == dw.ow;
        let normalises_p = bn.n == pw.n && bn.c == pw.cout && bn.hw == pw.oh * pw.ow;
        (depthwise && plain && reads_d && normalises_p).then_some(ChainGeom { dw, pw, bn })
    }

    /// Multiply-adds of the two convs' forward pass.
    pub fn macs(&self) -> usize {
        self.dw.macs() + self.pw.macs()
    }
}

/// What a chain's forward reads and writes of its BatchNorm: γ and β (with
/// `affine`), the running statistics, and in training (`batch`) the 1×1
/// output it normalises and the batch's mean and 1/std (both kept for the
/// backward; the running statistics are then updated). Without `batch` the
/// running statistics normalise.
pub struct ChainNorm<'a, B> {
    pub gamma: Option<&'a B>,
    pub beta: Option<&'a B>,
    pub running_mean: &'a mut B,
    pub running_var: &'a mut B,
    /// `(p, saved)`: the 1×1 output and the batch's mean and 1/std.
    pub batch: Option<(&'a mut B, &'a mut B)>,
}

/// What a chain's backward reads besides x, the weights and dy: the
/// forward's depthwise output `d`, 1×1 output `p` and BatchNorm statistics
/// `saved`, and γ.
pub struct ChainSaved<'a, B> {
    pub d: &'a B,
    pub p: &'a B,
    pub saved: &'a B,
    pub gamma: Option<&'a B>,
}

kernel_params! {
    /// What every convolution kernel is told (ConvParams of src/ops/conv/mod.rs):
    /// x (n, cin, h, wd) → y (n, cout, oh, ow) by a k×k filter with stride,
    /// padding, dilation and groups (a depthwise conv's channels are cin); `relu`
    /// 1 applies ReLU to x as it is read; `add` 0 overwrites the gradient written,
    /// 1 adds to it (`dw_add` the filter gradient's, where a kernel writes both);
    /// `data_blocks` (dwconv_bwd) the blocks that take dx, (chain_bwd) BatchNorm's
    /// partial sums per channel; `chunk` (pwconv's filter gradient) the products of
    /// each split, (chain_fwd, chain_bwd) the output pixels of a block.
    pub struct ConvParams {
        pub n: i32,
        pub cin: i32,
        pub cout: i32,
        pub h: i32,
        pub wd: i32,
        pub oh: i32,
        pub ow: i32,
        pub k: i32,
        pub stride: i32,
        pub pad: i32,
        pub dil: i32,
        pub groups: i32,
        pub relu: i32,
        pub add: i32,
        pub dw_add: i32,
        pub data_blocks: i32,
        pub chunk: i64,
    }
}

/// Convolution (`kernels/conv.cu` on CUDA).
pub trait ConvOps: Device {
    /// `y = conv(relu?(x), w)`, x `(n, cin, h, w)`, w `(cout, cin/g, k, k)`, y `(n, cout, oh, ow)`
    fn conv2d_fwd(&self, g: &ConvGeom, x: &Self::Buf, w: &Self::Buf, y: &mut Self::Buf) -> Result<()>;
    /// `dx (=|+=) convᵀ(dy, w) · [x > 0 if relu_in]`, as `write` says
    fn conv2d_bwd_data(
        &self,
        g: &ConvGeom,
        x: &Self::Buf,
        w: &Self::Buf,
        dy: &Self::Buf,
        dx: &mut Self::Buf,
        write: Write,
    ) -> Result<()>;
    /// `dw (=|+=) Σ_n dy ⋆ relu?(x)`, as `write` says
    fn conv2d_bwd_filter(
        &self,
        g: &ConvGeom,
        x: &Self::Buf,
        dy: &Self::Buf,
        dw: &mut Self::Buf,
        write: Write,
    ) -> Result<()>;
    /// Whichever of the two gradients are asked for, as
    /// [`conv2d_bwd_data`](Self::conv2d_bwd_data) and
    /// [`conv2d_bwd_filter`](Self::conv2d_bwd_filter) compute them; a
    /// backend that can serve both in one pass over x and dy overrides it.
    fn conv2d_bwd(
        &self,
        g: &ConvGeom,
        x: &Self::Buf,
        w: &Self::Buf,
        dy: &Self::Buf,
        dx: Option<(&mut Self::Buf, Write)>,
        dw: Option<(&mut Self::Buf, Write)>,
    ) -> Result<()> {
        bwd_each(self, g, x, w, dy, dx, dw)
    }

    // The chains (see [`ChainGeom`]).

    /// `d = dwconv(relu?(x), w_dw)`, `p = w_pw · d`, `y = BN(p)`: d kept for
    /// the backward, and p too in training (see [`ChainNorm`]).
    #[allow(clippy::too_many_arguments)]
    fn chain_fwd(
        &self,
        c: &ChainGeom,
        x: &Self::Buf,
        w_dw: &Self::Buf,
        w_pw: &Self::Buf,
        norm: ChainNorm<'_, Self::Buf>,
        d: &mut Self::Buf,
        y: &mut Self::Buf,
    ) -> Result<()>;

    /// Whichever gradients are asked for, from `dy` and what the training
    /// forward kept: x's and the two filters' written or added as their
    /// `Write` says, γ's and β's added.
    #[allow(clippy::too_many_arguments)]
    fn chain_bwd(
        &self,
        c: &ChainGeom,
        x: &Self::Buf,
        w_dw: &Self::Buf,
        w_pw: &Self::Buf,
        saved: ChainSaved<'_, Self::Buf>,
        dy: &Self::Buf,
        grads: ChainGrads<'_, Self::Buf>,
    ) -> Result<()>;
}

/// The gradients a chain's backward is asked for: each `None` when not
/// computed.
pub struct ChainGrads<'a, B> {
    pub x: Option<(&'a mut B, Write)>,
    pub w_dw: Option<(&'a mut B, Write)>,
    pub w_pw: Option<(&'a mut B, Write)>,
    pub gamma: Option<&'a mut B>,
    pub beta: Option<&'a mut B>,
}

impl<B> ChainGrads<'_, B> {
    /// Whether a gradient of the convs' side (x or a filter) is asked for,
    /// which needs the 1×1 output's gradient.
    pub fn through_convs(&self) -> bool {
        self.x.is_some() || self.w_dw.is_some() || self.w_pw.is_some()
    }
}

/// [`ConvOps::conv2d_bwd`] as one call per asked-for gradient.
pub(crate) fn bwd_each<B: ConvOps + ?Sized>(
    be: &B,
    g: &ConvGeom,
    x: &B::Buf,
    w: &B::Buf,
    dy: &B::Buf,
    dx: Option<(&mut B::Buf, Write)>,
    dw: Option<(&mut B::Buf, Write)>,
) -> Result<()> {
    if let Some((dx, write)) = dx {
        be.conv2d_bwd_data(g, x, w, dy, dx, write)?;
    }
    match dw {
        Some((dw, write)) => be.conv2d_bwd_filter(g, x, dy, dw, write),
        None => Ok(()),
    }
}

/// `relu?(v)`: the input activation fused into every conv; a NaN input
/// becomes 0, as it always has in these kernels.
#[inline]
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(v > 0)` is what sends NaN to 0
pub(crate) fn act<T: Real>(v: T, relu: bool) -> T {
    if relu && !(v > T::ZERO) { T::ZERO } else { v }
}

/// `d (=|+=) v · [x > 0 if relu]` element by element, without a branch per
/// element so that it vectorises: the gradient through the input ReLU.
#[inline(always)]
fn write_through_relu_impl<T: Real>(d: &mut [T], v: &[T], x: &[T], relu: bool, write: Write) {
    let masked = |v: T, xv: T| if !relu || xv > T::ZERO { v } else { T::ZERO };
    let it = d.iter_mut().zip(v.iter().zip(x));
    match write {
        Write::Set => it.for_each(|(d, (&v, &xv))| *d = masked(v, xv)),
        Write::Add => it.for_each(|(d, (&v, &xv))| *d += masked(v, xv)),
    }
}

crate::ops::simd::multiversion! {
    pub(crate) fn write_through_relu<T: Real>(d: &mut [T], v: &[T], x: &[T], relu: bool, write: Write) => _FMA:
        write_through_relu_impl(d, v, x, relu, write)
}

/// Which implementation runs a geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    Depthwise,
    Gemm,
}

/// The CPU implementation that runs `g`, forward and backward: depthwise
/// convs (more than one channel) on their own loops, everything else as
/// matrix products per group; the reference loops run nothing by
/// themselves (they are what the other two are tested against).
pub fn path(g: &ConvGeom) -> Path {
    if g.groups > 1 && g.groups == g.cin && g.cout == g.cin { Path::Depthwise } else { Path::Gemm }
}
