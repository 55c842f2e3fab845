//! One DARTS mixed edge (all 8 primitives, softmax-weighted, recorded on the
//! tape as tests/grad_tape.rs does) forward and backward on the CPU, ms per
//! call, for the plane sizes of an 8-layer C=16 supernet at batch 8 and 32.
//! `cargo bench --bench edge` (RARTS_THREADS sets the thread count; pass
//! `quick` for batch 8 only, `profile` for time per op family). Median of several runs.

mod common;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rarts::backend::Cpu;
use rarts::exec::Exec;
use rarts::ops::record::*;
use rarts::shape::Shape;
use rarts::space::darts::{PRIMITIVES, mixed_edge};
use rarts::space::{GROUP_ARCH, GROUP_W};
use rarts::tape::{Init, Tape};

/// Median seconds of `f` over enough runs to fill ~0.5 s (at least 3).
fn time(f: impl FnMut()) -> f64 {
    common::median_secs(0.5, 3, f)
}

/// `(fwd ms, fwd+bwd ms)` of one mixed edge on `(n, c, hw, hw)`.
fn edge(n: usize, c: usize, hw: usize, stride: usize) -> (f64, f64) {
    let mut rng = StdRng::seed_from_u64(1);
    let mut t = Tape::new();
    let x = t.input(Shape::nchw(n, c, hw, hw), "x");
    let alpha = t.param(Shape::mat(1, PRIMITIVES.len()), GROUP_ARCH, Init::Normal(1e-3), "alpha");
    let w = t.softmax_rows(alpha);
    let (shape, terms) = mixed_edge(&mut t, x, c, stride, 0, GROUP_W, "edge");
    let y = t.mix(&terms, w, shape);
    let r = t.input(shape, "r");
    let prod = t.mul(y, r);
    let loss = t.sum_all(prod);
    let mut ex = Exec::new(Cpu::<f32>::new(), t).expect("plan allocates");
    ex.init_params(&mut rng).expect("init");
    let xs: Vec<f64> = (0..n * c * hw * hw).map(|_| rng.random_range(-1.0..1.0)).collect();
    let rs: Vec<f64> = (0..shape.numel()).map(|_| rng.random_range(-1.0..1.0)).collect();
    ex.set(x, &xs).expect("x fits");
    ex.set(r, &rs).expect("r fits");
    let fwd = time(|| ex.forward().expect("forward"));
    let both = time(|| {
        ex.forward().expect("forward");
        ex.backward(loss, &[GROUP_W, GROUP_ARCH]).expect("backward");
    });
    if std::env::args().any(|a| a == "profile") {
        ex.profile = Some(Default::default());
        for _ in 0..10 {
            ex.forward().expect("forward");
            ex.backward(loss, &[GROUP_W, GROUP_ARCH]).expect("backward");
        }
        for (fam, dir, r) in ex.profile.take().unwrap_or_default().sorted() {
            println!("    {fam:<16} {dir:>4} {:>8.3} ms {:>3} ops", r.secs * 1e2, r.ops / 10);
        }
    }
    (fwd * 1e3, both * 1e3)
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let batches: &[usize] = if quick { &[8] } else { &[8, 32] };
    println!("threads {}", rarts::par::threads());
    println!(
        "{:>5} {:>3} {:>3} {:>6} | {:>9} {:>9} {:>9}",
        "batch", "C", "hw", "stride", "fwd ms", "bwd ms", "total ms"
    );
    for &n in batches {
        for &(c, hw, stride) in &[(16, 32, 1), (16, 32, 2), (32, 16, 1), (32, 16, 2), (64, 8, 1)] {
            let (f, fb) = edge(n, c, hw, stride);
            println!("{n:>5} {c:>3} {hw:>3} {stride:>6} | {f:>9.2} {:>9.2} {fb:>9.2}", fb - f);
        }
    }
}
