//! The optimizer updates on the host, tensor by tensor.

use super::{AdamKernel, Coef, NormThen, OptimOps, Part, SgdKernel};
use crate::device::{Cpu, Write, counts};
use crate::error::Result;
use crate::real::Real;

/// Fails unless every list holds `n` tensors and tensor `i` of each has the
/// length of `lens[i]`.
fn check_lists(what: &str, lens: &[usize], lists: &[(&str, Vec<usize>)]) -> Result<()> {
    for (name, l) in lists {
        if l.len() != lens.len() {
            crate::bail!("{what}: {name} lists {} tensors, expected {}", l.len(), lens.len());
        }
        if let Some(i) = (0..l.len()).find(|&i| l[i] != lens[i]) {
            crate::bail!("{what}: {name} tensor {i} holds {} elements, expected {}", l[i], lens[i]);
        }
    }
    Ok(())
}

fn lens<T>(v: &[impl AsRef<[T]>]) -> Vec<usize> {
    v.iter().map(|b| b.as_ref().len()).collect()
}

/// The lengths of `part` of each tensor.
fn part_lens<T>(v: &[impl AsRef<[T]>], part: Part) -> Vec<usize> {
    v.iter().map(|b| part.range(b.as_ref().len()).len()).collect()
}

/// `k·sc[at]`, in the element type.
fn coef<T: Real>(c: Coef, sc: &[T]) -> T {
    let k = T::from_f32(c.k);
    match c.at {
        Some(at) => k * sc[at],
        None => k,
    }
}

impl<T: Real> OptimOps for Cpu<T> {
    fn sgd_step(
        &self,
        k: &SgdKernel,
        sc: &Vec<T>,
        p: &mut [&mut Vec<T>],
        grad: &[&Vec<T>],
        buf: &mut [&mut Vec<T>],
        part: Part,
    ) -> Result<()> {
        counts::call(1);
        let n = part_lens::<T>(p, part);
        check_lists("sgd_step", &n, &[("grad", part_lens::<T>(grad, part)), ("momentum", lens::<T>(buf))])?;
        let (lr, s) = (sc[k.lr], sc[k.scale]);
        let (mu, wd) = (T::from_f32(k.momentum), T::from_f32(k.weight_decay));
        for ((p, grad), buf) in p.iter_mut().zip(grad).zip(buf.iter_mut()) {
            let r = part.range(p.len());
            for ((pv, &gv), bv) in p[r.clone()].iter_mut().zip(grad[r].iter()).zip(buf.iter_mut()) {
                let d = s * gv + wd * *pv;
                *bv = mu * *bv + d;
                *pv -= lr * if k.nesterov { d + mu * *bv } else { *bv };
            }
        }
        Ok(())
    }

    fn adam_step(
        &self,
        k: &AdamKernel,
        sc: &Vec<T>,
        p: &mut [&mut Vec<T>],
        grad: &[&Vec<T>],
        m: &mut [&mut Vec<T>],
        v: &mut [&mut Vec<T>],
    ) -> Result<()> {
        counts::call(1);
        let n = lens::<T>(p);
        check_lists("adam_step", &n, &[("grad", lens::<T>(grad)), ("m", lens::<T>(m)), ("v", lens::<T>(v))])?;
        let (b1, b2) = (k.beta1 as f64, k.beta2 as f64);
        let t = sc[k.t].to_f64() as i32;
        let c1 = T::from_f64(1.0 - b1.powi(t));
        let c2 = T::from_f64(1.0 - b2.powi(t)).sqrt();
        let (lr, eps, wd) = (sc[k.lr], T::from_f32(k.eps), T::from_f32(k.weight_decay));
        let (b1, b2) = (T::from_f64(b1), T::from_f64(b2));
        for (((p, grad), m), v) in p.iter_mut().zip(grad).zip(m.iter_mut()).zip(v.iter_mut()) {
            for i in 0..p.len() {
                let d = grad[i] + wd * p[i];
                m[i] = b1 * m[i] + (T::ONE - b1) * d;
                v[i] = b2 * v[i] + (T::ONE - b2) * d * d;
                // PyTorch: p -= lr/c1 · m / (√v/√c2' + ε) with c2' = 1 − β2ᵗ.
                p[i] -= lr / c1 * m[i] / (v[i].sqrt() / c2 + eps);
            }
        }
        Ok(())
    }

