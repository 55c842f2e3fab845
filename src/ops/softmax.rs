//! Row softmax (the mixing weights of α) and softmax cross-entropy.

use crate::real::Real;

/// `y = softmax(x)` for each row of a `(rows, cols)` matrix.
pub fn softmax_rows_fwd<T: Real>(rows: usize, cols: usize, x: &[T], y: &mut [T]) {
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

/// `dx += y ⊙ (dy − Σ_row dy ⊙ y)`
pub fn softmax_rows_bwd<T: Real>(rows: usize, cols: usize, y: &[T], dy: &[T], dx: &mut [T]) {
    for r in 0..rows {
        let span = r * cols..(r + 1) * cols;
        let (ys, dys) = (&y[span.clone()], &dy[span.clone()]);
        let dot = ys.iter().zip(dys).fold(T::ZERO, |s, (&a, &b)| s + a * b);
        for ((d, &yv), &g) in dx[span].iter_mut().zip(ys).zip(dys) {
            *d += yv * (g - dot);
        }
    }
}

/// Mean softmax cross-entropy of `(n, k)` logits against class indices
/// (stored as floats); saves the probabilities for backward.
pub fn cross_entropy_fwd<T: Real>(n: usize, k: usize, logits: &[T], labels: &[T], loss: &mut [T], probs: &mut [T]) {
    softmax_rows_fwd(n, k, logits, probs);
    let mut total = 0.0f64;
    for i in 0..n {
        let c = label(labels[i], k);
        total -= probs[i * k + c].to_f64().max(f64::MIN_POSITIVE).ln();
    }
    loss[0] = T::from_f64(total / n as f64);
}

/// `dz += dloss · (p − onehot) / n`
pub fn cross_entropy_bwd<T: Real>(n: usize, k: usize, probs: &[T], labels: &[T], dloss: &[T], dlogits: &mut [T]) {
    let s = dloss[0] / T::from_usize(n);
    for i in 0..n {
        let c = label(labels[i], k);
        for j in 0..k {
            let t = if j == c { T::ONE } else { T::ZERO };
            dlogits[i * k + j] += s * (probs[i * k + j] - t);
        }
    }
}

/// A class index stored as a float. Labels are checked when data is loaded;
/// an out-of-range value here is a bug in the engine.
fn label<T: Real>(v: T, k: usize) -> usize {
    let c = v.to_f64();
    assert!(c >= 0.0 && (c as usize) < k && c.fract() == 0.0, "label {c} is not a class index below {k}");
    c as usize
}
