//! The fully connected layer on the host: plain loops (the classifier is a
//! small product).

use super::LinearOps;
use crate::device::Cpu;
use crate::device::counts;
use crate::error::Result;
use crate::real::Real;

impl<T: Real> LinearOps for Cpu<T> {
    fn linear_fwd(
        &self,
        n: usize,
        i: usize,
        o: usize,
        groups: usize,
        x: &Vec<T>,
        w: &Vec<T>,
        b: Option<&Vec<T>>,
        y: &mut Vec<T>,
    ) -> Result<()> {
        counts::call(1);
        let (ig, og) = (i / groups, o / groups);
        for r in 0..n {
            for c in 0..o {
                let xr = &x[r * i + c / og * ig..][..ig];
                let wr = &w[c * ig..(c + 1) * ig];
                let acc = xr.iter().zip(wr).fold(T::ZERO, |s, (&a, &bv)| s + a * bv);
                y[r * o + c] = acc + b.map_or(T::ZERO, |b| b[c]);
            }
        }
        Ok(())
    }

    fn linear_bwd(
        &self,
        n: usize,
        i: usize,
        o: usize,
        groups: usize,
        x: &Vec<T>,
        w: &Vec<T>,
        dy: &Vec<T>,
        mut dx: Option<&mut Vec<T>>,
        mut dw: Option<&mut Vec<T>>,
        mut db: Option<&mut Vec<T>>,
    ) -> Result<()> {
        counts::call(super::cuda::linear_bwd_launches(dx.is_some(), dw.is_some(), db.is_some()));
        let (ig, og) = (i / groups, o / groups);
        for r in 0..n {
            for c in 0..o {
                let g = dy[r * o + c];
                let xj = r * i + c / og * ig;
                if let Some(dx) = dx.as_deref_mut() {
                    for (d, &wv) in dx[xj..][..ig].iter_mut().zip(&w[c * ig..(c + 1) * ig]) {
                        *d += g * wv;
                    }
                }
                if let Some(dw) = dw.as_deref_mut() {
                    for (d, &xv) in dw[c * ig..(c + 1) * ig].iter_mut().zip(&x[xj..][..ig]) {
                        *d += g * xv;
                    }
                }
                if let Some(db) = db.as_deref_mut() {
                    db[c] += g;
                }
            }
        }
        Ok(())
    }
}
