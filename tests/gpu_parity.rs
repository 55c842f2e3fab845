//! Every `Backend` method of `Cuda` against the CPU reference (`Cpu<f32>`),
//! on fresh random inputs and several shapes (odd sizes, stride 2,
//! dilation 2). Forward outputs start poisoned (NaN) so that an element the
//! kernel forgot to write fails; backward gradients start random so that a
//! kernel that overwrites instead of accumulating fails.
//!
//! Without a usable CUDA device each GPU test prints
//! `skipped: <test>: no CUDA device (<reason>)` and passes. The same cases also run
//! with the CPU backend in place of CUDA (`harness_self_check_on_cpu`), which
//! checks the harness itself on machines without a GPU.
//!
//! Tolerances are mixed, per element: |got − want| ≤ atol + rtol·|want|.
//! The GPU sums in another order (trees instead of a running sum), so
//! tolerances grow with the length of the sums; each is explained where set.

mod common;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rarts::backend::{
    AdamKernel, Backend, BnOps, Coef, ConvOps, Cpu, Cuda, Device, ElementwiseOps, LayoutOps, LinearOps, NormThen,
    OptimOps, Part, PoolOps, SgdKernel, SoftmaxOps, Write,
};
use rarts::ops::bn::BnGeom;
use rarts::ops::conv::ConvGeom;
use rarts::ops::elementwise::{MixGrad, ScaleGeom};
use rarts::ops::layout::ChannelSlice;
use rarts::ops::pool::PoolGeom;
use rarts::search::algo::{Algo, Schedule};

/// Set in the run of this file on the emulated device
/// (`every_test_here_on_the_emulated_device`): there the device must open.
const EMULATED: &str = "RARTS_EMULATED_DEVICE";

fn gpu() -> Option<Cuda> {
    if std::env::var_os(EMULATED).is_some() {
        return Some(Cuda::new(0).unwrap_or_else(|e| panic!("the emulated device did not open: {e}")));
    }
    if let Some(why) = rarts::backend::cuda::unavailable_reason() {
        common::skipped(&format!("no CUDA device ({why})"));
        return None;
    }
    match Cuda::new(0) {
        Ok(c) => Some(c),
        Err(e) => {
            common::skipped(&format!("no CUDA device ({e})"));
            None
        }
    }
}

/// Elementwise kernels: one rounding each, possibly an FMA contraction.
const EW: (f64, f64) = (1e-6, 1e-6);

/// Fails with the first element past tolerance: index, both values and how
/// far past tolerance it is. A NaN where the reference has a number (an
/// unwritten poisoned element) always fails.
fn close(what: &str, got: &[f32], want: &[f32], (atol, rtol): (f64, f64)) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mut bad = 0usize;
    let mut first = None;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g as f64, w as f64);
        let ok = if w.is_nan() { g.is_nan() } else { (g - w).abs() <= atol + rtol * w.abs() };
        if !ok {
            bad += 1;
            first.get_or_insert((i, g, w));
        }
    }
    if let Some((i, g, w)) = first {
        let tol = atol + rtol * w.abs();
        panic!(
            "{what}: {bad} of {} elements past tolerance; first at [{i}]: got {g:e}, want {w:e}, |Δ| = {:e} = {:.2}× tolerance {tol:e}",
            got.len(),
            (g - w).abs(),
            (g - w).abs() / tol
        );
    }
}

