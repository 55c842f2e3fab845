//! Every embedded kernel source compiles with NVRTC, and defines every
//! function the backend loads. Needs only libnvrtc (no GPU): with the PyPI
//! toolkit of scripts/install-nvcc.sh, run with
//! `LD_LIBRARY_PATH=$CUDA_HOME/lib`. Without libnvrtc the test says it was
//! skipped and passes.

mod common;

use rarts::backend::cuda::{KERNEL_PTX, KERNEL_SOURCES, compile_nvrtc, nvrtc_present};

/// `.entry name(` appears in the PTX for every function of `module`.
fn check_entries(module: &str, ptx: &str, how: &str) {
    let (_, funcs) = rarts::ops::cuda_kernels()
        .into_iter()
        .find(|(m, _)| *m == module)
        .unwrap_or_else(|| panic!("{module}.cu is embedded but the backend loads nothing from it"));
    for f in funcs {
        assert!(ptx.contains(&format!(".entry {f}(")), "{module}.cu ({how}): no kernel named {f} in the PTX");
    }
}

#[test]
fn every_module_the_backend_loads_is_embedded() {
    for (m, _) in rarts::ops::cuda_kernels() {
        assert!(KERNEL_SOURCES.iter().any(|(s, _)| *s == m), "{m}.cu is loaded but not embedded");
    }
    for (_, src) in KERNEL_SOURCES {
        assert!(!src.contains("#include \"common.cuh\""), "common.cuh was not inlined");
    }
}

#[test]
fn build_time_ptx_defines_every_kernel() {
    let Some(ptx) = KERNEL_PTX else {
        common::skipped("no nvcc at build time, the kernels are compiled with NVRTC at run time");
        return;
    };
    assert_eq!(ptx.len(), KERNEL_SOURCES.len());
    for (name, text) in ptx {
        check_entries(name, text, "nvcc");
    }
}

#[test]
fn every_kernel_source_compiles_with_nvrtc() {
    if !nvrtc_present() {
        common::skipped("libnvrtc could not be loaded (set LD_LIBRARY_PATH to a CUDA lib folder)");
        return;
    }
    // The kernels use no headers; the include folders are passed anyway so
    // that a header added later does not fail only here.
    let includes: Vec<String> = std::env::var("CUDA_HOME")
        .map(|h| vec![format!("{h}/include"), format!("{h}/include/cccl")])
        .unwrap_or_default();
    let mut failures = Vec::new();
    for (name, src) in KERNEL_SOURCES {
        match compile_nvrtc(name, src, "compute_90", &includes) {
            Ok(ptx) => check_entries(name, &ptx.to_src(), "NVRTC"),
            Err(e) => failures.push(e.to_string()),
        }
    }
    assert!(failures.is_empty(), "NVRTC failures:\n{}", failures.join("\n"));
    eprintln!("compiled {} kernel sources with NVRTC for compute_90", KERNEL_SOURCES.len());
}

/// `RARTS_CUDA_ARCH` in the forms build.rs accepts for nvcc, read for NVRTC.
#[test]
fn cuda_arch_setting_parses_like_the_build() {
    use rarts::backend::cuda::parse_arch;
    assert_eq!(parse_arch("sm_90"), Some((9, 0)));
    assert_eq!(parse_arch("compute_80"), Some((8, 0)));
    assert_eq!(parse_arch("86"), Some((8, 6)));
    assert_eq!(parse_arch("100"), Some((10, 0)));
    assert_eq!(parse_arch(" sm_120 "), Some((12, 0)));
    for bad in ["", "9", "sm_", "sm_9x", "ampere", "-80"] {
        assert_eq!(parse_arch(bad), None, "{bad:?}");
    }
}
