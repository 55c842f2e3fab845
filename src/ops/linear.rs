//! Fully connected layer, `y = x·wᵀ + b`: the classifier.

use crate::real::Real;

/// x `(n, i)`, w `(o, i)`, b `(o)`, y `(n, o)`: `y = x·wᵀ + b`
pub fn linear_fwd<T: Real>(n: usize, i: usize, o: usize, x: &[T], w: &[T], b: Option<&[T]>, y: &mut [T]) {
    for r in 0..n {
        let xr = &x[r * i..(r + 1) * i];
        for c in 0..o {
            let wr = &w[c * i..(c + 1) * i];
            let acc = xr.iter().zip(wr).fold(T::ZERO, |s, (&a, &bv)| s + a * bv);
            y[r * o + c] = acc + b.map_or(T::ZERO, |b| b[c]);
        }
    }
}

/// `dx += dy·w`, `dw += dyᵀ·x`, `db += Σ_n dy`
#[allow(clippy::too_many_arguments)]
pub fn linear_bwd<T: Real>(
    n: usize,
    i: usize,
    o: usize,
    x: &[T],
    w: &[T],
    dy: &[T],
    mut dx: Option<&mut [T]>,
    mut dw: Option<&mut [T]>,
    mut db: Option<&mut [T]>,
) {
    for r in 0..n {
        for c in 0..o {
            let g = dy[r * o + c];
            if let Some(dx) = dx.as_deref_mut() {
                for (d, &wv) in dx[r * i..(r + 1) * i].iter_mut().zip(&w[c * i..(c + 1) * i]) {
                    *d += g * wv;
                }
            }
            if let Some(dw) = dw.as_deref_mut() {
                for (d, &xv) in dw[c * i..(c + 1) * i].iter_mut().zip(&x[r * i..(r + 1) * i]) {
                    *d += g * xv;
                }
            }
            if let Some(db) = db.as_deref_mut() {
                db[c] += g;
            }
        }
    }
}
