//! BatchNorm throughput for the shapes of the retraining network (DARTS_V2,
//! C = 16, 28×28, batch 96): training forward and backward on the CPU
//! backend, in GB/s of tensor traffic (forward: x read twice, y written;
//! backward: x and dy read twice, dx written) beside a plain copy of the same
//! tensor, which bounds what a memory-bound pass can reach.
//! `cargo bench --bench bn` (RARTS_THREADS sets the thread count).

mod common;

use rarts::backend::{BnOps, Cpu, ElementwiseOps, Write};
use rarts::ops::bn::BnGeom;

/// Median seconds of `f` over enough runs to fill ~0.3 s (at least 5).
fn time(f: impl FnMut()) -> f64 {
    common::median_secs(0.3, 5, f)
}

fn main() {
    let cpu = Cpu::<f32>::new();
    println!("threads {}", rarts::par::threads());
    println!(
        "{:>5} {:>4} {:>4} | {:>9} {:>9} {:>9} | {:>10}",
        "batch", "C", "hw", "fwd GB/s", "bwd GB/s", "copy GB/s", "MB/tensor"
    );
    for (c, side) in [(16, 28), (32, 14), (64, 7), (64, 28)] {
        let g = BnGeom { n: 96, c, hw: side * side, eps: 1e-5, momentum: 0.1 };
        let len = g.n * g.c * g.hw;
        let x: Vec<f32> = (0..len).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
        let dy: Vec<f32> = (0..len).map(|i| ((i * 104729) % 1000) as f32 / 500.0 - 1.0).collect();
        let (gamma, beta) = (vec![1.0f32; c], vec![0.0f32; c]);
        let (mut y, mut dx) = (vec![0.0f32; len], vec![0.0f32; len]);
        let (mut saved, mut rm, mut rv) = (vec![0.0f32; 2 * c], vec![0.0f32; c], vec![1.0f32; c]);
        let (mut dg, mut db) = (vec![0.0f32; c], vec![0.0f32; c]);
        let fwd =
            time(|| cpu.bn_fwd_train(&g, &x, Some(&gamma), Some(&beta), &mut y, &mut saved, &mut rm, &mut rv).unwrap());
        let bwd = time(|| {
            cpu.bn_bwd(&g, &x, Some(&gamma), &saved, &dy, Some((&mut dx, Write::Set)), Some(&mut dg), Some(&mut db))
                .unwrap()
        });
        let copy = time(|| cpu.axpy(1.0, &x, &mut y, Write::Set).unwrap());
        let bytes = (len * 4) as f64;
        println!(
            "{:>5} {:>4} {:>4} | {:>9.1} {:>9.1} {:>9.1} | {:>10.1}",
            g.n,
            c,
            side,
            3.0 * bytes / fwd / 1e9,
            5.0 * bytes / bwd / 1e9,
            2.0 * bytes / copy / 1e9,
            bytes / 1e6
        );
    }
}
