//! Compiles `kernels/*.cu` to PTX with nvcc when one is found, and always
//! embeds the kernel sources (with `common.cuh` inlined, since NVRTC cannot
//! see local includes) so that a machine without nvcc still builds and the
//! kernels are compiled with NVRTC at run time instead.
//!
//! nvcc is looked for in `$NVCC`, `$CUDA_HOME/bin/nvcc`,
//! `/usr/local/cuda/bin/nvcc`, then `PATH`. The PTX target is `sm_90`,
//! overridden by `RARTS_CUDA_ARCH` (`sm_80`, `80`, …). A kernel that does not
//! compile (or whose PTX ptxas, when present, does not assemble) fails the
//! build with the compiler's message.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const COMMON: &str = "common.cuh";

fn main() {
    let kdir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("kernels");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed={}", kdir.display());
    for var in ["NVCC", "CUDA_HOME", "RARTS_CUDA_ARCH", "PATH"] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let mut kernels: Vec<PathBuf> = fs::read_dir(&kdir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", kdir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cu"))
        .collect();
    kernels.sort();
    for k in &kernels {
        println!("cargo:rerun-if-changed={}", k.display());
    }
    let common_path = kdir.join(COMMON);
    println!("cargo:rerun-if-changed={}", common_path.display());
    let common = fs::read_to_string(&common_path).unwrap_or_else(|e| panic!("reading {}: {e}", common_path.display()));
    let common = common.replace("#pragma once", "");

    let arch = arch();
    let nvcc = find_nvcc();
    let mut sources = String::new();
    let mut ptx = String::new();
    for k in &kernels {
        let name = k.file_stem().and_then(|s| s.to_str()).expect("kernel file names are UTF-8").to_string();
        let text = fs::read_to_string(k).unwrap_or_else(|e| panic!("reading {}: {e}", k.display()));
        let inlined = inline_common(&text, &common);
        let src_path = out.join(format!("{name}.inlined.cu"));
        fs::write(&src_path, inlined).unwrap_or_else(|e| panic!("writing {}: {e}", src_path.display()));
        writeln!(sources, "    ({name:?}, include_str!({:?})),", src_path.display().to_string()).unwrap();
        if let Some(nvcc) = &nvcc {
            let ptx_path = out.join(format!("{name}.ptx"));
            compile(nvcc, k, &kdir, &ptx_path, &arch);
            writeln!(ptx, "    ({name:?}, include_str!({:?})),", ptx_path.display().to_string()).unwrap();
        }
    }

    let mut code = String::new();
    code.push_str("/// Each kernel file's name (without `.cu`) and its source, `common.cuh` inlined.\n");
    code.push_str("pub const KERNEL_SOURCES: &[(&str, &str)] = &[\n");
    code.push_str(&sources);
    code.push_str("];\n");
    match &nvcc {
        Some(n) => {
            writeln!(code, "/// PTX compiled at build time by `{}` for `{arch}`.", n.display()).unwrap();
            code.push_str("pub const KERNEL_PTX: Option<&[(&str, &str)]> = Some(&[\n");
            code.push_str(&ptx);
            code.push_str("]);\n");
        }
        None => {
            code.push_str("/// No nvcc at build time: the sources are compiled with NVRTC at run time.\n");
            code.push_str("pub const KERNEL_PTX: Option<&[(&str, &str)]> = None;\n");
        }
    }
    writeln!(code, "/// The architecture the build-time PTX targets.\npub const KERNEL_ARCH: &str = {arch:?};")
        .unwrap();
    let gen_path = out.join("kernels.rs");
    fs::write(&gen_path, code).unwrap_or_else(|e| panic!("writing {}: {e}", gen_path.display()));
}

/// `sm_NN` from `RARTS_CUDA_ARCH` (`sm_NN`, `compute_NN` or `NN`), default `sm_90`.
fn arch() -> String {
    let raw = env::var("RARTS_CUDA_ARCH").unwrap_or_default();
    let digits = raw.trim().trim_start_matches("sm_").trim_start_matches("compute_");
    if digits.is_empty() {
        return "sm_90".into();
    }
    if !digits.chars().all(|c| c.is_ascii_alphanumeric()) {
        panic!("RARTS_CUDA_ARCH={raw:?}: expected an architecture such as sm_90 or 90");
    }
    format!("sm_{digits}")
}

fn find_nvcc() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = env::var_os("NVCC").filter(|v| !v.is_empty()) {
        candidates.push(PathBuf::from(p));
    }
    if let Some(h) = env::var_os("CUDA_HOME").filter(|v| !v.is_empty()) {
        candidates.push(Path::new(&h).join("bin").join("nvcc"));
    }
    candidates.push(PathBuf::from("/usr/local/cuda/bin/nvcc"));
    if let Some(path) = env::var_os("PATH") {
        candidates.extend(env::split_paths(&path).map(|d| d.join("nvcc")));
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// The `include` folder beside nvcc's `bin`, if there is one (the PyPI
/// wheels keep their headers there and nvcc does not always find them).
fn include_dir(nvcc: &Path) -> Option<PathBuf> {
    let inc = nvcc.parent()?.parent()?.join("include");
    inc.is_dir().then_some(inc)
}

fn compile(nvcc: &Path, src: &Path, kdir: &Path, ptx: &Path, arch: &str) {
    let mut cmd = Command::new(nvcc);
    cmd.arg("-ptx").arg(format!("-arch={arch}")).arg("-O3").arg("-std=c++17").arg("-I").arg(kdir);
    if let Some(inc) = include_dir(nvcc) {
        cmd.arg("-I").arg(inc);
    }
    cmd.arg("-o").arg(ptx).arg(src);
    let res = cmd.output().unwrap_or_else(|e| panic!("running {}: {e}", nvcc.display()));
    if !res.status.success() {
        // nvcc's own message, without a Rust backtrace around it.
        eprintln!(
            "nvcc failed on {} ({}):\n{}{}",
            src.display(),
            res.status,
            String::from_utf8_lossy(&res.stdout),
            String::from_utf8_lossy(&res.stderr)
        );
        std::process::exit(1);
    }
    // Assemble the PTX too when ptxas sits beside nvcc: catches what only
    // the assembler sees (registers, shared memory, unsupported
    // instructions for the architecture) before the GPU machine does.
    let ptxas = nvcc.with_file_name("ptxas");
    if ptxas.is_file() {
        let cubin = ptx.with_extension("cubin");
        let res = Command::new(&ptxas)
            .arg(format!("-arch={arch}"))
            .arg("-o")
            .arg(&cubin)
            .arg(ptx)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", ptxas.display()));
        if !res.status.success() {
            eprintln!("ptxas failed on {} ({}):\n{}", ptx.display(), res.status, String::from_utf8_lossy(&res.stderr));
            std::process::exit(1);
        }
    }
}

/// Replaces `#include "common.cuh"` with the header's text.
fn inline_common(text: &str, common: &str) -> String {
    let mut out = String::with_capacity(text.len() + common.len());
    for line in text.lines() {
        if line.trim() == format!("#include \"{COMMON}\"") {
            out.push_str(common);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}
