//! Elementwise kernels and the BLAS-1 reductions.

use crate::par;
use crate::real::Real;

/// Chunk length for splitting flat elementwise work over threads.
const CHUNK: usize = 1 << 14;

/// `y += a·x`
pub fn axpy<T: Real>(a: T, x: &[T], y: &mut [T]) {
    assert_eq!(x.len(), y.len(), "axpy: length mismatch");
    par::for_chunks(y, CHUNK, x.len(), |i, c| {
        let xs = &x[i * CHUNK..i * CHUNK + c.len()];
        for (yv, &xv) in c.iter_mut().zip(xs) {
            *yv += a * xv;
        }
    });
}

/// `y = v`, split over threads (a supernet's gradients are gigabytes a pass).
pub fn fill<T: Real>(v: T, y: &mut [T]) {
    let n = y.len();
    par::for_chunks(y, CHUNK, n, |_, c| c.fill(v));
}

/// `y = Σ_k w_k · x_k` in one pass over `y` (a mixed edge's weighted sum;
/// `y` = 0 when there are no terms). Each chunk of `y` takes every term in
/// turn while it is in cache.
pub fn weighted_sum<T: Real>(terms: &[(T, &[T])], y: &mut [T]) {
    for (_, x) in terms {
        assert_eq!(x.len(), y.len(), "weighted_sum: length mismatch");
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
}

/// `y *= a`
pub fn scale<T: Real>(a: T, y: &mut [T]) {
    y.iter_mut().for_each(|v| *v *= a);
}

/// Lanes of the f64 partial sums: independent accumulators the compiler
/// vectorises, where one running sum would wait on every previous add.
const LANES: usize = 8;

/// `Σ a ⊙ b` in f64 lanes.
#[inline]
fn dot_f64<T: Real>(a: &[T], b: &[T]) -> f64 {
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

/// `Σ x²`, accumulated in f64.
pub fn sum_sq<T: Real>(x: &[T]) -> f64 {
    dot_f64(x, x)
}

/// `Σ a ⊙ b`, accumulated in f64 and returned in T.
pub fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    assert_eq!(a.len(), b.len(), "dot: length mismatch");
    let parts = par::map(a.len().div_ceil(CHUNK), a.len(), |i| {
        let lo = i * CHUNK;
        let hi = (lo + CHUNK).min(a.len());
        dot_f64(&a[lo..hi], &b[lo..hi])
    });
    T::from_f64(parts.iter().sum())
}

/// `y = max(x, 0)`
pub fn relu_fwd<T: Real>(x: &[T], y: &mut [T]) {
    for (yv, &xv) in y.iter_mut().zip(x) {
        *yv = if xv > T::ZERO { xv } else { T::ZERO };
    }
}

/// `dx += dy · [x > 0]`
pub fn relu_bwd<T: Real>(x: &[T], dy: &[T], dx: &mut [T]) {
    for ((d, &xv), &g) in dx.iter_mut().zip(x).zip(dy) {
        if xv > T::ZERO {
            *d += g;
        }
    }
}

/// `y = a ⊙ b`
pub fn mul_fwd<T: Real>(a: &[T], b: &[T], y: &mut [T]) {
    for ((yv, &av), &bv) in y.iter_mut().zip(a).zip(b) {
        *yv = av * bv;
    }
}

/// `da += dy ⊙ b`
pub fn mul_bwd<T: Real>(b: &[T], dy: &[T], da: &mut [T]) {
    for ((d, &bv), &g) in da.iter_mut().zip(b).zip(dy) {
        *d += g * bv;
    }
}

/// Elements per sample of a drop-path operand: `x.len() / mask.len()`,
/// checked to divide evenly.
fn per_sample(x: usize, mask: usize, what: &str) -> usize {
    assert!(mask > 0 && x.is_multiple_of(mask), "{what}: {x} elements are not {mask} equal samples");
    x / mask
}

/// `y[n, …] = x[n, …] · mask[n]` — drop path, x and y `(n, c, h, w)`, mask `(n)`
pub fn drop_path_fwd<T: Real>(x: &[T], mask: &[T], y: &mut [T]) {
    assert_eq!(x.len(), y.len(), "drop_path_fwd: length mismatch");
    if x.is_empty() {
        return;
    }
    let per = per_sample(x.len(), mask.len(), "drop_path_fwd");
    for ((yr, xr), &m) in y.chunks_exact_mut(per).zip(x.chunks_exact(per)).zip(mask) {
        for (yv, &xv) in yr.iter_mut().zip(xr) {
            *yv = xv * m;
        }
    }
}

/// `dx[n, …] += dy[n, …] · mask[n]`
pub fn drop_path_bwd<T: Real>(mask: &[T], dy: &[T], dx: &mut [T]) {
    assert_eq!(dy.len(), dx.len(), "drop_path_bwd: length mismatch");
    if dy.is_empty() {
        return;
    }
    let per = per_sample(dy.len(), mask.len(), "drop_path_bwd");
    for ((dr, gr), &m) in dx.chunks_exact_mut(per).zip(dy.chunks_exact(per)).zip(mask) {
        for (d, &g) in dr.iter_mut().zip(gr) {
            *d += g * m;
        }
    }
}
