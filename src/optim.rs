//! Optimizers with PyTorch semantics over parameter nodes of an [`Exec`]:
//! SGD with momentum and weight decay, Adam with coupled L2 weight decay,
//! and global gradient-norm clipping (`torch.nn.utils.clip_grad_norm_`).
//! The arithmetic is the backend's tensor-list kernels (`norm`, `sgd_step`,
//! `adam_step`), reading per-step values from the [`Scalars`].

use crate::backend::{AdamKernel, Backend, NormThen, Part, SgdKernel};
use crate::error::Result;
use crate::exec::Exec;
use crate::real::Real;
use crate::tape::NodeId;

/// The step scalars: a small device buffer of the values that change from
/// step to step (learning rates, Adam's t, clip factors, losses), at slots
/// the owner assigns. The host writes its inputs here and they go to the
/// device in one upload before the step ([`Scalars::upload`]); kernels
/// write the rest; [`Scalars::read`] brings everything back in one read.
pub struct Scalars<B: Backend> {
    pub buf: B::Buf,
    host: Vec<B::Elem>,
    dirty: bool,
}

impl<B: Backend> Scalars<B> {
    pub fn new(be: &B, len: usize) -> Result<Self> {
        Ok(Scalars { buf: be.alloc(len)?, host: vec![B::Elem::ZERO; len], dirty: true })
    }

    /// Sets input `at` for the next upload.
    pub fn set(&mut self, at: usize, v: f64) {
        let v = B::Elem::from_f64(v);
        if self.host[at] != v {
            self.host[at] = v;
            self.dirty = true;
        }
    }

    /// Sends the inputs to the device if any changed since the last upload
    /// (overwriting the outputs of the last step, which the next rewrites).
    pub fn upload(&mut self, be: &B) -> Result<()> {
        if std::mem::take(&mut self.dirty) {
            be.upload(&mut self.buf, &self.host)?;
        }
        Ok(())
    }

    /// Every slot as the device holds it now: one host read.
    pub fn read(&self, be: &B) -> Result<Vec<f64>> {
        Ok(be.download(&self.buf)?.iter().map(|v| v.to_f64()).collect())
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

/// Where an [`Sgd`] finds its learning rate and leaves the gradient norm
/// and the clip factor, in the step scalars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SgdSlots {
    pub lr: usize,
    pub norm: usize,
    pub scale: usize,
}

/// SGD with momentum; clipping (if set) applies to the gradients of this
/// optimizer's parameters, before weight decay is added. The step runs on
/// the device in three launches (the norm, then the update) whatever the
/// number of parameters; it reads the rate from `sc[slots.lr]`, the one
/// place the owner keeps it (written before each step). It
/// updates `part` of its parameters (one network of several recorded side
/// by side) and keeps momentum for that part alone.
pub struct Sgd<B: Backend> {
    pub params: Vec<NodeId>,
    pub part: Part,
    pub momentum: f32,
    pub weight_decay: f32,
    /// Nesterov momentum (off unless set).
    pub nesterov: bool,
    pub clip: Option<f32>,
    pub slots: SgdSlots,
    bufs: Vec<B::Buf>,
}

impl<B: Backend> Sgd<B> {
    pub fn new(
        ex: &Exec<B>,
        params: Vec<NodeId>,
        part: Part,
        momentum: f32,
        weight_decay: f32,
        clip: Option<f32>,
        slots: SgdSlots,
    ) -> Result<Self> {
        let bufs = params.iter().map(|&p| ex.be.alloc(part.range(ex.shape(p).numel()).len())).collect::<Result<_>>()?;
        Ok(Sgd { params, part, momentum, weight_decay, nesterov: false, clip, slots, bufs })
    }

    /// One step on the current gradients: `sc[slots.norm]` gets their norm
    /// before clipping, `sc[slots.scale]` the clip factor.
    pub fn step(&mut self, ex: &mut Exec<B>, sc: &mut B::Buf) -> Result<()> {
        let (be, mut vals, grads) = ex.update_lists(&self.params)?;
        let clip = NormThen::Clip { max: self.clip, scale: self.slots.scale };
        be.norm(&grads, self.part, sc, self.slots.norm, clip)?;
        let k = SgdKernel {
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            nesterov: self.nesterov,
            lr: self.slots.lr,
            scale: self.slots.scale,
        };
        let mut bufs: Vec<&mut B::Buf> = self.bufs.iter_mut().collect();
        be.sgd_step(&k, sc, &mut vals, &grads, &mut bufs, self.part)
    }

    /// The momentum buffers, one per parameter's part (DARTS second order unrolls with them).
    pub fn momentum(&self) -> Vec<&B::Buf> {
        self.bufs.iter().collect()
    }

    pub fn state(&self, be: &B) -> Result<Vec<Vec<f32>>> {
        save(be, &self.bufs)
    }

    pub fn load_state(&mut self, be: &B, data: &[Vec<f32>]) -> Result<()> {
        load(be, &mut self.bufs, data)
    }
}

/// Adam (PyTorch semantics) with L2 weight decay added to the gradient; one
/// launch a step. The owner writes the rate and the step count `t` (after
/// incrementing it) to `slots` before each step: the step scalars are the
/// rate's one home.
pub struct Adam<B: Backend> {
    pub params: Vec<NodeId>,
    pub betas: (f32, f32),
    pub eps: f32,
    pub weight_decay: f32,
    pub t: u32,
    pub slots: AdamSlots,
    m: Vec<B::Buf>,
    v: Vec<B::Buf>,
}

/// Where an [`Adam`] finds its learning rate and step count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdamSlots {
    pub lr: usize,
    pub t: usize,
}

impl<B: Backend> Adam<B> {
    pub fn new(
        ex: &Exec<B>,
        params: Vec<NodeId>,
        betas: (f32, f32),
        weight_decay: f32,
        slots: AdamSlots,
    ) -> Result<Self> {
        let alloc = || params.iter().map(|&p| ex.be.alloc(ex.shape(p).numel())).collect::<Result<Vec<_>>>();
        Ok(Adam { m: alloc()?, v: alloc()?, params, betas, eps: 1e-8, weight_decay, t: 0, slots })
    }

    /// One step at the step count `sc[slots.t]` holds.
    pub fn step(&mut self, ex: &mut Exec<B>, sc: &B::Buf) -> Result<()> {
        let k = AdamKernel {
            beta1: self.betas.0,
            beta2: self.betas.1,
            eps: self.eps,
            weight_decay: self.weight_decay,
            lr: self.slots.lr,
            t: self.slots.t,
        };
        let (be, mut vals, grads) = ex.update_lists(&self.params)?;
        let mut m: Vec<&mut B::Buf> = self.m.iter_mut().collect();
        let mut v: Vec<&mut B::Buf> = self.v.iter_mut().collect();
        be.adam_step(&k, sc, &mut vals, &grads, &mut m, &mut v)
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
