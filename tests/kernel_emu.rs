//! Every CUDA kernel, compiled for the host with the CPU stand-in of
//! `scripts/kernel-emu/shim.h`, checked against direct references on fresh
//! random inputs (`scripts/kernel-emu.sh`): with shared memory poisoned
//! before each block, in order and with the blocks and threads shuffled
//! (the same results bit for bit), under ASan+UBSan and under TSan, and the
//! ticket kernels' fences checked. With `tests/gpu_parity.rs` on the
//! emulated device, how the kernels are tested on machines without a GPU.
//! Needs g++ (C++20, x86-64) and python3.

mod common;

use std::process::Command;

#[test]
fn emulated_cuda_kernels_match_their_references() {
    if Command::new("g++").arg("--version").output().is_err() {
        common::skipped("g++ is not installed (the kernel emulation compiles with it)");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kernel-emu.sh");
    let out = Command::new("bash").arg(script).env("TMPDIR", std::env::temp_dir()).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "kernel emulation failed:\n{text}");
    assert!(text.contains("(0 failures)"), "{text}");
    assert!(text.contains("blocks shuffled: the same digest as in order"), "{text}");
    assert!(text.contains("fences: every ticket kernel fences"), "{text}");
}