fn rand_vec(rng: &mut StdRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// A device buffer holding `v`.
fn up<B: Backend<Elem = f32>>(be: &B, v: &[f32]) -> B::Buf {
    let mut b = be.alloc(v.len()).expect("alloc");
    be.upload(&mut b, v).expect("upload");
    b
}

/// A device buffer of `n` NaNs, for outputs that must be fully written.
fn poisoned<B: Backend<Elem = f32>>(be: &B, n: usize) -> B::Buf {
    let mut b = be.alloc(n).expect("alloc");
    be.fill(&mut b, f32::NAN).expect("fill");
    b
}

/// The gradient a backward kernel starts from, on the host and the device:
/// `start` to add to, or NaNs to overwrite.
fn grad_start<B: Backend<Elem = f32>>(be: &B, start: &[f32], write: Write) -> (Vec<f32>, B::Buf) {
    match write {
        Write::Add => (start.to_vec(), up(be, start)),
        Write::Set => (vec![f32::NAN; start.len()], poisoned(be, start.len())),
    }
}

fn down<B: Backend<Elem = f32>>(be: &B, b: &B::Buf) -> Vec<f32> {
    be.download(b).expect("download")
}

/// The CPU reference and the random inputs of one case.
struct Pair {
    cpu: Cpu<f32>,
    rng: StdRng,
}

impl Pair {
    fn new(seed: u64) -> Self {
        Pair { cpu: Cpu::new(), rng: StdRng::seed_from_u64(seed) }
    }
    fn rand(&mut self, n: usize) -> Vec<f32> {
        rand_vec(&mut self.rng, n, -1.0, 1.0)
    }
}

mod cases {
    use super::*;

    const SIZES: [usize; 5] = [1, 7, 1000, 65_537, 1_200_003];

    pub fn elementwise<B: Backend<Elem = f32>>(be: &B) {
        let mut p = Pair::new(1);
        for n in SIZES {
            let (x, y0, b) = (p.rand(n), p.rand(n), p.rand(n));
            let (xd, bd) = (up(be, &x), up(be, &b));
            let cpu = &p.cpu;

            let mut yd = poisoned(be, n);
            be.fill(&mut yd, 0.5).unwrap();
            close(&format!("fill n={n}"), &down(be, &yd), &vec![0.5; n], EW);

            let mut yd = poisoned(be, n);
            be.copy(&xd, &mut yd).unwrap();
            close(&format!("copy n={n}"), &down(be, &yd), &x, EW);

            for write in [Write::Add, Write::Set] {
                let (mut yc, mut yd) = grad_start(be, &y0, write);
                cpu.axpy(-0.7, &x, &mut yc, write).unwrap();
                be.axpy(-0.7, &xd, &mut yd, write).unwrap();
                close(&format!("axpy n={n} {write:?}"), &down(be, &yd), &yc, EW);
            }

            let (mut yc, mut yd) = (vec![0.0; n], poisoned(be, n));
            cpu.relu_fwd(&x, &mut yc).unwrap();
            be.relu_fwd(&xd, &mut yd).unwrap();
            close(&format!("relu_fwd n={n}"), &down(be, &yd), &yc, EW);

            let (mut dc, mut dd) = (y0.clone(), up(be, &y0));
            cpu.relu_bwd(&x, &b, &mut dc).unwrap();
            be.relu_bwd(&xd, &bd, &mut dd).unwrap();
            close(&format!("relu_bwd n={n}"), &down(be, &dd), &dc, EW);

            let (mut yc, mut yd) = (vec![0.0; n], poisoned(be, n));
            cpu.mul_fwd(&x, &b, &mut yc).unwrap();
            be.mul_fwd(&xd, &bd, &mut yd).unwrap();
            close(&format!("mul_fwd n={n}"), &down(be, &yd), &yc, EW);

            let (mut dc, mut dd) = (y0.clone(), up(be, &y0));
            cpu.mul_bwd(&b, &x, &mut dc).unwrap();
            be.mul_bwd(&bd, &xd, &mut dd).unwrap();
            close(&format!("mul_bwd n={n}"), &down(be, &dd), &dc, EW);

            // Drop path over k samples of n/k elements, k the first of 8,
            // 7, 3, 1 that divides n; DARTS' masks: 0 or 1/keep.
            let k = [8, 7, 3, 1].into_iter().find(|k| n % k == 0).unwrap_or(1);
            let mask: Vec<f32> = (0..k).map(|i| if i % 3 == 1 { 0.0 } else { 1.0 / 0.8 }).collect();
            let md = up(be, &mask);
            for write in [Write::Add, Write::Set] {
                let (mut yc, mut yd) = grad_start(be, &y0, write);
                cpu.drop_path_fwd(&x, &mask, &mut yc, write).unwrap();
                be.drop_path_fwd(&xd, &md, &mut yd, write).unwrap();
                close(&format!("drop_path_fwd n={n} samples={k} {write:?}"), &down(be, &yd), &yc, EW);
            }

            for write in [Write::Add, Write::Set] {
                let (mut dc, mut dd) = grad_start(be, &y0, write);
                cpu.drop_path_bwd(&mask, &b, &mut dc, write).unwrap();
                be.drop_path_bwd(&md, &bd, &mut dd, write).unwrap();
                close(&format!("drop_path_bwd n={n} samples={k} {write:?}"), &down(be, &dd), &dc, EW);
            }
            // A node's sum of its ops with their drop paths: one op masked, one not.
            let (mut yc, mut yd) = (vec![f32::NAN; n], poisoned(be, n));
            cpu.masked_sum_fwd(&[(&x, Some(&mask)), (&b, None)], &mut yc).unwrap();
            be.masked_sum_fwd(&[(&xd, Some(&md)), (&bd, None)], &mut yd).unwrap();
            close(&format!("masked_sum_fwd n={n} samples={k}"), &down(be, &yd), &yc, EW);

            let w = vec![0.3, -1.1, 0.8];
            let wd = up(be, &w);
            let (mut yc, mut yd) = (y0.clone(), up(be, &y0));
            cpu.axpy_elem(&w, 1, &x, &mut yc).unwrap();
            be.axpy_elem(&wd, 1, &xd, &mut yd).unwrap();
            close(&format!("axpy_elem n={n}"), &down(be, &yd), &yc, EW);

            // A mixed node's weighted sum: no terms, the 7 of a DARTS edge
            // (weights in shuffled order), 9 (past one group of 8 in the
            // backward), 35 (a node of five edges) and 45 (past one launch's
            // 40; the nine inputs and weights reused). Up to 45 f32 products
            // added in the same order on both sides, but the GPU may
            // contract each into an FMA: a few ulps of the largest partial
            // sum, hence 1e-5 absolute.
            let mut mrng = StdRng::seed_from_u64(n as u64);
            let wm: Vec<f32> = rand_vec(&mut mrng, 9, -1.0, 1.0);
            let wmd = up(be, &wm);
            let xs: Vec<Vec<f32>> = (0..9).map(|_| rand_vec(&mut mrng, n, -1.0, 1.0)).collect();
            let xsd: Vec<B::Buf> = xs.iter().map(|v| up(be, v)).collect();
            for count in [0usize, 7, 9, 35, 45] {
                let order: Vec<usize> = [3usize, 0, 8, 5, 1, 7, 2, 6, 4].iter().copied().cycle().take(count).collect();
                let tc: Vec<(usize, &Vec<f32>)> = order.iter().map(|&k| (k, &xs[k])).collect();
                let td: Vec<(usize, &B::Buf)> = order.iter().map(|&k| (k, &xsd[k])).collect();
                let (mut yc, mut yd) = (vec![f32::NAN; n], poisoned(be, n));
                cpu.mix_fwd(&wm, &tc, &mut yc).unwrap();
                be.mix_fwd(&wmd, &td, &mut yd).unwrap();
                close(&format!("mix_fwd n={n} terms={count}"), &down(be, &yd), &yc, (1e-5, 1e-6));

                // Its backward: every term's dx (term 2 of the order wants
                // none; odd terms overwrite) and the weights' dots, or no dots.
                let dy = rand_vec(&mut mrng, n, -1.0, 1.0);
                let dyd = up(be, &dy);
                let starts: Vec<Vec<f32>> = (0..count).map(|_| rand_vec(&mut mrng, n, -1.0, 1.0)).collect();
                let write = |j: usize| if j % 2 == 1 { Write::Set } else { Write::Add };
                for with_dw in [true, false] {
                    let mut dc: Vec<(Vec<f32>, B::Buf)> =
                        starts.iter().enumerate().map(|(j, s)| grad_start(be, s, write(j))).collect();
                    let (mut dwc, mut dwd) = (wm.clone(), up(be, &wm));
                    let mut tc: Vec<MixGrad<'_, Vec<f32>>> = Vec::new();
                    let mut td: Vec<MixGrad<'_, B::Buf>> = Vec::new();
                    for (j, (c, d)) in dc.iter_mut().enumerate() {
                        let k = order[j];
                        tc.push(MixGrad { idx: k, x: &xs[k], dx: (j != 2).then_some((c, write(j))) });
                        td.push(MixGrad { idx: k, x: &xsd[k], dx: (j != 2).then_some((d, write(j))) });
                    }
                    cpu.mix_bwd(&wm, &dy, &mut tc, with_dw.then_some(&mut dwc)).unwrap();
                    be.mix_bwd(&wmd, &dyd, &mut td, with_dw.then_some(&mut dwd)).unwrap();
                    drop((tc, td));
                    let tag = format!("mix_bwd n={n} terms={count} dw={with_dw}");
                    for (j, (c, d)) in dc.iter().enumerate().filter(|&(j, _)| j != 2) {
                        close(&format!("{tag} dx {j}"), &down(be, d), c, (1e-5, 1e-6));
                    }
                    close(&format!("{tag} dw"), &down(be, &dwd), &dwc, (1e-5, 1e-6));
                }
            }

            // Sums of up to 1.2M products in f64, rounded once to f32.
            let (mut oc, mut od) = (w.clone(), up(be, &w));
            cpu.dot_elem(&x, &b, &mut oc, 2).unwrap();
            be.dot_elem(&xd, &bd, &mut od, 2).unwrap();
            close(&format!("dot_elem n={n}"), &down(be, &od), &oc, (1e-5, 1e-6));

            let (mut sc, mut sd) = (vec![0.0; 1], poisoned(be, 1));
            cpu.sum_all_fwd(&x, &mut sc).unwrap();
            be.sum_all_fwd(&xd, &mut sd).unwrap();
            close(&format!("sum_all_fwd n={n}"), &down(be, &sd), &sc, (1e-5, 1e-6));

            let g = vec![0.37f32];
            let gd = up(be, &g);
            let (mut dc, mut dd) = (y0.clone(), up(be, &y0));
            cpu.sum_all_bwd(&g, &mut dc).unwrap();
            be.sum_all_bwd(&gd, &mut dd).unwrap();
            close(&format!("sum_all_bwd n={n}"), &down(be, &dd), &dc, EW);
        }
    }

    /// (n, cin, h, w, cout, k, stride, pad, dil, groups, relu_in)
    type ConvCase = (usize, usize, usize, usize, usize, usize, usize, usize, usize, usize, bool);
    const CONVS: &[ConvCase] = &[
        // depthwise: sep_conv 3×3 / 5×5, stride 1 and 2, dil_conv (dilation 2), odd planes
        (2, 5, 9, 7, 5, 3, 1, 1, 1, 5, true),
        (3, 4, 8, 8, 4, 3, 2, 1, 1, 4, true),
        (2, 6, 11, 10, 6, 5, 1, 2, 1, 6, false),
        (2, 4, 9, 9, 4, 3, 1, 2, 2, 4, true),
        (2, 3, 12, 13, 3, 5, 2, 4, 2, 3, true),
        (8, 16, 32, 32, 16, 3, 1, 1, 1, 16, true),
        // pointwise: odd channel counts (partial tiles), stride 2 (FactorizedReduce)
        (2, 5, 7, 9, 19, 1, 1, 0, 1, 1, false),
        (3, 17, 8, 8, 33, 1, 1, 0, 1, 1, true),
        (2, 6, 9, 11, 4, 1, 2, 0, 1, 1, true),
        (2, 16, 8, 8, 16, 1, 2, 0, 1, 1, true),
        // n·oh·ow = 8192: two splits of the filter-gradient reduction
        (8, 16, 32, 32, 16, 1, 1, 0, 1, 1, true),
        // grouped pointwise (RARTS's two networks side by side): partial tiles
        // per group, stride 2, several splits, one input channel per group
        (2, 10, 7, 9, 38, 1, 1, 0, 1, 2, false),
        (3, 34, 8, 8, 66, 1, 1, 0, 1, 2, true),
        (2, 12, 9, 11, 8, 1, 2, 0, 1, 2, true),
        (8, 32, 32, 32, 32, 1, 1, 0, 1, 2, true),
        (2, 3, 5, 5, 6, 1, 1, 0, 1, 3, false),
        // the grouped stem
        (2, 6, 10, 9, 24, 3, 1, 1, 1, 2, false),
        // general: the 3×3 stem, grouped, dense dilated, 1×1 with padding
        (2, 3, 10, 9, 12, 3, 1, 1, 1, 1, false),
        (2, 6, 7, 7, 4, 3, 2, 1, 1, 2, true),
        (1, 4, 9, 8, 5, 3, 1, 2, 2, 1, true),
        (2, 3, 5, 5, 4, 1, 1, 1, 1, 1, false),
        // the auxiliary head: 1×1 C→128 on the pooled 2×2 map, 2×2 128→768 to 1×1
        (4, 40, 2, 2, 128, 1, 1, 0, 1, 1, false),
        (4, 128, 2, 2, 96, 2, 1, 0, 1, 1, true),
        (2, 5, 7, 6, 3, 2, 2, 1, 1, 1, false),
    ];

    pub fn conv<B: Backend<Elem = f32>>(be: &B) {
        let mut p = Pair::new(2);
        for &(n, cin, h, w, cout, k, stride, pad, dil, groups, relu_in) in CONVS {
            let oh = ConvGeom::out_len(h, k, stride, pad, dil);
            let ow = ConvGeom::out_len(w, k, stride, pad, dil);
            let g = ConvGeom { n, cin, h, w, cout, oh, ow, k, stride, pad, dil, groups, relu_in };
            let (xn, wn, yn) = (g.x_shape().numel(), g.w_shape().numel(), g.y_shape().numel());
            let (x, wt, dy) = (p.rand(xn), p.rand(wn), p.rand(yn));
            let (dx0, dw0) = (p.rand(xn), p.rand(wn));
            let (xd, wd, dyd) = (up(be, &x), up(be, &wt), up(be, &dy));
            // Sums of cin/g·k·k (forward), cout/g·k·k (data) products of
            // O(1) values: f32 order effects stay near 1e-6 per term.
            let tol = (2e-5, 1e-5);

            let (mut yc, mut yd) = (vec![0.0; yn], poisoned(be, yn));
            p.cpu.conv2d_fwd(&g, &x, &wt, &mut yc).unwrap();
            be.conv2d_fwd(&g, &xd, &wd, &mut yd).unwrap();
            close(&format!("conv2d_fwd {g:?}"), &down(be, &yd), &yc, tol);

            for write in [Write::Add, Write::Set] {
                let (mut dxc, mut dxd) = grad_start(be, &dx0, write);
                p.cpu.conv2d_bwd_data(&g, &x, &wt, &dy, &mut dxc, write).unwrap();
                be.conv2d_bwd_data(&g, &xd, &wd, &dyd, &mut dxd, write).unwrap();
                close(&format!("conv2d_bwd_data {g:?} {write:?}"), &down(be, &dxd), &dxc, tol);
            }

            // The filter gradient sums n·oh·ow products (up to 8192 here);
            // the CPU's running f32 sum has error ~√K·ulp·|sum|, so a looser
            // absolute term.
            for write in [Write::Add, Write::Set] {
                let (mut dwc, mut dwd) = grad_start(be, &dw0, write);
                p.cpu.conv2d_bwd_filter(&g, &x, &dy, &mut dwc, write).unwrap();
                be.conv2d_bwd_filter(&g, &xd, &dyd, &mut dwd, write).unwrap();
                close(&format!("conv2d_bwd_filter {g:?} {write:?}"), &down(be, &dwd), &dwc, (2e-4, 1e-4));
            }
        }
    }

    /// The chains (ReLU → depthwise → 1×1 as one op): (n, channels per
    /// network, networks, h, w, k, stride, dilation, cout per network), every
    /// kernel size, stride and dilation of the search space.
    type ChainCase = (usize, usize, usize, usize, usize, usize, usize, usize, usize);
    const CHAINS: &[ChainCase] = &[
        (2, 3, 1, 7, 9, 3, 1, 1, 5),
        (2, 4, 2, 9, 8, 5, 2, 1, 4),
        (3, 4, 2, 8, 8, 3, 2, 2, 4),
        (2, 16, 2, 16, 16, 5, 1, 2, 16),
    ];

    pub fn chain<B: Backend<Elem = f32>>(be: &B) {
        use rarts::ops::conv::{ChainGrads, ChainNorm, ChainSaved};
        let mut p = Pair::new(11);
        for &case in CHAINS {
            let g = common::chain_geom(case);
            let (dw, pw, bn) = (g.dw, g.pw, g.bn);
            let (xn, dn, yn, ch) = (dw.x_shape().numel(), dw.y_shape().numel(), pw.y_shape().numel(), bn.c);
            let (wdn, wpn) = (dw.w_shape().numel(), pw.w_shape().numel());
            let (x, wd, wp, dy) = (p.rand(xn), p.rand(wdn), p.rand(wpn), p.rand(yn));
            let gamma: Vec<f32> = p.rand(ch).iter().map(|v| v + 1.5).collect();
            let (beta, rm0) = (p.rand(ch), p.rand(ch));
            let rv0: Vec<f32> = p.rand(ch).iter().map(|v| v + 1.5).collect();
            let starts = [p.rand(xn), p.rand(wdn), p.rand(wpn), p.rand(ch), p.rand(ch)];
            let (xd, wdd, wpd, dyd) = (up(be, &x), up(be, &wd), up(be, &wp), up(be, &dy));
            let (gd, bd) = (up(be, &gamma), up(be, &beta));
            // As the single ops: the convs' sums of k·k, cin/nets and
            // cout/nets products; BatchNorm's over n·oh·ow (trees on the
            // device); the filter gradients over n·oh·ow products.
            let tol = (2e-5, 1e-5);
            for train in [true, false] {
                let (mut dc, mut pc, mut yc, mut sc) = (vec![0.0; dn], vec![0.0; yn], vec![0.0; yn], vec![0.0; 2 * ch]);
                let (mut rmc, mut rvc) = (rm0.clone(), rv0.clone());
                let (mut ddev, mut pdev, mut ydev, mut sdev) =
                    (poisoned(be, dn), poisoned(be, yn), poisoned(be, yn), poisoned(be, 2 * ch));
                let (mut rmd, mut rvd) = (up(be, &rm0), up(be, &rv0));
                let norm = ChainNorm {
                    gamma: Some(&gamma),
                    beta: Some(&beta),
                    running_mean: &mut rmc,
                    running_var: &mut rvc,
                    batch: train.then_some((&mut pc, &mut sc)),
                };
                p.cpu.chain_fwd(&g, &x, &wd, &wp, norm, &mut dc, &mut yc).unwrap();
                let norm = ChainNorm {
                    gamma: Some(&gd),
                    beta: Some(&bd),
                    running_mean: &mut rmd,
                    running_var: &mut rvd,
                    batch: train.then_some((&mut pdev, &mut sdev)),
                };
                be.chain_fwd(&g, &xd, &wdd, &wpd, norm, &mut ddev, &mut ydev).unwrap();
                let tag = format!("{g:?} train={train}");
                close(&format!("chain_fwd d {tag}"), &down(be, &ddev), &dc, tol);
                // BatchNorm divides by the batch's std: relative errors of
                // the 1×1 output grow by |mean|/std at most ~10 here.
                close(&format!("chain_fwd y {tag}"), &down(be, &ydev), &yc, (2e-4, 1e-4));
                close(&format!("chain_fwd running mean {tag}"), &down(be, &rmd), &rmc, tol);
                close(&format!("chain_fwd running var {tag}"), &down(be, &rvd), &rvc, tol);
                if !train {
                    continue;
                }
                close(&format!("chain_fwd p {tag}"), &down(be, &pdev), &pc, tol);
                close(&format!("chain_fwd saved {tag}"), &down(be, &sdev), &sc, (2e-4, 1e-4));
                for (mask, write) in [
                    (0b11111, Write::Add),
                    (0b11111, Write::Set),
                    (0b00001, Write::Set),
                    (0b00100, Write::Add),
                    (0b11010, Write::Set),
                ] {
                    let on = |i: usize| mask & (1 << i) != 0;
                    let mut cpu_bufs: Vec<Vec<f32>> = Vec::new();
                    let mut dev_bufs: Vec<B::Buf> = Vec::new();
                    for (i, s) in starts.iter().enumerate() {
                        let (c, d) = if i < 3 { grad_start(be, s, write) } else { (s.clone(), up(be, s)) };
                        cpu_bufs.push(c);
                        dev_bufs.push(d);
                    }
                    let [cx, cdw, cpw, cg, cb] = &mut cpu_bufs[..] else { unreachable!() };
                    let cpu_grads = ChainGrads {
                        x: on(0).then_some((cx, write)),
                        w_dw: on(1).then_some((cdw, write)),
                        w_pw: on(2).then_some((cpw, write)),
                        gamma: on(3).then_some(cg),
                        beta: on(4).then_some(cb),
                    };
                    let saved = ChainSaved { d: &dc, p: &pc, saved: &sc, gamma: Some(&gamma) };
                    p.cpu.chain_bwd(&g, &x, &wd, &wp, saved, &dy, cpu_grads).unwrap();
                    let [dx_, ddw_, dpw_, dg_, db_] = &mut dev_bufs[..] else { unreachable!() };
                    let dev_grads = ChainGrads {
                        x: on(0).then_some((dx_, write)),
                        w_dw: on(1).then_some((ddw_, write)),
                        w_pw: on(2).then_some((dpw_, write)),
                        gamma: on(3).then_some(dg_),
                        beta: on(4).then_some(db_),
                    };
                    let saved = ChainSaved { d: &ddev, p: &pdev, saved: &sdev, gamma: Some(&gd) };
                    be.chain_bwd(&g, &xd, &wdd, &wpd, saved, &dyd, dev_grads).unwrap();
                    // A gradient not asked for is left as it was on both sides.
                    for (i, what) in ["dx", "dw_dw", "dw_pw", "dγ", "dβ"].iter().enumerate() {
                        let got = down(be, &dev_bufs[i]);
                        if on(i) {
                            // Through BatchNorm's 1/std and its two sums as well.
                            close(
                                &format!("chain_bwd {what} {tag} asked {mask:05b} {write:?}"),
                                &got,
                                &cpu_bufs[i],
                                (1e-4, 1e-4),
                            );
                        } else if write == Write::Add || i >= 3 {
                            close(&format!("chain_bwd {what} {tag} (not asked)"), &got, &starts[i], (0.0, 0.0));
                        }
                    }
                }
            }
        }
    }

    /// (n, c, h, w, k, stride, pad)
    const POOLS: &[(usize, usize, usize, usize, usize, usize, usize)] = &[
        (2, 3, 8, 8, 3, 1, 1),
        (2, 3, 9, 7, 3, 2, 1),
        (1, 2, 5, 6, 3, 2, 0),
        (2, 4, 32, 32, 3, 2, 1),
        (1, 1, 1, 1, 3, 1, 1),
        // the auxiliary head's 5×5 stride 3 on 8×8 (2×2 out), an odd map, pad 2, 2×2
        (4, 16, 8, 8, 5, 3, 0),
        (2, 3, 11, 9, 5, 3, 0),
        (2, 3, 7, 8, 5, 3, 2),
        (2, 3, 6, 7, 2, 2, 0),
    ];

    pub fn pool<B: Backend<Elem = f32>>(be: &B) {
        let mut p = Pair::new(3);
        for &(n, c, h, w, k, stride, pad) in POOLS {
            let oh = (h + 2 * pad - k) / stride + 1;
            let ow = (w + 2 * pad - k) / stride + 1;
            let g = PoolGeom { n, c, h, w, oh, ow, k, stride, pad };
            let (xn, yn) = (g.x_shape().numel(), g.y_shape().numel());
            // Small integers make ties within windows common: the gradient
            // must go to the first maximum, as on the CPU.
            for ties in [true, false] {
                let x: Vec<f32> =
                    if ties { (0..xn).map(|_| p.rng.random_range(0..4) as f32).collect() } else { p.rand(xn) };
                let (dy, dx0) = (p.rand(yn), p.rand(xn));
                let (xd, dyd) = (up(be, &x), up(be, &dy));
                let tag = format!("{g:?} ties={ties}");

                let (mut yc, mut yd) = (vec![0.0; yn], poisoned(be, yn));
                p.cpu.max_pool_fwd(&g, &x, &mut yc).unwrap();
                be.max_pool_fwd(&g, &xd, &mut yd).unwrap();
                close(&format!("max_pool_fwd {tag}"), &down(be, &yd), &yc, EW);

                for write in [Write::Add, Write::Set] {
                    let (mut dc, mut dd) = grad_start(be, &dx0, write);
                    p.cpu.max_pool_bwd(&g, &x, &yc, &dy, &mut dc, write).unwrap();
                    be.max_pool_bwd(&g, &xd, &yd, &dyd, &mut dd, write).unwrap();
                    // Up to ⌈k/stride⌉² ≤ 9 contributions added in another order.
                    close(&format!("max_pool_bwd {tag} {write:?}"), &down(be, &dd), &dc, (1e-6, 1e-5));
                }

                // Sums of at most k² = 25 O(1) terms, then a division.
                let (mut yc, mut yd) = (vec![0.0; yn], poisoned(be, yn));
                p.cpu.avg_pool_fwd(&g, &x, &mut yc).unwrap();
                be.avg_pool_fwd(&g, &xd, &mut yd).unwrap();
                close(&format!("avg_pool_fwd {tag}"), &down(be, &yd), &yc, (1e-6, 1e-5));

                for write in [Write::Add, Write::Set] {
                    let (mut dc, mut dd) = grad_start(be, &dx0, write);
                    p.cpu.avg_pool_bwd(&g, &dy, &mut dc, write).unwrap();
                    be.avg_pool_bwd(&g, &dyd, &mut dd, write).unwrap();
                    close(&format!("avg_pool_bwd {tag} {write:?}"), &down(be, &dd), &dc, (1e-6, 1e-5));
                }
            }
        }
    }

    pub fn batch_norm<B: Backend<Elem = f32>>(be: &B) {
        let mut p = Pair::new(4);
        // (n, c, hw, offset): an offset of 1000 checks that the variance is
        // not computed as E[x²] − μ² (which would lose every digit in f32).
        // Up to 16,384 values a channel take one launch; the last two cases
        // take the two-launch path (3 and 8 blocks a channel).
        for &(n, c, hw, offset) in &[
            (2, 3, 5, 0.0),
            (4, 16, 64, 0.0),
            (1, 5, 1, 0.0),
            (3, 7, 49, 1000.0),
            (8, 4, 1024, 0.0),
            (16, 3, 1500, 1000.0),
            (64, 2, 1024, 0.0),
        ] {
            let g = BnGeom { n, c, hw, eps: 1e-5, momentum: 0.1 };
            let len = n * c * hw;
            let x: Vec<f32> = p.rand(len).into_iter().map(|v| v + offset).collect();
            let (gamma, beta, dy, dx0) = (p.rand(c), p.rand(c), p.rand(len), p.rand(len));
            let rm: Vec<f32> = p.rand(c);
            let rv: Vec<f32> = p.rand(c).into_iter().map(|v| v.abs() + 0.5).collect();
            let (dg0, db0) = (p.rand(c), p.rand(c));
            let (xd, gd, bd, dyd) = (up(be, &x), up(be, &gamma), up(be, &beta), up(be, &dy));
            // Normalised outputs are O(1); statistics in f64 on both sides.
            let tol = (2e-5, 2e-5);
            for affine in [true, false] {
                let tag = format!("n={n} c={c} hw={hw} offset={offset} affine={affine}");
                let (gc, bc) = if affine { (Some(&gamma), Some(&beta)) } else { (None, None) };
                let (gdo, bdo) = if affine { (Some(&gd), Some(&bd)) } else { (None, None) };

                let (mut yc, mut yd) = (vec![0.0; len], poisoned(be, len));
                let (mut sc, mut sd) = (vec![0.0; 2 * c], poisoned(be, 2 * c));
                let (mut rmc, mut rmd) = (rm.clone(), up(be, &rm));
                let (mut rvc, mut rvd) = (rv.clone(), up(be, &rv));
                p.cpu.bn_fwd_train(&g, &x, gc, bc, &mut yc, &mut sc, &mut rmc, &mut rvc).unwrap();
                be.bn_fwd_train(&g, &xd, gdo, bdo, &mut yd, &mut sd, &mut rmd, &mut rvd).unwrap();
                close(&format!("bn_fwd_train y {tag}"), &down(be, &yd), &yc, tol);
                close(&format!("bn_fwd_train saved {tag}"), &down(be, &sd), &sc, tol);
                close(&format!("bn_fwd_train running_mean {tag}"), &down(be, &rmd), &rmc, tol);
                close(&format!("bn_fwd_train running_var {tag}"), &down(be, &rvd), &rvc, tol);

                let (mut yc, mut yd) = (vec![0.0; len], poisoned(be, len));
                let (rmd, rvd) = (up(be, &rm), up(be, &rv));
                p.cpu.bn_fwd_eval(&g, &x, gc, bc, &rm, &rv, &mut yc).unwrap();
                be.bn_fwd_eval(&g, &xd, gdo, bdo, &rmd, &rvd, &mut yd).unwrap();
                // x up to 1000 normalised by running stats: outputs up to ~1e3.
                close(&format!("bn_fwd_eval {tag}"), &down(be, &yd), &yc, (2e-5, 2e-5));

                // Backward: all gradients, then dx alone (the others absent).
                let sdd = up(be, &sc);
                for (all, write) in [(true, Write::Add), (false, Write::Add), (true, Write::Set)] {
                    let (mut dxc, mut dxd) = grad_start(be, &dx0, write);
                    let (mut dgc, mut dgd) = (dg0.clone(), up(be, &dg0));
                    let (mut dbc, mut dbd) = (db0.clone(), up(be, &db0));
                    let (dgc_, dbc_) = (all.then_some(&mut dgc), all.then_some(&mut dbc));
                    p.cpu.bn_bwd(&g, &x, gc, &sc, &dy, Some((&mut dxc, write)), dgc_, dbc_).unwrap();
                    let (dgd_, dbd_) = (all.then_some(&mut dgd), all.then_some(&mut dbd));
                    be.bn_bwd(&g, &xd, gdo, &sdd, &dyd, Some((&mut dxd, write)), dgd_, dbd_).unwrap();
                    // dγ, dβ sum n·hw terms (up to 8192): looser absolute term.
                    let tag = format!("{tag} all={all} {write:?}");
                    close(&format!("bn_bwd dx {tag}"), &down(be, &dxd), &dxc, (1e-4, 1e-4));
                    close(&format!("bn_bwd dgamma {tag}"), &down(be, &dgd), &dgc, (2e-4, 1e-4));
                    close(&format!("bn_bwd dbeta {tag}"), &down(be, &dbd), &dbc, (2e-4, 1e-4));
                }
            }
        }
    }

    pub fn softmax<B: Backend<Elem = f32>>(be: &B) {
        let mut p = Pair::new(5);
        for &(rows, cols) in &[(14, 8), (1, 1), (3, 37), (300, 5)] {
            let x: Vec<f32> = p.rand(rows * cols).into_iter().map(|v| 4.0 * v).collect();
            let (dy, dx0) = (p.rand(rows * cols), p.rand(rows * cols));
            let (xd, dyd) = (up(be, &x), up(be, &dy));
            let (mut yc, mut yd) = (vec![0.0; rows * cols], poisoned(be, rows * cols));
            p.cpu.softmax_rows_fwd(rows, cols, &x, &mut yc).unwrap();
            be.softmax_rows_fwd(rows, cols, &xd, &mut yd).unwrap();
            // expf differs from the CPU's exp by an ulp or two.
            close(&format!("softmax_rows_fwd {rows}×{cols}"), &down(be, &yd), &yc, (1e-6, 1e-5));

            let yy = up(be, &yc);
            let (mut dc, mut dd) = (dx0.clone(), up(be, &dx0));
            p.cpu.softmax_rows_bwd(rows, cols, &yc, &dy, &mut dc).unwrap();
            be.softmax_rows_bwd(rows, cols, &yy, &dyd, &mut dd).unwrap();
            close(&format!("softmax_rows_bwd {rows}×{cols}"), &down(be, &dd), &dc, (1e-6, 1e-5));
        }
    }

    pub fn cross_entropy<B: Backend<Elem = f32>>(be: &B) {
        let mut p = Pair::new(6);
        for &(n, k) in &[(8, 10), (1, 3), (67, 10), (256, 10)] {
            let z: Vec<f32> = p.rand(n * k).into_iter().map(|v| 5.0 * v).collect();
            let labels: Vec<f32> = (0..n).map(|_| p.rng.random_range(0..k) as f32).collect();
            let dx0 = p.rand(n * k);
            let (zd, ld) = (up(be, &z), up(be, &labels));
            let (mut lc, mut ldv) = (vec![0.0; 1], poisoned(be, 1));
            let (mut pc, mut pd) = (vec![0.0; n * k], poisoned(be, n * k));
            p.cpu.cross_entropy_fwd(n, k, &z, &labels, &mut lc, &mut pc).unwrap();
            be.cross_entropy_fwd(n, k, &zd, &ld, &mut ldv, &mut pd).unwrap();
            // The GPU takes logsumexp − z in f64, the CPU −ln of the f32
            // probability: they differ by the f32 rounding of p (~1e-7 rel).
            close(&format!("cross_entropy_fwd loss {n}×{k}"), &down(be, &ldv), &lc, (1e-5, 1e-5));
            close(&format!("cross_entropy_fwd probs {n}×{k}"), &down(be, &pd), &pc, (1e-6, 1e-5));

            let dl = vec![0.8f32];
            let (pdd, dld) = (up(be, &pc), up(be, &dl));
            let (mut dc, mut dd) = (dx0.clone(), up(be, &dx0));
            p.cpu.cross_entropy_bwd(n, k, &pc, &labels, &dl, &mut dc).unwrap();
            be.cross_entropy_bwd(n, k, &pdd, &ld, &dld, &mut dd).unwrap();
            close(&format!("cross_entropy_bwd {n}×{k}"), &down(be, &dd), &dc, EW);
        }
    }

    pub fn layout<B: Backend<Elem = f32>>(be: &B) {
        let mut p = Pair::new(7);
        for s in [
            ChannelSlice { n: 2, hw: 9, c_part: 3, c_whole: 8, off: 2 },
            ChannelSlice { n: 3, hw: 1, c_part: 5, c_whole: 5, off: 0 },
            ChannelSlice { n: 4, hw: 64, c_part: 16, c_whole: 64, off: 48 },
        ] {
            let (pn, wn) = (s.n * s.c_part * s.hw, s.n * s.c_whole * s.hw);
            let (part, whole0) = (p.rand(pn), p.rand(wn));
            // The rest of `whole` must be left alone: it starts random, the same on both.
            for write in [Write::Set, Write::Add] {
                let (mut wc, mut wd) = (whole0.clone(), up(be, &whole0));
                p.cpu.channel_put(&s, &part, &mut wc, write).unwrap();
                be.channel_put(&s, &up(be, &part), &mut wd, write).unwrap();
                close(&format!("channel_put {s:?} {write:?}"), &down(be, &wd), &wc, EW);
            }

            for write in [Write::Add, Write::Set] {
                let (mut dc, mut dd) = grad_start(be, &part, write);
                p.cpu.channel_take(&s, &whole0, &mut dc, write).unwrap();
                be.channel_take(&s, &up(be, &whole0), &mut dd, write).unwrap();
                close(&format!("channel_take {s:?} {write:?}"), &down(be, &dd), &dc, EW);
            }
        }
        // A concatenation in one call: parts at channels 0–15, 16–47, 48–63
        // of 64 (and one of 10 parts, past one launch's 8), forward and
        // backward with mixed writes.
        for (n, hw, cs) in [(4usize, 64usize, vec![16usize, 32, 16]), (2, 9, vec![1, 2, 1, 3, 1, 1, 2, 1, 1, 2])] {
            let cw: usize = cs.iter().sum();
            let slices: Vec<ChannelSlice> = cs
                .iter()
                .scan(0, |off, &c| {
                    *off += c;
                    Some(ChannelSlice { n, hw, c_part: c, c_whole: cw, off: *off - c })
                })
                .collect();
            let parts: Vec<Vec<f32>> = slices.iter().map(|s| p.rand(s.n * s.c_part * s.hw)).collect();
            let partsd: Vec<B::Buf> = parts.iter().map(|v| up(be, v)).collect();
            let (mut wc, mut wd) = (vec![0.0; n * cw * hw], poisoned(be, n * cw * hw));
            let pc: Vec<_> = slices.iter().copied().zip(parts.iter()).collect();
            let pd: Vec<_> = slices.iter().copied().zip(partsd.iter()).collect();
            p.cpu.concat_fwd(&pc, &mut wc).unwrap();
            be.concat_fwd(&pd, &mut wd).unwrap();
            close(&format!("concat_fwd {cs:?}"), &down(be, &wd), &wc, EW);

            let dy = p.rand(n * cw * hw);
            let write = |t: usize| if t % 2 == 1 { Write::Set } else { Write::Add };
            let mut starts: Vec<(Vec<f32>, B::Buf)> =
                parts.iter().enumerate().map(|(t, v)| grad_start(be, v, write(t))).collect();
            let (mut gc, mut gd): (Vec<_>, Vec<_>) = starts
                .iter_mut()
                .zip(&slices)
                .enumerate()
                .map(|(t, ((c, d), s))| ((*s, c, write(t)), (*s, d, write(t))))
                .unzip();
            p.cpu.concat_bwd(&dy, &mut gc).unwrap();
            be.concat_bwd(&up(be, &dy), &mut gd).unwrap();
            drop((gc, gd));
            for (t, (c, d)) in starts.iter().enumerate() {
                close(&format!("concat_bwd {cs:?} part {t}"), &down(be, d), c, EW);
            }
        }
        for &(n, c, h, w) in &[(2, 3, 7, 6), (1, 1, 2, 2), (4, 8, 32, 32)] {
            let (big, small) = (n * c * h * w, n * c * (h - 1) * (w - 1));
            let (x, dy, dx0) = (p.rand(big), p.rand(small), p.rand(big));
            let (mut yc, mut yd) = (vec![0.0; small], poisoned(be, small));
            p.cpu.shift_fwd(n, c, h, w, &x, &mut yc).unwrap();
            be.shift_fwd(n, c, h, w, &up(be, &x), &mut yd).unwrap();
            close(&format!("shift_fwd {n},{c},{h},{w}"), &down(be, &yd), &yc, EW);

            let (mut dc, mut dd) = (dx0.clone(), up(be, &dx0));
            p.cpu.shift_bwd(n, c, h, w, &dy, &mut dc).unwrap();
            be.shift_bwd(n, c, h, w, &up(be, &dy), &mut dd).unwrap();
            close(&format!("shift_bwd {n},{c},{h},{w}"), &down(be, &dd), &dc, EW);
        }
        for &(nc, hw) in &[(6, 49), (300, 1), (5, 1000), (1024, 64)] {
            let (x, dy, dx0) = (p.rand(nc * hw), p.rand(nc), p.rand(nc * hw));
            let (mut yc, mut yd) = (vec![0.0; nc], poisoned(be, nc));
            p.cpu.gap_fwd(nc, hw, &x, &mut yc).unwrap();
            be.gap_fwd(nc, hw, &up(be, &x), &mut yd).unwrap();
            // Means of up to 1000 terms summed in another order.
            close(&format!("gap_fwd {nc}×{hw}"), &down(be, &yd), &yc, (1e-6, 1e-5));

            let (mut dc, mut dd) = (dx0.clone(), up(be, &dx0));
            p.cpu.gap_bwd(nc, hw, &dy, &mut dc).unwrap();
            be.gap_bwd(nc, hw, &up(be, &dy), &mut dd).unwrap();
            close(&format!("gap_bwd {nc}×{hw}"), &down(be, &dd), &dc, EW);
        }
    }

    /// A factor per channel (the width search's mask mix), `cm` factors
    /// shared by blocks of channels (networks side by side).
    pub fn channel_scale<B: Backend<Elem = f32>>(be: &B) {
        let mut p = Pair::new(11);
        for (n, c, hw, cm) in [(3, 12, 7, 4), (64, 32, 64, 16), (2, 5, 1, 5), (1, 6, 100_003, 3)] {
            let g = ScaleGeom { n, c, hw, cm };
            let len = n * c * hw;
            let (x, m, dy, d0, dm0) = (p.rand(len), p.rand(cm), p.rand(len), p.rand(len), p.rand(cm));
            let (xd, md, dyd) = (up(be, &x), up(be, &m), up(be, &dy));
            let (mut yc, mut yd) = (vec![f32::NAN; len], poisoned(be, len));
            p.cpu.channel_scale_fwd(&g, &x, &m, &mut yc).unwrap();
            be.channel_scale_fwd(&g, &xd, &md, &mut yd).unwrap();
            close(&format!("channel_scale_fwd {g:?}"), &down(be, &yd), &yc, EW);
            for write in [Write::Add, Write::Set] {
                let (mut dc, mut dd) = grad_start(be, &d0, write);
                let (mut gc, mut gd) = (dm0.clone(), up(be, &dm0));
                p.cpu.channel_scale_bwd(&g, &x, &m, &dy, Some((&mut dc, write)), Some(&mut gc)).unwrap();
                be.channel_scale_bwd(&g, &xd, &md, &dyd, Some((&mut dd, write)), Some(&mut gd)).unwrap();
                close(&format!("channel_scale_bwd dx {g:?} {write:?}"), &down(be, &dd), &dc, EW);
                // Sums of up to 10^5 products, in f64 on both.
                close(&format!("channel_scale_bwd dm {g:?}"), &down(be, &gd), &gc, (1e-5, 1e-5));
            }
        }
    }

    pub fn linear<B: Backend<Elem = f32>>(be: &B) {
        let mut p = Pair::new(8);
        // The last two: two groups (RARTS's classifiers side by side).
        for &(n, i, o, g) in
            &[(4, 7, 3, 1), (64, 256, 10, 1), (1, 1, 1, 1), (33, 65, 17, 1), (64, 512, 20, 2), (5, 14, 6, 2)]
        {
            let (x, w, b, dy) = (p.rand(n * i), p.rand(o * i / g), p.rand(o), p.rand(n * o));
            let (dx0, dw0, db0) = (p.rand(n * i), p.rand(o * i / g), p.rand(o));
            let (xd, wd, bd, dyd) = (up(be, &x), up(be, &w), up(be, &b), up(be, &dy));
            // Sums of up to 256 products of O(1) values.
            let tol = (2e-5, 1e-5);
            for bias in [true, false] {
                let (mut yc, mut yd) = (vec![0.0; n * o], poisoned(be, n * o));
                p.cpu.linear_fwd(n, i, o, g, &x, &w, bias.then_some(&b), &mut yc).unwrap();
                be.linear_fwd(n, i, o, g, &xd, &wd, bias.then_some(&bd), &mut yd).unwrap();
                close(&format!("linear_fwd {n},{i},{o}/{g} bias={bias}"), &down(be, &yd), &yc, tol);
            }
            for all in [true, false] {
                let (mut dxc, mut dxd) = (dx0.clone(), up(be, &dx0));
                let (mut dwc, mut dwd) = (dw0.clone(), up(be, &dw0));
                let (mut dbc, mut dbd) = (db0.clone(), up(be, &db0));
                p.cpu
                    .linear_bwd(
                        n,
                        i,
                        o,
                        g,
                        &x,
                        &w,
                        &dy,
                        all.then_some(&mut dxc),
                        Some(&mut dwc),
                        all.then_some(&mut dbc),
                    )
                    .unwrap();
                be.linear_bwd(
                    n,
                    i,
                    o,
                    g,
                    &xd,
                    &wd,
                    &dyd,
                    all.then_some(&mut dxd),
                    Some(&mut dwd),
                    all.then_some(&mut dbd),
                )
                .unwrap();
                close(&format!("linear_bwd dx {n},{i},{o}/{g}"), &down(be, &dxd), &dxc, tol);
                close(&format!("linear_bwd dw {n},{i},{o}/{g}"), &down(be, &dwd), &dwc, tol);
                close(&format!("linear_bwd db {n},{i},{o}/{g}"), &down(be, &dbd), &dbc, tol);
            }
        }
    }

    /// The list kernels over lists of tensors of mixed lengths (one empty),
    /// so that the device's tensor tables and their lookup are exercised.
    pub fn optimizers<B: Backend<Elem = f32>>(be: &B) {
        let mut p = Pair::new(9);
        let lens = [1usize, 1000, 0, 100_003, 37];
        let mut draw = |sq: bool| -> Vec<Vec<f32>> {
            lens.iter().map(|&n| p.rand(n).into_iter().map(|v| if sq { v * v } else { v }).collect()).collect()
        };
        let (w0, g, m0, v0) = (draw(false), draw(false), draw(false), draw(true));
        let cpu = Cpu::<f32>::new();
        let ups = |v: &[Vec<f32>]| v.iter().map(|x| up(be, x)).collect::<Vec<_>>();
        let downs = |v: &[B::Buf]| v.iter().flat_map(|b| down(be, b)).collect::<Vec<f32>>();
        let flat = |v: &[Vec<f32>]| v.iter().flatten().copied().collect::<Vec<f32>>();
        fn r<T>(v: &[T]) -> Vec<&T> {
            v.iter().collect()
        }
        fn rm<T>(v: &mut [T]) -> Vec<&mut T> {
            v.iter_mut().collect()
        }
        let rd = r::<B::Buf>;
        let gd = ups(&g);
        // Step scalars: lr 0.1, clip factor 0.7, Adam lr 3e-4 and t, ξ 0.05, one output slot.
        let sc0 = [0.1f32, 0.7, 3e-4, 1.0, 0.05, 0.0, 0.0, 0.0];
        // One update of O(1) values; FMA contraction may change an ulp.
        let tol = (1e-6, 1e-5);

        for nesterov in [false, true] {
            let k = SgdKernel { momentum: 0.9, weight_decay: 3e-4, nesterov, lr: 0, scale: 1 };
            let (mut pc, mut pd) = (w0.clone(), ups(&w0));
            let (mut bc, mut bd) = (m0.clone(), ups(&m0));
            cpu.sgd_step(&k, &sc0.to_vec(), &mut rm(&mut pc), &r(&g), &mut rm(&mut bc), Part::WHOLE).unwrap();
            be.sgd_step(&k, &up(be, &sc0), &mut rm(&mut pd), &rd(&gd), &mut rm(&mut bd), Part::WHOLE).unwrap();
            close(&format!("sgd_step p nesterov={nesterov}"), &downs(&pd), &flat(&pc), tol);
            close(&format!("sgd_step buf nesterov={nesterov}"), &downs(&bd), &flat(&bc), tol);
        }
        let k = SgdKernel { momentum: 0.9, weight_decay: 3e-4, nesterov: false, lr: 0, scale: 1 };

        // Parts of paired tensors (two networks' copies one after the other,
        // as RARTS records w and y side by side): the step on y's copy, the
        // coupling of w's gradient to y, the norm of y's gradient.
        let pair = |a: &[Vec<f32>], b: &[Vec<f32>]| {
            a.iter().zip(b).map(|(a, b)| [&a[..], &b[..]].concat()).collect::<Vec<_>>()
        };
        let (w2, g2) = (pair(&w0, &g), pair(&g, &m0));
        let (wpart, ypart) = (Part::net(0, 2), Part::net(1, 2));
        let (mut pc, mut pd) = (w2.clone(), ups(&w2));
        let (mut bc, mut bd) = (m0.clone(), ups(&m0));
        let g2d = ups(&g2);
        cpu.sgd_step(&k, &sc0.to_vec(), &mut rm(&mut pc), &r(&g2), &mut rm(&mut bc), ypart).unwrap();
        be.sgd_step(&k, &up(be, &sc0), &mut rm(&mut pd), &rd(&g2d), &mut rm(&mut bd), ypart).unwrap();
        close("sgd_step p (y's part)", &downs(&pd), &flat(&pc), tol);
        close("sgd_step buf (y's part)", &downs(&bd), &flat(&bc), tol);
        let (mut gc, mut gdd) = (g2.clone(), ups(&g2));
        let w2d = ups(&w2);
        cpu.couple(0.5, &r(&w2), &r(&w2), &mut rm(&mut gc), wpart, ypart).unwrap();
        be.couple(0.5, &rd(&w2d), &rd(&w2d), &mut rm(&mut gdd), wpart, ypart).unwrap();
        close("couple (w to y, parts)", &downs(&gdd), &flat(&gc), EW);
        let mut sc = sc0.to_vec();
        let mut scd = up(be, &sc0);
        cpu.norm(&r(&g2), ypart, &mut sc, 7, NormThen::Clip { max: Some(5.0), scale: 5 }).unwrap();
        be.norm(&rd(&g2d), ypart, &mut scd, 7, NormThen::Clip { max: Some(5.0), scale: 5 }).unwrap();
        close("norm (y's part)", &down(be, &scd), &sc, (1e-7, 1e-6));

        for t in [1.0, 7.0] {
            let mut sc = sc0;
            sc[3] = t;
            let k = AdamKernel { beta1: 0.5, beta2: 0.999, eps: 1e-8, weight_decay: 1e-3, lr: 2, t: 3 };
            let (mut pc, mut pd) = (w0.clone(), ups(&w0));
            let (mut mc, mut md) = (m0.clone(), ups(&m0));
            let (mut vc, mut vd) = (v0.clone(), ups(&v0));
            cpu.adam_step(&k, &sc.to_vec(), &mut rm(&mut pc), &r(&g), &mut rm(&mut mc), &mut rm(&mut vc)).unwrap();
            be.adam_step(&k, &up(be, &sc), &mut rm(&mut pd), &rd(&gd), &mut rm(&mut md), &mut rm(&mut vd)).unwrap();
            close(&format!("adam_step p t={t}"), &downs(&pd), &flat(&pc), tol);
            close(&format!("adam_step m t={t}"), &downs(&md), &flat(&mc), tol);
            close(&format!("adam_step v t={t}"), &downs(&vd), &flat(&vc), tol);
        }

        let (mut gc, mut gdd) = (g.clone(), ups(&g));
        let (wd, md) = (ups(&w0), ups(&m0));
        cpu.couple(0.5, &r(&w0), &r(&m0), &mut rm(&mut gc), Part::WHOLE, Part::WHOLE).unwrap();
        be.couple(0.5, &rd(&wd), &rd(&md), &mut rm(&mut gdd), Part::WHOLE, Part::WHOLE).unwrap();
        close("couple", &downs(&gdd), &flat(&gc), EW);

        // The norm with each derivation; the f64 sums differ only in order.
        for then in [
            NormThen::Nothing,
            NormThen::Clip { max: Some(5.0), scale: 5 },
            NormThen::Clip { max: None, scale: 5 },
            NormThen::Perturb { xi: 4, eps: 5, c: 6 },
        ] {
            let mut sc = sc0.to_vec();
            let mut scd = up(be, &sc0);
            cpu.norm(&r(&g), Part::WHOLE, &mut sc, 7, then).unwrap();
            be.norm(&rd(&gd), Part::WHOLE, &mut scd, 7, then).unwrap();
            close(&format!("norm {then:?}"), &down(be, &scd), &sc, (1e-7, 1e-6));
        }

        // Linear combinations, overwriting and adding, coefficients from the scalars.
        for (write, terms) in [(Write::Set, 1usize), (Write::Add, 2), (Write::Set, 3)] {
            let coefs = [Coef::k(1.5), Coef::times(-2.0, 4), Coef::times(0.5, 1)];
            let xs = [&w0, &g, &m0];
            let xds = [&wd, &gd, &md];
            let tc: Vec<(Coef, Vec<&Vec<f32>>)> = (0..terms).map(|j| (coefs[j], r(xs[j]))).collect();
            let td: Vec<(Coef, Vec<&B::Buf>)> = (0..terms).map(|j| (coefs[j], rd(xds[j]))).collect();
            let tc: Vec<(Coef, &[&Vec<f32>])> = tc.iter().map(|(c, x)| (*c, &x[..])).collect();
            let td: Vec<(Coef, &[&B::Buf])> = td.iter().map(|(c, x)| (*c, &x[..])).collect();
            let (mut oc, mut od) = (v0.clone(), ups(&v0));
            cpu.lincomb(&sc0.to_vec(), &tc, &mut rm(&mut oc), write).unwrap();
            be.lincomb(&up(be, &sc0), &td, &mut rm(&mut od), write).unwrap();
            close(&format!("lincomb {terms} terms {write:?}"), &downs(&od), &flat(&oc), tol);
        }

        let (mut oc, mut od) = (v0.clone(), ups(&v0));
        cpu.copy_list(&r(&w0), &mut rm(&mut oc)).unwrap();
        be.copy_list(&rd(&wd), &mut rm(&mut od)).unwrap();
        close("copy_list", &downs(&od), &flat(&oc), (0.0, 0.0));

        // A loss into the scalars; the accuracy of a batch of logits.
        let (mut sc, mut scd) = (sc0.to_vec(), up(be, &sc0));
        cpu.copy_elem(&w0[1], 999, &mut sc, 6).unwrap();
        be.copy_elem(&wd[1], 999, &mut scd, 6).unwrap();
        let (n, k) = (37, 10);
        let z = p.rand(n * k);
        let labels: Vec<f32> = (0..n).map(|i| ((i * 7) % k) as f32).collect();
        // Some rows get their label's logit raised so that hits occur.
        let mut z = z;
        for i in (0..n).step_by(3) {
            z[i * k + labels[i] as usize] = 5.0;
        }
        cpu.accuracy(n, k, &z, &labels, &mut sc, 7).unwrap();
        be.accuracy(n, k, &up(be, &z), &up(be, &labels), &mut scd, 7).unwrap();
        close("copy_elem and accuracy", &down(be, &scd), &sc, (0.0, 0.0));
    }

    pub fn memory<B: Backend<Elem = f32>>(be: &B) {
        let mut p = Pair::new(10);
        for n in [0, 1, 12_345] {
            let b = be.alloc(n).unwrap();
            assert_eq!(be.len(&b), n);
            assert!(down(be, &b).iter().all(|&v| v == 0.0), "alloc must zero-fill");
            let v = p.rand(n);
            let d = up(be, &v);
            assert_eq!(down(be, &d), v, "upload/download round trip n={n}");
        }
        let mut b = be.alloc(3).unwrap();
        assert!(be.upload(&mut b, &[1.0, 2.0]).is_err(), "a length mismatch must be an error");
        be.synchronize().unwrap();
    }
}

macro_rules! parity_tests {
    ($($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let Some(cu) = gpu() else { return };
                cases::$case(&cu);
            }
        )*

        /// The same cases with the CPU backend in place of CUDA: they must
        /// pass trivially, which checks the harness (poisoning, shapes,
        /// argument order) where there is no GPU.
        #[test]
        fn harness_self_check_on_cpu() {
            let cpu = Cpu::<f32>::new();
            $( cases::$case(&cpu); )*
        }
    };
}

