//! The optimizer updates on the host.

use super::{AdamStep, OptimOps, SgdStep};
use crate::backend::Cpu;
use crate::backend::counts;
use crate::error::Result;
use crate::real::Real;

impl<T: Real> OptimOps for Cpu<T> {
    fn sgd_step(&self, st: &SgdStep, grad_scale: f32, p: &mut Vec<T>, grad: &Vec<T>, buf: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        let (lr, mu, wd, s) =
            (T::from_f32(st.lr), T::from_f32(st.momentum), T::from_f32(st.weight_decay), T::from_f32(grad_scale));
        for ((pv, &gv), bv) in p.iter_mut().zip(grad).zip(buf.iter_mut()) {
            let d = s * gv + wd * *pv;
            *bv = mu * *bv + d;
            *pv -= lr * *bv;
        }
        Ok(())
    }

    fn adam_step(
        &self,
        st: &AdamStep,
        grad_scale: f32,
        p: &mut Vec<T>,
        grad: &Vec<T>,
        m: &mut Vec<T>,
        v: &mut Vec<T>,
    ) -> Result<()> {
        counts::call(1);
        let b1 = st.beta1 as f64;
        let b2 = st.beta2 as f64;
        let c1 = T::from_f64(1.0 - b1.powi(st.t as i32));
        let c2 = T::from_f64(1.0 - b2.powi(st.t as i32)).sqrt();
        let (lr, eps, wd, s) =
            (T::from_f32(st.lr), T::from_f32(st.eps), T::from_f32(st.weight_decay), T::from_f32(grad_scale));
        let (b1, b2) = (T::from_f64(b1), T::from_f64(b2));
        for i in 0..p.len() {
            let d = s * grad[i] + wd * p[i];
            m[i] = b1 * m[i] + (T::ONE - b1) * d;
            v[i] = b2 * v[i] + (T::ONE - b2) * d * d;
            // PyTorch: p -= lr/c1 · m / (√v/√c2' + ε) with c2' = 1 − β2ᵗ.
            p[i] -= lr / c1 * m[i] / (v[i].sqrt() / c2 + eps);
        }
        Ok(())
    }

    fn couple(&self, beta: f32, p: &Vec<T>, other: &Vec<T>, grad: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        let beta = T::from_f32(beta);
        for ((gv, &pv), &ov) in grad.iter_mut().zip(p).zip(other) {
            *gv += beta * (pv - ov);
        }
        Ok(())
    }
}
