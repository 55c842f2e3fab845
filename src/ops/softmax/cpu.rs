//! Softmax and cross-entropy on the host, row by row.

use super::SoftmaxOps;
use crate::device::Cpu;
use crate::device::counts;
use crate::error::Result;
use crate::real::Real;

impl<T: Real> SoftmaxOps for Cpu<T> {
    fn softmax_rows_fwd(&self, rows: usize, cols: usize, x: &Vec<T>, y: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        softmax_rows(rows, cols, x, y);
        Ok(())
    }

    fn softmax_rows_bwd(&self, rows: usize, cols: usize, y: &Vec<T>, dy: &Vec<T>, dx: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        for r in 0..rows {
            let span = r * cols..(r + 1) * cols;
            let (ys, dys) = (&y[span.clone()], &dy[span.clone()]);
            let dot = ys.iter().zip(dys).fold(T::ZERO, |s, (&a, &b)| s + a * b);
            for ((d, &yv), &dyv) in dx[span].iter_mut().zip(ys).zip(dys) {
                *d += yv * (dyv - dot);
            }
        }
        Ok(())
    }

    fn cross_entropy_fwd(
        &self,
        n: usize,
        k: usize,
        logits: &Vec<T>,
        labels: &Vec<T>,
        loss: &mut Vec<T>,
        probs: &mut Vec<T>,
    ) -> Result<()> {
        counts::call(1);
        softmax_rows(n, k, logits, probs);
        // −ln p[label] from the saved probabilities (floored at the smallest
        // positive f64), summed in f64.
        let mut total = 0.0f64;
        for i in 0..n {
            let c = label(labels[i], k);
            total -= probs[i * k + c].to_f64().max(f64::MIN_POSITIVE).ln();
        }
        loss[0] = T::from_f64(total / n as f64);
        Ok(())
    }

    fn accuracy(
        &self,
        n: usize,
        k: usize,
        logits: &Vec<T>,
        labels: &Vec<T>,
        out: &mut Vec<T>,
        at: usize,
    ) -> Result<()> {
        counts::call(1);
        if logits.len() != n * k || labels.len() != n || at >= out.len() || n == 0 || k == 0 {
            crate::bail!(
                "accuracy: logits hold {}, labels {} for {n}×{k}; slot {at} of {}",
                logits.len(),
                labels.len(),
                out.len()
            );
        }
        let hits = logits
            .chunks_exact(k)
            .zip(labels)
            .filter(|(row, lab)| {
                let best = row.iter().enumerate().fold(0, |b, (j, v)| if *v > row[b] { j } else { b });
                best as f64 == lab.to_f64()
            })
            .count();
        out[at] = T::from_f64(hits as f64 / n as f64);
        Ok(())
    }

    fn cross_entropy_bwd(
        &self,
        n: usize,
        k: usize,
        probs: &Vec<T>,
        labels: &Vec<T>,
        dloss: &Vec<T>,
        dlogits: &mut Vec<T>,
    ) -> Result<()> {
        counts::call(1);
        let s = dloss[0] / T::from_usize(n);
        for i in 0..n {
            let c = label(labels[i], k);
            for j in 0..k {
                let t = if j == c { T::ONE } else { T::ZERO };
                dlogits[i * k + j] += s * (probs[i * k + j] - t);
            }
        }
        Ok(())
    }
}

/// A class index stored as a float. Labels are checked when data is loaded;
/// an out-of-range value here is a bug in the engine.
fn label<T: Real>(v: T, k: usize) -> usize {
    let c = v.to_f64();
    assert!(c >= 0.0 && (c as usize) < k && c.fract() == 0.0, "label {c} is not a class index below {k}");
    c as usize
}

/// `y = softmax(x)` per row of a `(rows, cols)` matrix.
fn softmax_rows<T: Real>(rows: usize, cols: usize, x: &[T], y: &mut [T]) {
    for r in 0..rows {
        let xs = &x[r * cols..(r + 1) * cols];
        let ys = &mut y[r * cols..(r + 1) * cols];
        let m = xs.iter().fold(xs[0], |m, &v| m.max(v));
        let mut s = T::ZERO;
        for (yv, &xv) in ys.iter_mut().zip(xs) {
            *yv = (xv - m).exp();
            s += *yv;
        }
        ys.iter_mut().for_each(|v| *v = *v / s);
    }
}
