//! The separable pooling kernels of the CPU backend (src/ops/pool/cpu.rs)
//! against direct window loops written here, including ties (small integer
//! inputs), which decide where max-pool backward routes its gradient: to the
//! first maximum in row-major window order.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rarts::backend::{Cpu, PoolOps, Write};
use rarts::ops::pool::PoolGeom;

fn geom(n: usize, c: usize, h: usize, w: usize, k: usize, stride: usize, pad: usize) -> PoolGeom {
    let o = |len: usize| (len + 2 * pad - k) / stride + 1;
    PoolGeom { n, c, h, w, oh: o(h), ow: o(w), k, stride, pad }
}

/// In-bounds window `(rows, cols)` of output `(oy, ox)`.
fn window(g: &PoolGeom, oy: usize, ox: usize) -> (Vec<usize>, Vec<usize>) {
    let r = |o: usize, len: usize| {
        let lo = (o * g.stride) as isize - g.pad as isize;
        (lo..lo + g.k as isize).filter(|&i| i >= 0 && (i as usize) < len).map(|i| i as usize).collect()
    };
    (r(oy, g.h), r(ox, g.w))
}

/// Direct loops: `(max y, avg y, max dx, avg dx)` for gradient `dy`.
fn direct(g: &PoolGeom, x: &[f64], dy: &[f64]) -> [Vec<f64>; 4] {
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    let mut out = [vec![0.0; dy.len()], vec![0.0; dy.len()], vec![0.0; x.len()], vec![0.0; x.len()]];
    for p in 0..g.n * g.c {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let (rows, cols) = window(g, oy, ox);
                let o = p * ohw + oy * g.ow + ox;
                let mut best = None::<usize>;
                let mut sum = 0.0;
                for &iy in &rows {
                    for &ix in &cols {
                        let i = p * hw + iy * g.w + ix;
                        sum += x[i];
                        if best.is_none_or(|b| x[i] > x[b]) {
                            best = Some(i);
                        }
                    }
                }
                let cnt = (rows.len() * cols.len()) as f64;
                let b = best.expect("windows are never empty");
                out[0][o] = x[b];
                out[1][o] = sum / cnt;
                out[2][b] += dy[o];
                for &iy in &rows {
                    for &ix in &cols {
                        out[3][p * hw + iy * g.w + ix] += dy[o] / cnt;
                    }
                }
            }
        }
    }
    out
}

fn assert_close(what: &str, g: &PoolGeom, got: &[f64], want: &[f64]) {
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        // Only the summation order differs: a few ulps of O(1) values.
        assert!((a - b).abs() <= 1e-12 + 1e-12 * b.abs(), "{what} {g:?}: [{i}] got {a:e}, want {b:e}");
    }
}

#[test]
fn pooling_matches_direct_windows() {
    let mut rng = StdRng::seed_from_u64(5);
    let cpu = Cpu::<f64>::new();
    let shapes = [
        geom(2, 3, 7, 9, 3, 1, 1),
        geom(2, 3, 8, 8, 3, 2, 1),
        geom(1, 2, 9, 7, 3, 2, 1),
        geom(3, 2, 5, 5, 3, 1, 0),
        geom(2, 2, 6, 7, 5, 3, 2),
        geom(1, 2, 3, 3, 3, 2, 1),
        geom(1, 1, 14, 14, 3, 2, 1),
    ];
    for g in shapes {
        for ties in [false, true] {
            let nx = g.n * g.c * g.h * g.w;
            let x: Vec<f64> = (0..nx)
                .map(|_| if ties { rng.random_range(0..3) as f64 } else { rng.random_range(-1.0..1.0) })
                .collect();
            let dy: Vec<f64> = (0..g.n * g.c * g.oh * g.ow).map(|_| rng.random_range(-1.0..1.0)).collect();
            let [ym, ya, dxm, dxa] = direct(&g, &x, &dy);
            let mut y = vec![9.0; dy.len()];
            cpu.max_pool_fwd(&g, &x, &mut y).unwrap();
            assert_close("max fwd", &g, &y, &ym);
            let mut ya_got = vec![9.0; dy.len()];
            cpu.avg_pool_fwd(&g, &x, &mut ya_got).unwrap();
            assert_close("avg fwd", &g, &ya_got, &ya);
            // Backward accumulates (from a known offset) or overwrites (NaNs).
            for (write, start) in [(Write::Add, 1.0), (Write::Set, f64::NAN)] {
                let off = if write == Write::Add { 1.0 } else { 0.0 };
                let mut dx = vec![start; nx];
                cpu.max_pool_bwd(&g, &x, &y, &dy, &mut dx, write).unwrap();
                let want: Vec<f64> = dxm.iter().map(|v| v + off).collect();
                assert_close(&format!("max bwd {write:?}"), &g, &dx, &want);
                let mut dx = vec![start; nx];
                cpu.avg_pool_bwd(&g, &dy, &mut dx, write).unwrap();
                let want: Vec<f64> = dxa.iter().map(|v| v + off).collect();
                assert_close(&format!("avg bwd {write:?}"), &g, &dx, &want);
            }
        }
    }
}