parity_tests!(
    memory,
    elementwise,
    channel_scale,
    conv,
    chain,
    pool,
    batch_norm,
    softmax,
    cross_entropy,
    layout,
    linear,
    optimizers
);

/// A few steps of the DARTS supernet search (every algorithm) from the same
/// seed on the CPU and on the backend under test: the losses must agree.
/// The first step differs only by the order of sums: 1e-4 relative. Each
/// step feeds the updated weights into the next, and Adam's first updates
/// of α are nearly ±rate whatever a component's size, so later steps turn
/// the sign of a tiny α gradient into visible differences: reversing the
/// order of one sum (the 1×1 filter gradient's inner loop) alone moved
/// DARTS 1st order's third gradient norm by 1.06 % on the emulated device.
/// Later steps get 2e-2 for that; a wrong kernel moves the first step.
fn search_parity<B: Backend<Elem = f32>>(make: impl Fn() -> B, algos: &[rarts::search::algo::Algo], steps: usize) {
    use rarts::search::prepare::prepare;

    for &algo in algos {
        let cfg = common::tiny_search(algo, steps);
        let mut on_cpu = prepare(Cpu::<f32>::new(), &cfg).expect("prepare on the CPU");
        let mut other = prepare(make(), &cfg).expect("prepare on the backend under test");
        assert_eq!(on_cpu.weights, other.weights);
        for step in 0..steps {
            let a = on_cpu.step().expect("CPU step");
            let b = other.step().expect("step on the backend under test");
            for (what, x, y) in [
                ("loss_train", a.loss_train, b.loss_train),
                ("loss_val", a.loss_val, b.loss_val),
                ("grad_norm", a.grad_norm, b.grad_norm),
            ] {
                let rtol = if step == 0 { 1e-4 } else { 2e-2 };
                assert!(
                    y.is_finite() && (x - y).abs() <= 1e-4 + rtol * x.abs(),
                    "{} step {step}: {what} cpu {x}, {} {y}",
                    algo.name(),
                    other.search.ex.be.name()
                );
            }
            eprintln!("{} step {step}: loss_train cpu {} other {}", algo.name(), a.loss_train, b.loss_train);
        }
    }
}

