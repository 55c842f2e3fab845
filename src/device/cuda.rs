//! The CUDA device: context, stream, the kernel modules of `kernels/*.cu`,
//! f32 buffers and the helpers every launcher shares. The launchers are the
//! `impl …Ops for Cuda` blocks in `src/ops/<family>/cuda.rs`; the CPU
//! kernels (`src/ops/<family>/cpu.rs`) are the specification, and
//! `tests/gpu_parity.rs` diffs every method against them.
//!
//! The driver, NVRTC and the device are all found at run time: the crate
//! builds without CUDA, and [`Cuda::new`] returns an error (never panics)
//! when there is no usable device. Kernels come as PTX built by nvcc in
//! build.rs when it found one, otherwise as sources compiled by NVRTC when
//! the backend is created. All modules are loaded once, in [`Cuda::new`].
//!
//! One stream, created by the backend (not the legacy default stream, on
//! which graph capture is not allowed), so kernels run in the order they are
//! launched; every
//! launcher checks buffer lengths before launching and names its kernel in
//! errors.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, LaunchConfig};
use cudarc::nvrtc::{CompileError, CompileOptions, Ptx};

use super::Device;
use crate::error::{Error, Result};

include!(concat!(env!("OUT_DIR"), "/kernels.rs"));

/// Threads per block of the flat kernels and the block reductions (the
/// kernels read it from `blockDim`; the reductions need a multiple of 32).
/// 256 is the usual sweet spot for memory-bound elementwise work (8 warps,
/// full occupancy at low register counts).
pub(crate) const BLOCK: u32 = 256;
/// Cap on the grid of flat kernels; they loop grid-stride beyond it.
/// 132 SMs × 16 blocks of 256 threads: twice the 2,048 threads an H100/H200
/// SM holds at once, so every SM stays full as blocks finish.
const MAX_GRID: u32 = 132 * 16;

/// The grid cap in force: [`MAX_GRID`], or `RARTS_CUDA_GRID_CAP` when set
/// (a test knob: a cap of a few blocks makes every grid-stride loop go
/// round more than once, as large tensors do on a GPU).
fn max_grid() -> u32 {
    static CAP: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *CAP.get_or_init(|| {
        std::env::var("RARTS_CUDA_GRID_CAP")
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .map_or(MAX_GRID, |c| c.clamp(1, MAX_GRID))
    })
}
/// Partial sums of the two-stage reductions (`reduce_partial_f64`, and the
/// mixed nodes' per-term sums: 40 terms × 204 blocks); the scratch buffer
/// holds this many f64.
pub(crate) const REDUCE_PARTS: usize = 8192;

