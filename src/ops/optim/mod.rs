//! Optimizer updates over lists of tensors: each method is one pass (one
//! CUDA launch, two for the norm) over every tensor of a network, whatever
//! their number, so that a step's update costs a handful of launches.
//!
//! Values that change from step to step (learning rates, Adam's step count,
//! the clip factor, DARTS' `ξ`, `ε`) are read from a small device buffer of
//! *step scalars* (`sc`) at the slots the caller names, never passed as
//! kernel arguments: the host writes its inputs between steps, earlier
//! kernels of the step write the rest (the norm writes the clip factor), and
//! a captured step stays right from one replay to the next. Constants of a
//! run (momentum, betas, weight decay, β of the coupling) are arguments.

mod cpu;
mod cuda;

/// The CUDA kernels this family launches: its module and their names.
pub const CUDA_KERNELS: (&str, &[&str]) = cuda::Kernels::NAMES;

use crate::device::kernel_params::kernel_params;
use crate::device::{Device, Write};
use crate::error::Result;

/// Adam's hyperparameters (PyTorch semantics, L2 weight decay coupled into
/// the gradient); the host's copy, from which the step scalars are written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// 1-based step count, for bias correction.
    pub t: u32,
}

/// SGD with momentum (PyTorch semantics, dampening 0, no Nesterov):
/// `d = s·grad + wd·p; buf = μ·buf + d; p -= lr·buf`; the host's copy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
}

/// The SGD kernel's constants and the slots of its per-step values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdKernel {
    pub momentum: f32,
    pub weight_decay: f32,
    /// Nesterov momentum (PyTorch's `nesterov=True`): the step is
    /// `lr·(d + μ·buf)` instead of `lr·buf`.
    pub nesterov: bool,
    /// Slot of the learning rate.
    pub lr: usize,
    /// Slot of the gradient's factor `s` (the clip factor).
    pub scale: usize,
}

/// The Adam kernel's constants and the slots of its per-step values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamKernel {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// Slot of the learning rate.
    pub lr: usize,
    /// Slot of the 1-based step count `t` (a float; exact below 2²⁴).
    pub t: usize,
}

/// What [`OptimOps::norm`] derives from the norm it writes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NormThen {
    /// Nothing more.
    Nothing,
    /// `sc[scale] = min(1, max / (‖x‖ + 1e-6))` — the factor
    /// `torch.nn.utils.clip_grad_norm_(max)` multiplies by; 1 without `max`.
    Clip { max: Option<f32>, scale: usize },
    /// DARTS second order's finite-difference step: `sc[eps] = 0.01 /
    /// max(‖x‖, 1e-12)` and `sc[c] = sc[xi] / (2·sc[eps])`.
    Perturb { xi: usize, eps: usize, c: usize },
}

/// A coefficient `k`, times `sc[at]` when `at` is given.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coef {
    pub k: f32,
    pub at: Option<usize>,
}

impl Coef {
    pub fn k(k: f32) -> Coef {
        Coef { k, at: None }
    }
    pub fn times(k: f32, at: usize) -> Coef {
        Coef { k, at: Some(at) }
    }
}

/// The elements of a tensor a list kernel works on: network `k` of the
/// `nets` equal copies a parameter holds one after the other (RARTS's `w`
/// and `y` recorded side by side, see `Tape::set_nets`), or all of it
/// ([`Part::WHOLE`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    pub k: usize,
    pub nets: usize,
}

impl Part {
    /// The whole tensor.
    pub const WHOLE: Part = Part { k: 0, nets: 1 };

    /// Network `k`'s copy.
    pub fn net(k: usize, nets: usize) -> Part {
        assert!(k < nets, "network {k} of {nets}");
        Part { k, nets }
    }

    /// The part's elements of a tensor of `len`.
    pub fn range(self, len: usize) -> std::ops::Range<usize> {
        let per = len / self.nets.max(1);
        self.k * per..(self.k + 1) * per
    }
}

kernel_params! {
    /// sgd_list_f32: the `tensors` tensors of a list table, stepped at the rate
    /// `sc[lr_at]` with their gradients scaled by `sc[scale_at]`; momentum mu, weight
    /// decay wd, Nesterov's momentum when `nesterov` is 1.
    pub struct SgdParams {
        pub tensors: i32,
        pub lr_at: i32,
        pub scale_at: i32,
        pub mu: f32,
        pub wd: f32,
        pub nesterov: i32,
    }
}