#[test]
fn search_steps_match_the_cpu() {
    if gpu().is_none() {
        return;
    }
    let all = [Algo::Darts1, Algo::Darts2, Algo::Rarts];
    search_parity(|| Cuda::new(0).expect("the device opened a moment ago"), &all, 3);
}

/// A step captured as a CUDA graph and replayed gives what the same step
/// run eagerly gives, bit for bit: losses, norms, every weight and every α
/// after three steps (the first eager, the second captured and replayed,
/// the third replayed),
/// for each algorithm. A replay that reads a table or buffer freed since the
/// capture, or misses an upload, differs.
#[test]
fn replayed_steps_equal_eager_ones_bit_for_bit() {
    use rarts::search::prepare::prepare;
    if gpu().is_none() {
        return;
    }
    let bits = |v: Vec<f64>| v.into_iter().map(f64::to_bits).collect::<Vec<_>>();
    for algo in [Algo::Darts1, Algo::Darts2, Algo::Rarts] {
        let cfg = common::tiny_search(algo, 3);
        let mut graph_cfg = cfg.clone();
        graph_cfg.step.cuda_graph = true;
        let mut eager = prepare(Cuda::new(0).expect("the device opened a moment ago"), &cfg).expect("prepare");
        let mut graph = prepare(Cuda::new(0).expect("the device opened a moment ago"), &graph_cfg).expect("prepare");
        for step in 0..3 {
            let (a, b) = (eager.step().expect("eager step"), graph.step().expect("graph step"));
            for (what, x, y) in [
                ("loss_train", a.loss_train, b.loss_train),
                ("loss_val", a.loss_val, b.loss_val),
                ("grad_norm", a.grad_norm, b.grad_norm),
            ] {
                assert_eq!(x.to_bits(), y.to_bits(), "{} step {step}: {what} eager {x}, replayed {y}", algo.name());
            }
        }
        let prob = &eager.search.prob;
        for (i, &n) in prob.w.iter().chain(&prob.y).chain(&prob.alpha).enumerate() {
            let (x, y) = (eager.search.ex.get(n).expect("read"), graph.search.ex.get(n).expect("read"));
            assert!(
                bits(x) == bits(y),
                "{}: parameter {i} differs between the eager and the replayed steps",
                algo.name()
            );
        }
    }
}

