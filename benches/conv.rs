//! Convolution throughput for the DARTS shapes: forward, backward-data and
//! backward-filter, the CPU backend's kernels (`ConvOps for Cpu`) beside the
//! reference loops (`ops::conv::reference`).
//! `cargo bench --bench conv` (RARTS_THREADS sets the thread count; pass
//! `quick` to skip the reference and batch 32, `train` for the shapes of the
//! retraining network at C = 16 on 28×28 images, batch 96, without the
//! reference). Median of several runs, GFLOP/s counting a multiply-add as 2
//! flops.

mod common;

use rarts::backend::{ConvOps, Cpu, Write};
use rarts::ops::conv::{ConvGeom, reference};

#[allow(clippy::too_many_arguments)]
fn geom(
    n: usize,
    cin: usize,
    cout: usize,
    hw: usize,
    k: usize,
    stride: usize,
    pad: usize,
    dil: usize,
    groups: usize,
    relu_in: bool,
) -> ConvGeom {
    let o = ConvGeom::out_len(hw, k, stride, pad, dil);
    ConvGeom { n, cin, h: hw, w: hw, cout, oh: o, ow: o, k, stride, pad, dil, groups, relu_in }
}

/// Median seconds of `f` over enough runs to fill ~0.2 s (at least 3).
fn time(f: impl FnMut()) -> f64 {
    common::median_secs(0.2, 3, f)
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let train = std::env::args().any(|a| a == "train");
    let batches: &[usize] = if train {
        &[96]
    } else if quick {
        &[8]
    } else {
        &[8, 32]
    };
    let sizes: &[(usize, usize)] = if train { &[(16, 28), (32, 14), (64, 7)] } else { &[(16, 32), (32, 16), (64, 8)] };
    let cpu = Cpu::<f32>::new();
    println!("threads {}", rarts::par::threads());
    println!(
        "{:<14} {:>5} {:>3} {:>3} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8}",
        "conv", "batch", "C", "hw", "fwd", "bwd_d", "bwd_f", "ref fwd", "ref bwd_d", "ref bwd_f"
    );
    for &n in batches {
        for &(c, hw) in sizes {
            let shapes = [
                ("dw3x3", geom(n, c, c, hw, 3, 1, 1, 1, c, true)),
                ("dw3x3 s2", geom(n, c, c, hw, 3, 2, 1, 1, c, true)),
                ("dw5x5", geom(n, c, c, hw, 5, 1, 2, 1, c, true)),
                ("dw3x3 dil2", geom(n, c, c, hw, 3, 1, 2, 2, c, true)),
                ("dw5x5 dil2", geom(n, c, c, hw, 5, 1, 4, 2, c, true)),
                ("1x1", geom(n, c, c, hw, 1, 1, 0, 1, 1, false)),
                ("1x1 relu s2", geom(n, c, c / 2, hw, 1, 2, 0, 1, 1, true)),
                ("1x1 relu 4C", geom(n, 4 * c, c, hw, 1, 1, 0, 1, 1, true)),
                ("stem 3x3", geom(n, 3, 3 * c, hw, 3, 1, 1, 1, 1, false)),
            ];
            for (name, g) in shapes {
                if name == "stem 3x3" && c != 16 {
                    continue;
                }
                let x = vec![0.5f32; g.x_shape().numel()];
                let w = vec![0.1f32; g.w_shape().numel()];
                let dy = vec![0.3f32; g.y_shape().numel()];
                let (mut y, mut dx, mut dw) = (dy.clone(), x.clone(), w.clone());
                let gf = |s: f64| 2.0 * g.macs() as f64 / s / 1e9;
                let fast = [
                    time(|| cpu.conv2d_fwd(&g, &x, &w, &mut y).unwrap()),
                    time(|| cpu.conv2d_bwd_data(&g, &x, &w, &dy, &mut dx, Write::Add).unwrap()),
                    time(|| cpu.conv2d_bwd_filter(&g, &x, &dy, &mut dw, Write::Add).unwrap()),
                ];
                let slow = if quick || train {
                    [f64::NAN; 3]
                } else {
                    [
                        time(|| reference::conv2d_fwd(&g, &x, &w, &mut y)),
                        time(|| reference::conv2d_bwd_data(&g, &x, &w, &dy, &mut dx, Write::Add)),
                        time(|| reference::conv2d_bwd_filter(&g, &x, &dy, &mut dw)),
                    ]
                };
                println!(
                    "{name:<14} {n:>5} {c:>3} {hw:>3} | {:>8.2} {:>8.2} {:>8.2} | {:>8.2} {:>8.2} {:>8.2}",
                    gf(fast[0]),
                    gf(fast[1]),
                    gf(fast[2]),
                    gf(slow[0]),
                    gf(slow[1]),
                    gf(slow[2])
                );
            }
        }
    }
    println!("(GFLOP/s; 1 multiply-add = 2 flops)");
}
