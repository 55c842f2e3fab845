//! Optimizer updates, one fused pass over each parameter tensor.

mod cpu;
mod cuda;

use crate::backend::Device;
use crate::error::Result;

/// Adam's constants for one step (PyTorch semantics, L2 weight decay coupled
/// into the gradient).
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
/// `d = s·grad + wd·p; buf = μ·buf + d; p -= lr·buf`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
}

/// The optimizer kernels (`kernels/optim.cu` on CUDA).
pub trait OptimOps: Device {
    /// SGD with momentum on gradient `grad_scale·grad` (the clipping factor):
    /// `d = grad_scale·grad + wd·p; buf = μ·buf + d; p -= lr·buf`.
    fn sgd_step(
        &self,
        s: &SgdStep,
        grad_scale: f32,
        p: &mut Self::Buf,
        grad: &Self::Buf,
        buf: &mut Self::Buf,
    ) -> Result<()>;
    /// Adam with coupled L2: `d = grad_scale·grad + wd·p; m = β1·m + (1−β1)·d;
    /// v = β2·v + (1−β2)·d²; p -= lr·(m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε)`.
    fn adam_step(
        &self,
        s: &AdamStep,
        grad_scale: f32,
        p: &mut Self::Buf,
        grad: &Self::Buf,
        m: &mut Self::Buf,
        v: &mut Self::Buf,
    ) -> Result<()>;
    /// The RARTS coupling term: `grad += β·(p − other)`.
    fn couple(&self, beta: f32, p: &Self::Buf, other: &Self::Buf, grad: &mut Self::Buf) -> Result<()>;
}