/// While a step is being captured as a graph nothing may allocate or copy
/// from the host (the graph would replay a copy from memory freed since):
/// an allocation, an upload and an optimizer's tensor-list table not made
/// before the capture are each an error naming what was refused, and the
/// same step's table made before the capture is served from the cache.
#[test]
fn a_capture_refuses_allocations_uploads_and_new_tables() {
    let Some(cu) = gpu() else { return };
    let k = SgdKernel { momentum: 0.9, weight_decay: 3e-4, nesterov: false, lr: 0, scale: 1 };
    let sc = up(&cu, &[0.1, 1.0]);
    let (mut p, g, mut m) = (up(&cu, &[1.0; 6]), up(&cu, &[0.5; 6]), up(&cu, &[0.0; 6]));
    let (mut p2, g2, mut m2) = (up(&cu, &[1.0; 5]), up(&cu, &[0.5; 5]), up(&cu, &[0.0; 5]));
    cu.sgd_step(&k, &sc, &mut [&mut p], &[&g], &mut [&mut m], Part::WHOLE).unwrap();
    cu.begin_capture().unwrap();
    let refused = |e: rarts::error::Error, what: &str| {
        let e = e.to_string();
        assert!(e.contains(what) && e.contains("captured"), "{e}");
    };
    refused(cu.alloc(4).err().expect("an allocation while capturing"), "allocating 4 floats");
    refused(cu.upload(&mut p, &[2.0; 6]).unwrap_err(), "a copy from the host");
    refused(cu.sgd_step(&k, &sc, &mut [&mut p2], &[&g2], &mut [&mut m2], Part::WHOLE).unwrap_err(), "table");
    cu.sgd_step(&k, &sc, &mut [&mut p], &[&g], &mut [&mut m], Part::WHOLE).unwrap();
    // The refused calls left the capture unusable on a real driver too; it
    // only has to end.
    let _ = cu.end_capture();
}