    fn couple(
        &self,
        beta: f32,
        p: &[&Vec<T>],
        other: &[&Vec<T>],
        grad: &mut [&mut Vec<T>],
        part: Part,
        other_part: Part,
    ) -> Result<()> {
        counts::call(1);
        let n = part_lens::<T>(p, part);
        check_lists(
            "couple",
            &n,
            &[("other", part_lens::<T>(other, other_part)), ("grad", part_lens::<T>(grad, part))],
        )?;
        let beta = T::from_f32(beta);
        for ((grad, p), other) in grad.iter_mut().zip(p).zip(other) {
            let (r, ro) = (part.range(p.len()), other_part.range(other.len()));
            for ((gv, &pv), &ov) in grad[r.clone()].iter_mut().zip(p[r].iter()).zip(other[ro].iter()) {
                *gv += beta * (pv - ov);
            }
        }
        Ok(())
    }

    fn norm(&self, x: &[&Vec<T>], part: Part, sc: &mut Vec<T>, at: usize, then: NormThen) -> Result<()> {
        counts::call(super::cuda::NORM_LAUNCHES);
        let sum: f64 = x
            .iter()
            .map(|x| {
                let x = &x[part.range(x.len())];
                crate::ops::elementwise::dot_f64(x, x)
            })
            .sum();
        let norm = sum.sqrt();
        sc[at] = T::from_f64(norm);
        match then {
            NormThen::Nothing => {}
            NormThen::Clip { max, scale } => {
                sc[scale] = T::from_f64(max.map_or(1.0, |m| (m as f64 / (norm + 1e-6)).min(1.0)));
            }
            NormThen::Perturb { xi, eps, c } => {
                let e = 0.01 / norm.max(1e-12);
                sc[eps] = T::from_f64(e);
                sc[c] = T::from_f64(sc[xi].to_f64() / (2.0 * e));
            }
        }
        Ok(())
    }

    fn copy_list(&self, src: &[&Vec<T>], dst: &mut [&mut Vec<T>]) -> Result<()> {
        counts::call(1);
        check_lists("copy_list", &lens::<T>(dst), &[("src", lens::<T>(src))])?;
        for (d, s) in dst.iter_mut().zip(src) {
            d.copy_from_slice(s);
        }
        Ok(())
    }

    fn lincomb(&self, sc: &Vec<T>, terms: &[(Coef, &[&Vec<T>])], out: &mut [&mut Vec<T>], write: Write) -> Result<()> {
        counts::call(1);
        if terms.is_empty() || terms.len() > 3 {
            crate::bail!("lincomb: {} terms, expected 1 to 3", terms.len());
        }
        let n = lens::<T>(out);
        let lists: Vec<(&str, Vec<usize>)> = terms.iter().map(|(_, x)| ("term", lens::<T>(x))).collect();
        check_lists("lincomb", &n, &lists)?;
        // Term by term, in order: the sums a per-element loop over the terms
        // would form, in passes that vectorise.
        for (j, &(c, x)) in terms.iter().enumerate() {
            let c = coef(c, sc);
            for (out, x) in out.iter_mut().zip(x) {
                if j == 0 && write == Write::Set {
                    out.iter_mut().zip(x.iter()).for_each(|(o, &v)| *o = c * v);
                } else {
                    out.iter_mut().zip(x.iter()).for_each(|(o, &v)| *o += c * v);
                }
            }
        }
        Ok(())
    }
}
