//! Elementwise kernels and the reductions on the host; the long flat ones
//! are split over threads, the reductions accumulate in f64.

use super::{ElementwiseOps, MixGrad, ScaleGeom};
use crate::device::counts;
use crate::device::{Cpu, Write};
use crate::error::Result;
use crate::par;
use crate::real::Real;

/// Chunk length for splitting flat elementwise work over threads.
const CHUNK: usize = 1 << 14;

/// `y (=|+=) a·x` with `a` in the element type (`axpy` and `axpy_elem`).
fn add_scaled<T: Real>(a: T, x: &[T], y: &mut [T], write: Write) {
    assert_eq!(x.len(), y.len(), "axpy: length mismatch");
    par::for_chunks(y, CHUNK, x.len(), |i, c| {
        let xs = &x[i * CHUNK..i * CHUNK + c.len()];
        match write {
            Write::Set => c.iter_mut().zip(xs).for_each(|(yv, &xv)| *yv = a * xv),
            Write::Add => c.iter_mut().zip(xs).for_each(|(yv, &xv)| *yv += a * xv),
        }
    });
}

/// Lanes of the f64 partial sums: independent accumulators the compiler
/// vectorises, where one running sum would wait on every previous add.
const LANES: usize = 8;

/// `Σ a ⊙ b` in f64 lanes.
#[inline]
pub(crate) fn dot_f64<T: Real>(a: &[T], b: &[T]) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f64 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x.to_f64() * y.to_f64()).sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..LANES {
            lanes[l] += x[l].to_f64() * y[l].to_f64();
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// Elements per sample of a drop-path operand: `x.len() / mask.len()`,
/// checked to divide evenly.
fn per_sample(x: usize, mask: usize, what: &str) -> usize {
    assert!(mask > 0 && x.is_multiple_of(mask), "{what}: {x} elements are not {mask} equal samples");
    x / mask
}

impl<T: Real> ElementwiseOps for Cpu<T> {
    fn fill(&self, y: &mut Vec<T>, v: f32) -> Result<()> {
        counts::call(1);
        // Split over threads: a supernet's gradients are gigabytes a pass.
        let v = T::from_f32(v);
        let n = y.len();
        par::for_chunks(y, CHUNK, n, |_, c| c.fill(v));
        Ok(())
    }

    fn copy(&self, src: &Vec<T>, dst: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        dst.copy_from_slice(src);
        Ok(())
    }

    fn axpy(&self, a: f32, x: &Vec<T>, y: &mut Vec<T>, write: Write) -> Result<()> {
        counts::call(1);
        add_scaled(T::from_f32(a), x, y, write);
        Ok(())
    }

    fn copy_elem(&self, x: &Vec<T>, from: usize, y: &mut Vec<T>, to: usize) -> Result<()> {
        counts::call(1);
        if from >= x.len() || to >= y.len() {
            crate::bail!("copy_elem: element {from} of {} into element {to} of {}", x.len(), y.len());
        }
        y[to] = x[from];
        Ok(())
    }

    fn relu_fwd(&self, x: &Vec<T>, y: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        for (yv, &xv) in y.iter_mut().zip(x) {
            *yv = if xv > T::ZERO { xv } else { T::ZERO };
        }
        Ok(())
    }

    fn relu_bwd(&self, x: &Vec<T>, dy: &Vec<T>, dx: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        for ((d, &xv), &g) in dx.iter_mut().zip(x).zip(dy) {
            if xv > T::ZERO {
                *d += g;
            }
        }
        Ok(())
    }

    fn mul_fwd(&self, a: &Vec<T>, b: &Vec<T>, y: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        for ((yv, &av), &bv) in y.iter_mut().zip(a).zip(b) {
            *yv = av * bv;
        }
        Ok(())
    }

    fn mul_bwd(&self, b: &Vec<T>, dy: &Vec<T>, da: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        for ((d, &bv), &g) in da.iter_mut().zip(b).zip(dy) {
            *d += g * bv;
        }
        Ok(())
    }

    fn drop_path_fwd(&self, x: &Vec<T>, mask: &Vec<T>, y: &mut Vec<T>, write: Write) -> Result<()> {
        counts::call(1);
        assert_eq!(x.len(), y.len(), "drop_path_fwd: length mismatch");
        if x.is_empty() {
            return Ok(());
        }
        let per = per_sample(x.len(), mask.len(), "drop_path_fwd");
        par::for_chunks(y, per, x.len(), |n, yr| {
            let (m, xr) = (mask[n], &x[n * per..][..per]);
            match write {
                Write::Set => yr.iter_mut().zip(xr).for_each(|(yv, &xv)| *yv = xv * m),
                Write::Add => yr.iter_mut().zip(xr).for_each(|(yv, &xv)| *yv += xv * m),
            }
        });
        Ok(())
    }

    fn drop_path_bwd(&self, mask: &Vec<T>, dy: &Vec<T>, dx: &mut Vec<T>, write: Write) -> Result<()> {
        counts::call(1);
        assert_eq!(dy.len(), dx.len(), "drop_path_bwd: length mismatch");
        if dy.is_empty() {
            return Ok(());
        }
        let per = per_sample(dy.len(), mask.len(), "drop_path_bwd");
        par::for_chunks(dx, per, dy.len(), |n, dr| {
            let (m, gr) = (mask[n], &dy[n * per..][..per]);
            match write {
                Write::Set => dr.iter_mut().zip(gr).for_each(|(d, &g)| *d = g * m),
                Write::Add => dr.iter_mut().zip(gr).for_each(|(d, &g)| *d += g * m),
            }
        });
        Ok(())
    }

    fn channel_scale_fwd(&self, g: &ScaleGeom, x: &Vec<T>, m: &Vec<T>, y: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        let (c, hw, cm) = (g.c, g.hw, g.cm);
        assert!(cm > 0 && c % cm == 0 && x.len() == g.n * c * hw && m.len() == cm, "channel_scale_fwd: {g:?}");
        if x.is_empty() {
            return Ok(());
        }
        par::for_chunks(y, c * hw, x.len(), |n, yn| {
            for (ch, yc) in yn.chunks_exact_mut(hw).enumerate() {
                let (f, xc) = (m[ch % cm], &x[(n * c + ch) * hw..][..hw]);
                yc.iter_mut().zip(xc).for_each(|(yv, &xv)| *yv = xv * f);
            }
        });
        Ok(())
    }

    fn channel_scale_bwd(
        &self,
        g: &ScaleGeom,
        x: &Vec<T>,
        m: &Vec<T>,
        dy: &Vec<T>,
        dx: Option<(&mut Vec<T>, Write)>,
        dm: Option<&mut Vec<T>>,
    ) -> Result<()> {
        counts::call(u64::from(dx.is_some()) + u64::from(dm.is_some()));
        let (c, hw, cm) = (g.c, g.hw, g.cm);
        assert!(cm > 0 && c % cm == 0 && x.len() == g.n * c * hw && m.len() == cm, "channel_scale_bwd: {g:?}");
        if let Some((dx, write)) = dx {
            par::for_chunks(dx, c * hw, x.len(), |n, dn| {
                for (ch, dc) in dn.chunks_exact_mut(hw).enumerate() {
                    let (f, gc) = (m[ch % cm], &dy[(n * c + ch) * hw..][..hw]);
                    match write {
                        Write::Set => dc.iter_mut().zip(gc).for_each(|(d, &gv)| *d = gv * f),
                        Write::Add => dc.iter_mut().zip(gc).for_each(|(d, &gv)| *d += gv * f),
                    }
                }
            });
        }
        if let Some(dm) = dm {
            for (k, d) in dm.iter_mut().enumerate() {
                let mut acc = 0.0f64;
                for n in 0..g.n {
                    for ch in (k..c).step_by(cm) {
                        let at = (n * c + ch) * hw;
                        acc += dot_f64(&dy[at..at + hw], &x[at..at + hw]);
                    }
                }
                *d += T::from_f64(acc);
            }
        }
        Ok(())
    }

    fn axpy_elem(&self, w: &Vec<T>, idx: usize, x: &Vec<T>, y: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        add_scaled(w[idx], x, y, Write::Add);
        Ok(())
    }

    fn mix_fwd(&self, w: &Vec<T>, terms: &[(usize, &Vec<T>)], y: &mut Vec<T>) -> Result<()> {
        counts::call(super::cuda::mix_fwd_launches(terms.len()));
        // One pass over `y` (`y` = 0 when there are no terms): each chunk of
        // `y` takes every term in turn while it is in cache.
        let terms: Vec<(T, &[T])> = terms.iter().map(|&(idx, x)| (w[idx], x.as_slice())).collect();
        for (_, x) in &terms {
            assert_eq!(x.len(), y.len(), "mix_fwd: length mismatch");
        }
        let n = y.len();
        par::for_chunks(y, CHUNK, n * terms.len().max(1), |i, c| {
            let lo = i * CHUNK;
            match terms.split_first() {
                None => c.fill(T::ZERO),
                Some(((w0, x0), rest)) => {
                    for (yv, &xv) in c.iter_mut().zip(&x0[lo..]) {
                        *yv = *w0 * xv;
                    }
                    for &(w, x) in rest {
                        for (yv, &xv) in c.iter_mut().zip(&x[lo..]) {
                            *yv += w * xv;
                        }
                    }
                }
            }
        });
        Ok(())
    }

    fn masked_sum_fwd(&self, terms: &[(&Vec<T>, Option<&Vec<T>>)], y: &mut Vec<T>) -> Result<()> {
        // One pass over `y`, sample by sample, every term added while that
        // sample of `y` is in cache: the same arithmetic as the default's
        // passes (a term without a mask is `1·x`). Without any mask, `y` is
        // one sample.
        let samples = terms.iter().find_map(|t| t.1.map(Vec::len)).unwrap_or(1);
        counts::call(terms.len() as u64);
        for &(x, mask) in terms {
            assert_eq!(x.len(), y.len(), "masked_sum_fwd: length mismatch");
            assert!(mask.is_none_or(|m| m.len() == samples), "masked_sum_fwd: masks of different lengths");
        }
        if y.is_empty() {
            return Ok(());
        }
        let per = per_sample(y.len(), samples, "masked_sum_fwd");
        let n = y.len();
        par::for_chunks(y, per, n * terms.len(), |s, yr| {
            for (t, &(x, mask)) in terms.iter().enumerate() {
                let xr = &x[s * per..][..per];
                let m = mask.map_or(T::ONE, |m| m[s]);
                if t == 0 {
                    yr.iter_mut().zip(xr).for_each(|(yv, &xv)| *yv = xv * m);
                } else {
                    yr.iter_mut().zip(xr).for_each(|(yv, &xv)| *yv += xv * m);
                }
            }
        });
        Ok(())
    }

    fn dot_elem(&self, a: &Vec<T>, b: &Vec<T>, out: &mut Vec<T>, idx: usize) -> Result<()> {
        counts::call(super::cuda::DOT_ELEM_LAUNCHES);
        // Accumulated in f64 per chunk, the chunks summed in f64.
        assert_eq!(a.len(), b.len(), "dot_elem: length mismatch");
        let parts = par::map(a.len().div_ceil(CHUNK), a.len(), |i| {
            let lo = i * CHUNK;
            let hi = (lo + CHUNK).min(a.len());
            dot_f64(&a[lo..hi], &b[lo..hi])
        });
        out[idx] += T::from_f64(parts.iter().sum());
        Ok(())
    }

    fn mix_bwd(
        &self,
        w: &Vec<T>,
        dy: &Vec<T>,
        terms: &mut [MixGrad<'_, Vec<T>>],
        dw: Option<&mut Vec<T>>,
    ) -> Result<()> {
        counts::call(super::cuda::mix_bwd_launches(terms.len(), dw.is_some()));
        // Chunk by chunk, every term while the chunk of dy is in cache; each
        // term's dot in f64 per chunk and the chunks summed in order, the
        // arithmetic of `axpy_elem` and `dot_elem` exactly.
        let n = dy.len();
        let info: Vec<(usize, T, &[T])> = terms.iter().map(|t| (t.idx, w[t.idx], t.x.as_slice())).collect();
        for t in terms.iter() {
            assert_eq!(t.x.len(), n, "mix_bwd: length mismatch");
            assert!(t.dx.as_ref().is_none_or(|(dx, _)| dx.len() == n), "mix_bwd: length mismatch");
        }
        struct Job<'a, T> {
            dx: Vec<Option<(&'a mut [T], Write)>>,
            dots: Vec<f64>,
        }
        let mut jobs: Vec<Job<T>> =
            (0..n.div_ceil(CHUNK)).map(|_| Job { dx: Vec::new(), dots: vec![0.0; terms.len()] }).collect();
        for t in terms.iter_mut() {
            match t.dx.as_mut() {
                Some((dx, write)) => {
                    for (job, c) in jobs.iter_mut().zip(dx.chunks_mut(CHUNK)) {
                        job.dx.push(Some((c, *write)));
                    }
                }
                None => jobs.iter_mut().for_each(|job| job.dx.push(None)),
            }
        }
        let dots = dw.is_some();
        par::for_chunks(&mut jobs, 1, n * info.len().max(1), |i, job| {
            let job = &mut job[0];
            let lo = i * CHUNK;
            let d = &dy[lo..(lo + CHUNK).min(n)];
            for (t, &(_, a, x)) in info.iter().enumerate() {
                match job.dx[t].as_mut() {
                    Some((dx, Write::Set)) => dx.iter_mut().zip(d).for_each(|(v, &g)| *v = a * g),
                    Some((dx, Write::Add)) => dx.iter_mut().zip(d).for_each(|(v, &g)| *v += a * g),
                    None => {}
                }
                if dots {
                    job.dots[t] = dot_f64(d, &x[lo..lo + d.len()]);
                }
            }
        });
        if let Some(dw) = dw {
            for (t, &(idx, _, _)) in info.iter().enumerate() {
                let parts: Vec<f64> = jobs.iter().map(|j| j.dots[t]).collect();
                dw[idx] += T::from_f64(parts.iter().sum());
            }
        }
        Ok(())
    }

    fn sum_all_fwd(&self, x: &Vec<T>, y: &mut Vec<T>) -> Result<()> {
        counts::call(super::cuda::SUM_ALL_FWD_LAUNCHES);
        y[0] = T::from_f64(x.iter().map(|v| v.to_f64()).sum());
        Ok(())
    }

    fn sum_all_bwd(&self, dy: &Vec<T>, dx: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        let d = dy[0];
        dx.iter_mut().for_each(|v| *v += d);
        Ok(())
    }
}