/// A launcher's argument list is checked against its kernel's PTX
/// parameters: a missing argument or a params struct of another size is
/// refused with the kernel's name, before anything is launched.
#[test]
fn argument_lists_that_differ_from_the_ptx_are_refused() {
    let Some(cu) = gpu() else { return };
    // fill_f32(float* y, FillParams args): an address and a 16-byte struct.
    cu.check_params("fill_f32", &[8, 16]).unwrap();
    for wrong in [&[8, 8][..], &[8], &[8, 16, 4]] {
        let e = cu.check_params("fill_f32", wrong).unwrap_err().to_string();
        assert!(e.contains("fill_f32") && e.contains("PTX"), "{e}");
    }
    assert!(cu.check_params("no_such_kernel", &[8]).is_err());
}

/// The pointwise filter gradient sums its splits in a fixed order: two runs
/// on the device agree bit for bit (float atomics would not).
#[test]
fn pointwise_filter_gradient_is_deterministic() {
    let Some(cu) = gpu() else { return };
    let o = ConvGeom::out_len(32, 1, 1, 0, 1);
    let g = ConvGeom {
        n: 16,
        cin: 24,
        h: 32,
        w: 32,
        cout: 40,
        oh: o,
        ow: o,
        k: 1,
        stride: 1,
        pad: 0,
        dil: 1,
        groups: 1,
        relu_in: true,
    };
    let mut rng = StdRng::seed_from_u64(11);
    let mut fresh = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
    let (x, dy) = (fresh(g.x_shape().numel()), fresh(g.y_shape().numel()));
    let up = |v: &[f32]| {
        let mut b = cu.alloc(v.len()).unwrap();
        cu.upload(&mut b, v).unwrap();
        b
    };
    let (xd, dyd) = (up(&x), up(&dy));
    let run = || {
        let mut dw = cu.alloc(g.w_shape().numel()).unwrap();
        cu.conv2d_bwd_filter(&g, &xd, &dyd, &mut dw, Write::Set).unwrap();
        cu.download(&dw).unwrap()
    };
    let (a, b) = (run(), run());
    assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()), "two runs differ");
}