/// Whether `libcuda` can be loaded at all (cudarc panics on first use
/// otherwise).
fn driver_present() -> bool {
    // SAFETY: only tries to open the library; no driver call is made.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Whether NVRTC (`libnvrtc`) can be loaded.
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to open the library.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Number of CUDA devices; 0 when the driver is missing or fails to start.
fn device_count() -> usize {
    if !driver_present() {
        return 0;
    }
    CudaContext::device_count().map_or(0, |n| n.max(0) as usize)
}

/// Why no CUDA device can be used, or `None` if one can.
pub fn unavailable_reason() -> Option<String> {
    if !driver_present() {
        return Some("libcuda could not be loaded (no NVIDIA driver)".into());
    }
    match CudaContext::device_count() {
        Err(e) => Some(format!("the CUDA driver failed to start: {e}")),
        Ok(n) if n <= 0 => Some("the driver reports no CUDA device".into()),
        Ok(_) => None,
    }
}

/// Whether at least one CUDA device is usable.
pub fn cuda_available() -> bool {
    unavailable_reason().is_none()
}

/// A device buffer of f32. Kept apart from its allocation's length so that
/// empty buffers (which the driver will not allocate) are representable.
pub struct CudaBuf {
    pub(crate) mem: CudaSlice<f32>,
    pub(crate) len: usize,
}

/// What an op family keeps on a device: its kernels' handles and its
/// scratch buffers. Each family's `cuda.rs` declares its own, named
/// `Kernels`, with [`family_state!`]; [`Cuda::family`] makes it at the
/// family's first launch (the eager step, before any capture) and keeps it
/// as long as the device.
pub(crate) trait FamilyState: Any + Send + Sync + Sized {
    fn make(cu: &Cuda) -> Result<Self>;
}

/// Declares an op family's device state `Kernels`: the handle of every
/// kernel it launches from `kernels/<module>.cu`, and its scratch buffers
/// with how each is made (`name: Type = |cu: &Cuda| -> Result<Type> { … }`).
/// [`launch!`] finds a kernel in the `Kernels` of the module it is used in.
macro_rules! family_state {
    (
        $(#[$meta:meta])*
        struct Kernels from $module:literal {
            kernels: [$($f:ident),* $(,)?],
            $($(#[$fmeta:meta])* $field:ident: $ty:ty = $init:expr,)*
        }
    ) => {
        $(#[$meta])*
        pub(crate) struct Kernels {
            $(pub(crate) $f: cudarc::driver::CudaFunction,)*
            $($(#[$fmeta])* pub(crate) $field: $ty,)*
        }

        impl Kernels {
            /// The module and every kernel the family loads from it.
            pub(crate) const NAMES: (&'static str, &'static [&'static str]) = ($module, &[$(stringify!($f)),*]);
        }

        impl $crate::device::cuda::FamilyState for Kernels {
            fn make(cu: &$crate::device::cuda::Cuda) -> $crate::error::Result<Self> {
                Ok(Kernels {
                    $($f: cu.function($module, stringify!($f))?,)*
                    $($field: ($init)(cu)?,)*
                })
            }
        }
    };
}
pub(crate) use family_state;

/// Slots for the families' states: one per op family, with room to spare.
const FAMILY_SLOTS: usize = 16;

/// Whether a graph capture is open on the backend's stream.
#[derive(Debug, Default)]
pub(crate) struct Capture(std::sync::atomic::AtomicBool);

impl Capture {
    pub(crate) fn set(&self, on: bool) {
        self.0.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Refuses `what` (an allocation, a copy from the host) while a capture
    /// is open: the graph would record it once and replay it against memory
    /// the host has freed since. Everything a step needs is made by the
    /// eager step before the capture.
    pub(crate) fn forbid(&self, what: &str) -> Result<()> {
        if self.0.load(std::sync::atomic::Ordering::SeqCst) {
            crate::bail!(
                "cuda: {what} while a step is being captured as a graph; expected every buffer and table to be made \
                 by the eager step before the capture"
            );
        }
        Ok(())
    }
}

/// The CUDA backend on one device.
pub struct Cuda {
    ctx: Arc<CudaContext>,
    pub(crate) stream: Arc<CudaStream>,
    /// Every kernel module, loaded once.
    modules: HashMap<&'static str, Arc<CudaModule>>,
    /// Each op family's kernels and scratch ([`FamilyState`]), made at its
    /// first launch: (its type, its state).
    families: [OnceLock<(TypeId, Box<dyn Any + Send + Sync>)>; FAMILY_SLOTS],
    /// Partial sums of the two-stage reductions (the elementwise and the
    /// optimizer families share them); locked across both stages so that
    /// two host threads cannot interleave them.
    pub(crate) scratch: Mutex<CudaSlice<f64>>,
    /// Set between `begin_capture` and `end_capture`: what would allocate or
    /// copy from the host then (recorded as a copy from memory freed before
    /// the replay) fails instead.
    pub(crate) capture: Capture,
    /// Each kernel's parameter sizes in bytes, read from the PTX it was
    /// loaded from; each launch site's argument list is checked against them
    /// at its first launch.
    params: HashMap<String, Vec<usize>>,
    device_name: String,
    /// Where the kernels came from ("nvcc PTX (sm_90)" or "NVRTC (compute_90)").
    kernels_from: String,
}

impl Cuda {
    /// Opens device `ordinal`, loads every kernel module. Fails with a plain
    /// message when there is no driver, no such device or a kernel does not
    /// compile or load.
    pub fn new(ordinal: usize) -> Result<Cuda> {
        if let Some(why) = unavailable_reason() {
            crate::bail!("cuda: no usable device: {why}");
        }
        let count = device_count();
        if ordinal >= count {
            crate::bail!("cuda: device {ordinal} requested, the driver reports {count} device(s)");
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| Error::new(format!("cuda: opening device {ordinal}: {e}")))?;
        // SAFETY: this backend uses a single stream, so no cross-stream
        // synchronisation is needed and the per-buffer events are overhead.
        unsafe { ctx.disable_event_tracking() };
        // A stream of our own: work on the legacy default stream cannot be
        // captured into a CUDA graph.
        let stream = ctx.new_stream().map_err(|e| Error::new(format!("cuda: creating a stream: {e}")))?;
        let device_name = ctx.name().unwrap_or_else(|_| "unknown device".into());
        let cc = ctx.compute_capability().map_err(|e| Error::new(format!("cuda: compute capability: {e}")))?;

        let mut modules = HashMap::new();
        let mut params = HashMap::new();
        // The PTX nvcc built, if any; when the driver cannot load it (an nvcc
        // newer than the driver, or a device the PTX does not target), the
        // sources through NVRTC instead.
        let ptx_failure = match KERNEL_PTX {
            Some(ptx) => ptx.iter().find_map(|&(name, text)| match ctx.load_module(Ptx::from_src(text)) {
                Ok(m) => {
                    modules.insert(name, m);
                    params.extend(super::ptx::params(text));
                    None
                }
                Err(e) => Some(format!("loading {name}.ptx ({KERNEL_ARCH}): {e}")),
            }),
            None => Some("no PTX was built (nvcc was not found at build time)".into()),
        };
        let kernels_from = match ptx_failure {
            None => format!("nvcc PTX ({KERNEL_ARCH})"),
            Some(why) => {
                if !nvrtc_present() {
                    crate::bail!("cuda: {why}, and libnvrtc cannot be loaded to compile the kernels instead");
                }
                modules.clear();
                params.clear();
                let arch = nvrtc_arch(cc)?;
                for &(name, src) in KERNEL_SOURCES {
                    let ptx = compile_nvrtc(name, src, arch, &[])?;
                    params.extend(super::ptx::params(&ptx.to_src()));
                    let m = ctx.load_module(ptx).map_err(|e| Error::new(format!("cuda: loading {name}.cu: {e}")))?;
                    modules.insert(name, m);
                }
                if KERNEL_PTX.is_some() {
                    format!("NVRTC ({arch}; nvcc PTX failed: {why})")
                } else {
                    format!("NVRTC ({arch})")
                }
            }
        };
        let scratch =
            stream.alloc_zeros::<f64>(REDUCE_PARTS).map_err(|e| Error::new(format!("cuda: scratch buffer: {e}")))?;
        Ok(Cuda {
            ctx,
            stream,
            modules,
            families: std::array::from_fn(|_| OnceLock::new()),
            scratch: Mutex::new(scratch),
            capture: Capture::default(),
            params,
            device_name,
            kernels_from,
        })
    }

    /// The state of the op family `T` (its kernels, its scratch), made at
    /// its first use.
    pub(crate) fn family<T: FamilyState>(&self) -> Result<&T> {
        fn of<T: 'static>(entry: &(TypeId, Box<dyn Any + Send + Sync>)) -> Option<&T> {
            entry.1.downcast_ref::<T>()
        }
        let id = TypeId::of::<T>();
        for slot in &self.families {
            match slot.get() {
                Some(entry) if entry.0 == id => return of::<T>(entry).ok_or_else(|| Error::new("cuda: family state")),
                Some(_) => continue,
                None => {
                    // Another thread may take this slot first: then the
                    // state made here is dropped and the scan goes on.
                    let _ = slot.set((id, Box::new(T::make(self)?)));
                    if let Some(entry) = slot.get().filter(|e| e.0 == id) {
                        return of::<T>(entry).ok_or_else(|| Error::new("cuda: family state"));
                    }
                }
            }
        }
        crate::bail!("cuda: more than {FAMILY_SLOTS} op families")
    }

    /// Kernel `name` of module `module` (`kernels/<module>.cu`).
    pub(crate) fn function(&self, module: &str, name: &str) -> Result<CudaFunction> {
        let m = self
            .modules
            .get(module)
            .ok_or_else(|| Error::new(format!("cuda: kernel module {module}.cu is missing")))?;
        m.load_function(name).map_err(|e| Error::new(format!("cuda: {module}.cu has no kernel {name}: {e}")))
    }

    /// `len` zeros of scratch for a family's state; refused while capturing.
    pub(crate) fn scratch_zeros<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
        &self,
        what: &str,
        len: usize,
    ) -> Result<CudaSlice<T>> {
        self.capture.forbid(&format!("allocating {what}"))?;
        self.stream.alloc_zeros::<T>(len).map_err(|e| Error::new(format!("cuda: {what}: {e}")))
    }

    /// Flat launch over `n` elements: ⌈n/BLOCK⌉ blocks, capped (grid-stride).
    pub(crate) fn flat(n: usize) -> LaunchConfig {
        let blocks = n.div_ceil(BLOCK as usize).clamp(1, max_grid() as usize) as u32;
        LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 }
    }

    /// One block of BLOCK threads per item (channel, weight element, …).
    pub(crate) fn per_block(items: usize) -> Result<LaunchConfig> {
        let g = u32::try_from(items).map_err(|_| Error::new(format!("cuda: {items} blocks exceed the grid")))?;
        Ok(LaunchConfig { grid_dim: (g, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 })
    }

    /// Fails unless `sizes` (the bytes of each argument a launcher passes)
    /// are the kernel's PTX parameters: a launcher whose argument list
    /// drifted from its kernel's signature (an `int` passed as a
    /// `long long`, a missing argument) is an error, not garbage.
    pub fn check_params(&self, kernel: &str, sizes: &[usize]) -> Result<()> {
        match self.params.get(kernel) {
            Some(want) if want.as_slice() == sizes => Ok(()),
            Some(want) => crate::bail!(
                "cuda: {kernel}: the launcher passes arguments of {sizes:?} bytes, the kernel's PTX takes {want:?}"
            ),
            None => crate::bail!("cuda: {kernel}: no such entry in the loaded PTX"),
        }
    }

    /// The raw device address of an optional buffer (0 = absent), for
    /// kernels that take a nullable pointer.
    pub(crate) fn opt_ptr(&self, b: Option<&CudaBuf>) -> u64 {
        b.map_or(0, |b| self.ptr(&b.mem))
    }

    /// The raw device address of a device allocation (a scratch buffer).
    pub(crate) fn ptr<T>(&self, s: &CudaSlice<T>) -> u64 {
        // The returned guard records nothing: event tracking is off.
        s.device_ptr(&self.stream).0
    }
}

/// The architecture NVRTC compiles for: `RARTS_CUDA_ARCH` when set (`sm_80`,
/// `compute_80` or `80`, as for nvcc in build.rs), else the device's own.
fn nvrtc_arch(device: (i32, i32)) -> Result<&'static str> {
    match std::env::var("RARTS_CUDA_ARCH") {
        Ok(v) => parse_arch(&v).map(compute_arch).ok_or_else(|| {
            Error::new(format!("RARTS_CUDA_ARCH={v:?}: expected sm_XY, compute_XY or XY (e.g. sm_90, 80)"))
        }),
        Err(_) => Ok(compute_arch(device)),
    }
}

/// `(major, minor)` from `sm_90`, `compute_90` or `90` (`100` → (10, 0)).
pub fn parse_arch(v: &str) -> Option<(i32, i32)> {
    let digits = v.trim().trim_start_matches("sm_").trim_start_matches("compute_");
    if digits.len() < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (major, minor) = digits.split_at(digits.len() - 1);
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// `compute_XY` for NVRTC from a compute capability.
fn compute_arch((major, minor): (i32, i32)) -> &'static str {
    match (major, minor) {
        (7, 0) => "compute_70",
        (7, 5) => "compute_75",
        (8, 0) => "compute_80",
        (8, 6) => "compute_86",
        (8, 7) => "compute_87",
        (8, 9) => "compute_89",
        (9, 0) => "compute_90",
        (10, 0) => "compute_100",
        (12, 0) => "compute_120",
        // An unlisted device: PTX for the newest listed one it can JIT.
        (m, _) if m >= 12 => "compute_120",
        (m, _) if m >= 10 => "compute_100",
        (m, _) if m >= 9 => "compute_90",
        (8, _) => "compute_80",
        _ => "compute_70",
    }
}

/// Compiles one embedded kernel source with NVRTC; the error carries
/// NVRTC's log. `include_paths` are only needed for system headers, which
/// the kernels do not use.
pub fn compile_nvrtc(name: &str, src: &str, arch: &'static str, include_paths: &[String]) -> Result<Ptx> {
    let opts = CompileOptions {
        arch: Some(arch),
        include_paths: include_paths.to_vec(),
        name: Some(format!("{name}.cu")),
        options: vec!["--std=c++17".into()],
        ..Default::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(src, opts).map_err(|e| match e {
        CompileError::CompileError { log, .. } => {
            Error::new(format!("cuda: NVRTC failed on {name}.cu:\n{}", log.to_string_lossy()))
        }
        other => Error::new(format!("cuda: NVRTC failed on {name}.cu: {other:?}")),
    })
}

/// Launches kernel `$f` of the op family's `Kernels` (the one of the module
/// the macro is used in, see [`family_state!`]) with `$cfg` and the given arguments, all
/// in one expression so that temporaries (`&(n as i64)`) live until the
/// launch. Each call site names the `.cu` signature it matches, and its
/// arguments' sizes are checked against the kernel's PTX parameters at the
/// call site's first launch (they cannot change after it).
macro_rules! launch {
    ($cu:expr, $f:ident, $cfg:expr; $($arg:expr),* $(,)?) => {{
        use cudarc::driver::PushKernelArg as _;
        let cu: &$crate::device::cuda::Cuda = $cu;
        let cfg: cudarc::driver::LaunchConfig = $cfg;
        // The sizes are fixed per call site: checked at its first launch.
        static CHECKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !CHECKED.load(std::sync::atomic::Ordering::Relaxed) {
            cu.check_params(stringify!($f), &[$($crate::device::ptx::param_bytes($arg)),*])?;
            CHECKED.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        #[allow(clippy::macro_metavars_in_unsafe)]
        // SAFETY: the argument list matches the kernel's C signature (each
        // call site names it) and the launcher checked every buffer length
        // against the geometry before reaching here.
        let r = unsafe { cu.stream.launch_builder(&cu.family::<Kernels>()?.$f)$(.arg($arg))*.launch(cfg) };
        if r.is_ok() {
            $crate::device::counts::note_cuda_launch();
        }
        r.map(|_| ()).map_err(|e| $crate::error::Error::new(format!("cuda: {}: {e}", stringify!($f))))
    }};
}
pub(crate) use launch;

/// Fails with the kernel's name unless `buf` holds exactly `want` elements.
pub(crate) fn check_len(kernel: &str, what: &str, buf: &CudaBuf, want: usize) -> Result<()> {
    if buf.len != want {
        crate::bail!("cuda: {kernel}: {what} holds {} elements, expected {want}", buf.len);
    }
    Ok(())
}

/// A dimension as the kernels' `int`.
pub(crate) fn int(kernel: &str, v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| Error::new(format!("cuda: {kernel}: dimension {v} does not fit in an int")))
}

impl Device for Cuda {
    type Elem = f32;
    type Buf = CudaBuf;

    fn name(&self) -> String {
        format!("cuda ({}, kernels from {})", self.device_name, self.kernels_from)
    }
    fn reserve(&self, bytes: usize) -> Result<()> {
        let (free, _total) = self.ctx.mem_get_info().map_err(|e| Error::new(format!("cuda: memory query: {e}")))?;
        if bytes > free {
            let gib = |b: usize| b as f64 / (1u64 << 30) as f64;
            crate::bail!(
                "cuda: the network's values and gradients need {:.1} GiB, but the device has {:.1} GiB free; \
                 lower --batch, --c or --layers",
                gib(bytes),
                gib(free)
            );
        }
        Ok(())
    }
    fn alloc(&self, len: usize) -> Result<CudaBuf> {
        self.capture.forbid(&format!("allocating {len} floats"))?;
        // The driver does not allocate 0 bytes; an empty buffer keeps one element.
        let mem = self
            .stream
            .alloc_zeros::<f32>(len.max(1))
            .map_err(|e| Error::new(format!("cuda: allocating {len} floats ({} MiB): {e}", (len * 4) >> 20)))?;
        Ok(CudaBuf { mem, len })
    }
    fn len(&self, b: &CudaBuf) -> usize {
        b.len
    }
    fn upload(&self, dst: &mut CudaBuf, src: &[f32]) -> Result<()> {
        self.capture.forbid("a copy from the host")?;
        if dst.len != src.len() {
            crate::bail!("upload: buffer holds {} elements, data has {}", dst.len, src.len());
        }
        if src.is_empty() {
            return Ok(());
        }
        let mut view = dst.mem.slice_mut(0..src.len());
        self.stream.memcpy_htod(src, &mut view).map_err(|e| Error::new(format!("cuda: upload: {e}")))
    }
    fn download(&self, src: &CudaBuf) -> Result<Vec<f32>> {
        super::counts::read(0);
        let mut out = vec![0.0f32; src.len];
        if src.len > 0 {
            let view = src.mem.slice(0..src.len);
            self.stream.memcpy_dtoh(&view, &mut out).map_err(|e| Error::new(format!("cuda: download: {e}")))?;
        }
        self.synchronize()?;
        Ok(out)
    }
    fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().map_err(|e| Error::new(format!("cuda: synchronize: {e}")))
    }

    type Graph = cudarc::driver::CudaGraph;
    fn has_graphs(&self) -> bool {
        true
    }
    fn begin_capture(&self) -> Result<()> {
        // Global mode: any call that is not allowed during a capture, from
        // any thread, fails instead of silently running.
        let mode = cudarc::driver::sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_GLOBAL;
        self.stream.begin_capture(mode).map_err(|e| Error::new(format!("cuda: beginning a graph capture: {e}")))?;
        self.capture.set(true);
        Ok(())
    }
    fn end_capture(&self) -> Result<cudarc::driver::CudaGraph> {
        self.capture.set(false);
        let flags = cudarc::driver::sys::CUgraphInstantiate_flags(0);
        match self.stream.end_capture(flags) {
            Ok(Some(g)) => Ok(g),
            Ok(None) => crate::bail!("cuda: the graph capture recorded nothing"),
            Err(e) => crate::bail!("cuda: ending a graph capture: {e}"),
        }
    }
    fn replay(&self, g: &cudarc::driver::CudaGraph) -> Result<()> {
        super::counts::call(1);
        let r = g.launch().map_err(|e| Error::new(format!("cuda: replaying the step's graph: {e}")));
        if r.is_ok() {
            super::counts::note_cuda_launch();
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::Capture;

    /// Allocations and host copies are refused exactly while a capture is open.
    #[test]
    fn nothing_is_allocated_or_copied_from_the_host_while_capturing() {
        let c = Capture::default();
        c.forbid("allocating 4 floats").unwrap();
        c.set(true);
        let e = c.forbid("a tensor-list table").unwrap_err().to_string();
        assert!(e.contains("a tensor-list table") && e.contains("being captured"), "{e}");
        c.set(false);
        c.forbid("a copy from the host").unwrap();
    }
}
