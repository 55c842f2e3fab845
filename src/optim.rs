//! Optimizers with PyTorch semantics over parameter nodes of an [`Exec`]:
//! SGD with momentum and weight decay, Adam with coupled L2 weight decay,
//! and global gradient-norm clipping (`torch.nn.utils.clip_grad_norm_`).
//! The arithmetic is the backend's fused `sgd_step` / `adam_step` kernels.

use crate::backend::{AdamStep, Backend, SgdStep};
use crate::error::Result;
use crate::exec::Exec;
use crate::real::Real;
use crate::tape::NodeId;

/// `‖∇‖₂` over the gradients of all `params` together.
pub fn grad_norm<B: Backend>(ex: &Exec<B>, params: &[NodeId]) -> Result<f64> {
    let mut s = 0.0;
    for &p in params {
        s += ex.be.sum_sq(grad_of(ex, p)?)?;
    }
    Ok(s.sqrt())
}

/// The factor `clip_grad_norm_(max_norm)` multiplies every gradient by.
pub fn clip_coef(norm: f64, max_norm: Option<f32>) -> f32 {
    match max_norm {
        Some(m) => (m as f64 / (norm + 1e-6)).min(1.0) as f32,
        None => 1.0,
    }
}

fn grad_of<B: Backend>(ex: &Exec<B>, p: NodeId) -> Result<&B::Buf> {
    match ex.grad(p) {
        Some(grad) => Ok(grad),
        None => crate::bail!("optimizer: no gradient for parameter '{}'", ex.tape.nodes[p].name),
    }
}

/// Downloads optimizer state buffers (for checkpoints).
fn save<B: Backend>(be: &B, bufs: &[B::Buf]) -> Result<Vec<Vec<f32>>> {
    bufs.iter().map(|b| Ok(be.download(b)?.iter().map(|v| v.to_f64() as f32).collect())).collect()
}

fn load<B: Backend>(be: &B, bufs: &mut [B::Buf], data: &[Vec<f32>]) -> Result<()> {
    if data.len() != bufs.len() {
        crate::bail!("optimizer state has {} tensors, expected {}", data.len(), bufs.len());
    }
    for (b, d) in bufs.iter_mut().zip(data) {
        if be.len(b) != d.len() {
            crate::bail!("optimizer state tensor has {} elements, expected {}", d.len(), be.len(b));
        }
        let conv: Vec<B::Elem> = d.iter().map(|&v| B::Elem::from_f32(v)).collect();
        be.upload(b, &conv)?;
    }
    Ok(())
}

/// SGD with momentum; clipping (if set) applies to the gradients of this
/// optimizer's parameters, before weight decay is added.
pub struct Sgd<B: Backend> {
    pub params: Vec<NodeId>,
    pub cfg: SgdStep,
    pub clip: Option<f32>,
    bufs: Vec<B::Buf>,
}

impl<B: Backend> Sgd<B> {
    pub fn new(ex: &Exec<B>, params: Vec<NodeId>, cfg: SgdStep, clip: Option<f32>) -> Result<Self> {
        let bufs = params.iter().map(|&p| ex.be.alloc(ex.shape(p).numel())).collect::<Result<_>>()?;
        Ok(Sgd { params, cfg, clip, bufs })
    }

    /// One step on the current gradients; returns the gradient norm before clipping.
    pub fn step(&mut self, ex: &mut Exec<B>) -> Result<f64> {
        let norm = grad_norm(ex, &self.params)?;
        if !norm.is_finite() {
            crate::bail!(
                "the gradient norm became {norm} (non-finite): the search diverged; lower the learning rates or check the data"
            );
        }
        let s = clip_coef(norm, self.clip);
        for (&p, buf) in self.params.iter().zip(&mut self.bufs) {
            let (be, val, grad) = ex.parts_mut(p);
            be.sgd_step(&self.cfg, s, val, grad.expect("grad_norm checked every gradient"), buf)?;
        }
        Ok(norm)
    }

    /// The momentum buffer of parameter `i` (DARTS second order unrolls with it).
    pub fn momentum(&self, i: usize) -> &B::Buf {
        &self.bufs[i]
    }

    pub fn state(&self, be: &B) -> Result<Vec<Vec<f32>>> {
        save(be, &self.bufs)
    }

    pub fn load_state(&mut self, be: &B, data: &[Vec<f32>]) -> Result<()> {
        load(be, &mut self.bufs, data)
    }
}

/// Adam (PyTorch semantics) with L2 weight decay added to the gradient.
pub struct Adam<B: Backend> {
    pub params: Vec<NodeId>,
    pub lr: f32,
    pub betas: (f32, f32),
    pub eps: f32,
    pub weight_decay: f32,
    pub t: u32,
    m: Vec<B::Buf>,
    v: Vec<B::Buf>,
}

impl<B: Backend> Adam<B> {
    pub fn new(ex: &Exec<B>, params: Vec<NodeId>, lr: f32, betas: (f32, f32), weight_decay: f32) -> Result<Self> {
        let alloc = || params.iter().map(|&p| ex.be.alloc(ex.shape(p).numel())).collect::<Result<Vec<_>>>();
        Ok(Adam { m: alloc()?, v: alloc()?, params, lr, betas, eps: 1e-8, weight_decay, t: 0 })
    }

    pub fn step(&mut self, ex: &mut Exec<B>) -> Result<()> {
        self.t += 1;
        let st = AdamStep {
            lr: self.lr,
            beta1: self.betas.0,
            beta2: self.betas.1,
            eps: self.eps,
            weight_decay: self.weight_decay,
            t: self.t,
        };
        for ((&p, m), v) in self.params.iter().zip(&mut self.m).zip(&mut self.v) {
            grad_of(ex, p)?;
            let (be, val, grad) = ex.parts_mut(p);
            be.adam_step(&st, 1.0, val, grad.expect("checked above"), m, v)?;
        }
        Ok(())
    }

    pub fn state(&self, be: &B) -> Result<Vec<Vec<f32>>> {
        let mut s = save(be, &self.m)?;
        s.extend(save(be, &self.v)?);
        Ok(s)
    }

    pub fn load_state(&mut self, be: &B, data: &[Vec<f32>]) -> Result<()> {
        let k = self.m.len();
        if data.len() != 2 * k {
            crate::bail!("Adam state has {} tensors, expected {}", data.len(), 2 * k);
        }
        load(be, &mut self.m, &data[..k])?;
        load(be, &mut self.v, &data[k..])
    }
}