kernel_params! {
    /// adam_list_f32: the `tensors` tensors of a list table, at the rate `sc[lr_at]`,
    /// step count `sc[t_at]`; betas b1, b2, eps and weight decay wd.
    pub struct AdamParams {
        pub tensors: i32,
        pub lr_at: i32,
        pub t_at: i32,
        pub b1: f32,
        pub b2: f32,
        pub eps: f32,
        pub wd: f32,
    }
}

kernel_params! {
    /// couple_list_f32: RARTS's coupling β over the `tensors` tensors of a list table.
    pub struct CoupleParams {
        pub tensors: i32,
        pub beta: f32,
    }
}

kernel_params! {
    /// sumsq_list_partial_f64: the `tensors` tensors of a list table.
    pub struct ListParams {
        pub tensors: i32,
    }
}

kernel_params! {
    /// norm_finish_f32: the sum of `parts` partial sums into `sc[at]`, then what
    /// `mode` asks of slots a, b, c (a clip factor up to maxv).
    pub struct NormFinishParams {
        pub parts: i32,
        pub at: i32,
        pub mode: i32,
        pub a: i32,
        pub b: i32,
        pub c: i32,
        pub maxv: f32,
    }
}

kernel_params! {
    /// lincomb_list_f32: Σ of up to three terms `k_i·sc[a_i]·(list slot i)` over the
    /// `tensors` tensors of a list table; `add` 0 overwrites, 1 adds.
    pub struct LincombParams {
        pub tensors: i32,
        pub nterms: i32,
        pub k0: f32,
        pub a0: i32,
        pub k1: f32,
        pub a1: i32,
        pub k2: f32,
        pub a2: i32,
        pub add: i32,
    }
}

/// The optimizer kernels (`kernels/optim.cu` on CUDA). Every list holds
/// one tensor per parameter, pairwise of equal length (of equal part
/// length where a [`Part`] is given); lists may be empty.
pub trait OptimOps: Device {
    /// SGD with momentum on `part` of every tensor of `p` and `grad`: `d =
    /// s·grad + wd·p; buf = μ·buf + d; p -= lr·buf` (Nesterov: `p -=
    /// lr·(d + μ·buf)`), `lr` and `s` read from `sc`; the momentum buffers
    /// `buf` hold the part alone.
    fn sgd_step(
        &self,
        k: &SgdKernel,
        sc: &Self::Buf,
        p: &mut [&mut Self::Buf],
        grad: &[&Self::Buf],
        buf: &mut [&mut Self::Buf],
        part: Part,
    ) -> Result<()>;
    /// Adam with coupled L2 on every tensor: `d = grad + wd·p; m = β1·m +
    /// (1−β1)·d; v = β2·v + (1−β2)·d²; p -= lr·(m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε)`,
    /// `lr` and `t` read from `sc`.
    fn adam_step(
        &self,
        k: &AdamKernel,
        sc: &Self::Buf,
        p: &mut [&mut Self::Buf],
        grad: &[&Self::Buf],
        m: &mut [&mut Self::Buf],
        v: &mut [&mut Self::Buf],
    ) -> Result<()>;
    /// The RARTS coupling term on every tensor: `grad[part] += β·(p[part] −
    /// other[other_part])` (the parts of paired parameters: `w`'s gradient
    /// pulled towards `y` holds both in the same tensors).
    fn couple(
        &self,
        beta: f32,
        p: &[&Self::Buf],
        other: &[&Self::Buf],
        grad: &mut [&mut Self::Buf],
        part: Part,
        other_part: Part,
    ) -> Result<()>;
    /// `sc[at] = ‖x[part]‖₂` over all tensors together (summed in f64), then
    /// what `then` derives from it.
    fn norm(&self, x: &[&Self::Buf], part: Part, sc: &mut Self::Buf, at: usize, then: NormThen) -> Result<()>;
    /// `dst = src` on every tensor (BN statistics kept aside, DARTS' weight
    /// backups).
    fn copy_list(&self, src: &[&Self::Buf], dst: &mut [&mut Self::Buf]) -> Result<()>;
    /// `out (=|+=) Σ_j c_j·x_j` on every tensor, as `write` says, with one to
    /// three terms `(c_j, x_j)` (the coefficients' factors read from `sc`).
    fn lincomb(
        &self,
        sc: &Self::Buf,
        terms: &[(Coef, &[&Self::Buf])],
        out: &mut [&mut Self::Buf],
        write: Write,
    ) -> Result<()>;
}
