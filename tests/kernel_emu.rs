//! Every CUDA kernel, compiled for the host with the CPU stand-in of
//! `scripts/kernel-emu/shim.h`, checked on fresh random inputs
//! (`scripts/kernel-emu.sh`): with shared memory poisoned before each block,
//! in order and with the blocks and threads shuffled (the same results bit
//! for bit), under ASan+UBSan and under TSan, and the ticket kernels' fences
//! checked. The convolution kernels' outputs come back as files and are held
//! here to `src/ops/conv/reference.rs`, the one place the convolution's
//! semantics are written. With `tests/gpu_parity.rs` on the emulated
//! device, how the kernels are tested on machines without a GPU. Needs g++
//! (C++20, x86-64) and python3.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use rarts::device::Write;
use rarts::ops::conv::ConvGeom;
use rarts::ops::conv::reference;

/// One dumped case: its geometry and its named arrays.
struct Case {
    geom: Vec<i32>,
    arrays: HashMap<String, Vec<f32>>,
}

/// Reads a file the emulator wrote (see `dump` in scripts/kernel-emu/emu.cpp).
fn read_case(path: &Path) -> Case {
    let b = std::fs::read(path).unwrap();
    let mut at = 0usize;
    let mut take = |n: usize| {
        let s = &b[at..at + n];
        at += n;
        s
    };
    let u32_of = |s: &[u8]| u32::from_le_bytes(s.try_into().unwrap());
    let ng = u32_of(take(4)) as usize;
    let geom = (0..ng).map(|_| i32::from_le_bytes(take(4).try_into().unwrap())).collect();
    let na = u32_of(take(4)) as usize;
    let mut arrays = HashMap::new();
    for _ in 0..na {
        let l = u32_of(take(4)) as usize;
        let name = String::from_utf8(take(l).to_vec()).unwrap();
        let count = u64::from_le_bytes(take(8).try_into().unwrap()) as usize;
        let v = take(4 * count).chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        arrays.insert(name, v);
    }
    Case { geom, arrays }
}

fn close(what: &str, got: &[f32], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let e = (g as f64 - w).abs();
        assert!(e <= atol + rtol * w.abs(), "{what} [{i}]: got {g}, want {w}");
    }
}

/// A convolution case's outputs against the reference, in f64 from the
/// same f32 inputs: forward, the data gradient added and overwriting, the
/// filter gradient added and overwriting, and (depthwise) both gradients
/// from the one launch that computes them together.
fn check_conv(case: &Case, name: &str) {
    let [n, cin, h, w, cout, k, stride, pad, dil, groups, relu] = case.geom[..] else {
        panic!("{name}: expected 11 numbers of geometry, got {:?}", case.geom)
    };
    let u = |v: i32| v as usize;
    let (oh, ow) = (
        ConvGeom::out_len(u(h), u(k), u(stride), u(pad), u(dil)),
        ConvGeom::out_len(u(w), u(k), u(stride), u(pad), u(dil)),
    );
    let g = ConvGeom {
        n: u(n),
        cin: u(cin),
        h: u(h),
        w: u(w),
        cout: u(cout),
        oh,
        ow,
        k: u(k),
        stride: u(stride),
        pad: u(pad),
        dil: u(dil),
        groups: u(groups),
        relu_in: relu != 0,
    };
    let a = |key: &str| -> Vec<f64> { case.arrays[key].iter().map(|&v| v as f64).collect() };
    let (x, wt, dy, dx0, dw0) = (a("x"), a("w"), a("dy"), a("dx0"), a("dw0"));
    let what = format!("{name} {g:?}");
    let mut y = vec![0.0; g.y_shape().numel()];
    reference::conv2d_fwd(&g, &x, &wt, &mut y);
    close(&format!("{what} fwd"), &case.arrays["y"], &y, 1e-5, 1e-5);
    let mut dx_set = vec![f64::NAN; x.len()];
    reference::conv2d_bwd_data(&g, &x, &wt, &dy, &mut dx_set, Write::Set);
    let dx_add: Vec<f64> = dx0.iter().zip(&dx_set).map(|(a, b)| a + b).collect();
    close(&format!("{what} bwd_data"), &case.arrays["dx_add"], &dx_add, 1e-5, 1e-5);
    close(&format!("{what} bwd_data set"), &case.arrays["dx_set"], &dx_set, 1e-5, 1e-5);
    let mut dw_set = vec![0.0; wt.len()];
    reference::conv2d_bwd_filter(&g, &x, &dy, &mut dw_set);
    let dw_add: Vec<f64> = dw0.iter().zip(&dw_set).map(|(a, b)| a + b).collect();
    close(&format!("{what} bwd_filter"), &case.arrays["dw_add"], &dw_add, 1e-4, 1e-4);
    close(&format!("{what} bwd_filter set"), &case.arrays["dw_set"], &dw_set, 1e-4, 1e-4);
    if !case.arrays["dx_add_fused"].is_empty() {
        close(&format!("{what} dwconv_bwd dx"), &case.arrays["dx_add_fused"], &dx_add, 1e-5, 1e-5);
        close(&format!("{what} dwconv_bwd dw set"), &case.arrays["dw_set_fused"], &dw_set, 1e-4, 1e-4);
    }
}

#[test]
fn emulated_cuda_kernels_match_their_references() {
    if Command::new("g++").arg("--version").output().is_err() {
        common::skipped("g++ is not installed (the kernel emulation compiles with it)");
        return;
    }
    let dump = std::env::temp_dir().join(format!("rarts-kernel-emu-dump-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dump);
    std::fs::create_dir_all(&dump).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kernel-emu.sh");
    let out =
        Command::new("bash").arg(script).env("TMPDIR", std::env::temp_dir()).env("EMU_DUMP", &dump).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "kernel emulation failed:\n{text}");
    assert!(text.contains("(0 failures)"), "{text}");
    assert!(text.contains("blocks shuffled: the same digest as in order"), "{text}");
    assert!(text.contains("fences: every ticket kernel fences"), "{text}");
    let mut files: Vec<_> = std::fs::read_dir(&dump).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let convs: Vec<_> =
        files.iter().filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("conv-")).collect();
    // Every geometry emu.cpp runs: dense, pointwise (strided, grouped, wide),
    // depthwise (dilated, strided, 5×5).
    let ran: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("conv cases "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count of convolution cases in:\n{text}"));
    assert!(ran >= 10 && convs.len() == ran, "{} convolution cases dumped, {ran} run", convs.len());
    let (mut pointwise, mut depthwise) = (0, 0);
    for p in &convs {
        let case = read_case(p);
        check_conv(&case, &p.file_name().unwrap().to_string_lossy());
        let (cin, cout, k, groups) = (case.geom[1], case.geom[4], case.geom[5], case.geom[9]);
        pointwise += usize::from(k == 1);
        depthwise += usize::from(groups == cin && cin == cout && k > 1);
    }
    assert!(pointwise > 0 && depthwise > 0, "{pointwise} pointwise, {depthwise} depthwise cases");
    let _ = std::fs::remove_dir_all(&dump);
}