/// The launches the CUDA backend really makes in search steps equal the
/// ones its methods declare (what `rarts profile` reports on any device).
#[test]
fn declared_launches_match_the_real_ones() {
    use rarts::backend::counts;
    use rarts::search::prepare::prepare;
    if gpu().is_none() {
        return;
    }
    for algo in [Algo::Darts1, Algo::Darts2, Algo::Rarts] {
        let cfg = common::tiny_search(algo, 2);
        let mut p = prepare(Cuda::new(0).expect("the device opened a moment ago"), &cfg).expect("prepare");
        let (c0, l0) = (counts::now(), counts::cuda_launches());
        p.step().expect("step");
        let (c, l) = (counts::now() - c0, counts::cuda_launches() - l0);
        assert_eq!(c.launches, l, "{}: declared {c:?}, the CUDA backend launched {l}", algo.name());
    }
}

/// The end-to-end harness with the CPU on both sides (one algorithm, two
/// steps, to stay quick): checks the configuration and that the search is
/// reproducible from its seed.
#[test]
fn search_harness_self_check_on_cpu() {
    search_parity(Cpu::<f32>::new, &[Algo::Darts1], 2);
}

/// The solvable model on `make()`'s backend reaches the closed-form fixed
/// point of every algorithm. The kernels are f32, so the tolerance is 1e-5
/// rather than the 1e-9 the f64 CPU run reaches.
fn toy_fixed_points<B: Backend<Elem = f32>>(make: impl Fn() -> B) {
    use rarts::search::toy::{ToyConfig, closed_form, solve};
    for algo in [Algo::Darts1, Algo::Darts2, Algo::Rarts] {
        for (c, lambda, beta) in [(2.0, 1.0, 1.0), (0.5, 2.0, 0.5)] {
            let cfg = ToyConfig {
                algo,
                schedule: Schedule::Fused,
                c,
                lambda,
                beta,
                xi: 0.1,
                lr: 0.05,
                max_steps: 20_000,
                tol: 1e-12,
            };
            let (alpha, steps) = solve(make(), &cfg).expect("toy run");
            let want = closed_form(&cfg);
            assert!(
                (alpha - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "{} c={c} λ={lambda} β={beta}: α = {alpha} after {steps} steps, closed form {want}",
                algo.name()
            );
        }
    }
}

#[test]
fn toy_model_reaches_its_fixed_point_on_the_gpu() {
    if gpu().is_none() {
        return;
    }
    toy_fixed_points(|| Cuda::new(0).expect("the device opened a moment ago"));
}

/// The same check in f32 on the CPU: shows the f32 tolerance is reachable.
#[test]
fn toy_harness_self_check_in_f32_on_cpu() {
    toy_fixed_points(Cpu::<f32>::new);
}

/// Without a GPU, this whole file again on the emulated device
/// (`scripts/emulated-device.sh`: a stand-in libcuda that runs each launch's
/// kernel on the CPU): every launcher's grid, block, scratch sizes and
/// argument list as the Rust code sends them, each argument list checked
/// against the kernel's PTX, every pointer against the live allocations,
/// and with the flat kernels' grid capped at 3 blocks so that every
/// grid-stride loop goes round more than once.
#[test]
fn every_test_here_on_the_emulated_device() {
    use std::process::Command;
    if std::env::var_os(EMULATED).is_some() {
        return; // the run on the emulated device itself
    }
    if rarts::backend::cuda::cuda_available() {
        common::skipped("a real CUDA device is present; the tests above ran on it");
        return;
    }
    if Command::new("g++").arg("--version").output().is_err() {
        common::skipped("g++ is not installed (the emulated device is built with it)");
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("emulated-device");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/emulated-device.sh");
    let built = Command::new("bash").arg(script).arg(&dir).output().expect("running scripts/emulated-device.sh");
    assert!(built.status.success(), "building the emulated device failed:\n{}", String::from_utf8_lossy(&built.stderr));
    let path = match std::env::var("LD_LIBRARY_PATH") {
        Ok(p) if !p.is_empty() => format!("{}:{p}", dir.display()),
        _ => dir.display().to_string(),
    };
    let out = Command::new(std::env::current_exe().expect("this test binary"))
        .args(["--test-threads=1", "--skip", "self_check"])
        .env("LD_LIBRARY_PATH", path)
        .env(EMULATED, "1")
        .env("RARTS_CUDA_GRID_CAP", "3")
        .output()
        .expect("running this file's tests on the emulated device");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "on the emulated device:\n{text}");
    assert!(!text.contains("skipped:"), "a test skipped on the emulated device:\n{text}");
    let summary = text.lines().find(|l| l.starts_with("test result:")).unwrap_or("no summary");
    eprintln!("on the emulated device: {summary}");
}
