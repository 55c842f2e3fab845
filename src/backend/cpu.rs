//! The CPU device: buffers are `Vec<T>`, generic over the element type so
//! that tests can run the same kernels in f64. Its kernels, the reference
//! implementation of every op, are the `impl …Ops for Cpu<T>` blocks in
//! `src/ops/<family>/cpu.rs`.

use std::marker::PhantomData;

use super::Device;
use crate::error::Result;
use crate::real::Real;

/// Runs every kernel on the host over all cores (`RARTS_THREADS` overrides).
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu<T: Real = f32>(PhantomData<T>);

impl<T: Real> Cpu<T> {
    pub fn new() -> Self {
        Cpu(PhantomData)
    }
}

impl<T: Real> Device for Cpu<T> {
    type Elem = T;
    type Buf = Vec<T>;

    fn name(&self) -> String {
        format!("cpu ({} threads)", crate::par::threads())
    }
    fn reserve(&self, bytes: usize) -> Result<()> {
        let gib = |b: f64| b / (1u64 << 30) as f64;
        if let Some(avail) = mem_available()
            && bytes as u64 > avail
        {
            crate::bail!(
                "the network's values and gradients need {:.1} GiB, but only {:.1} GiB of memory is available; \
                 lower --batch, --c or --layers",
                gib(bytes as f64),
                gib(avail as f64)
            );
        }
        Ok(())
    }
    fn alloc(&self, len: usize) -> Result<Vec<T>> {
        Ok(vec![T::ZERO; len])
    }
    fn len(&self, b: &Vec<T>) -> usize {
        b.len()
    }
    fn upload(&self, dst: &mut Vec<T>, src: &[T]) -> Result<()> {
        if dst.len() != src.len() {
            crate::bail!("upload: buffer holds {} elements, data has {}", dst.len(), src.len());
        }
        dst.copy_from_slice(src);
        Ok(())
    }
    fn download(&self, src: &Vec<T>) -> Result<Vec<T>> {
        super::counts::read(0);
        Ok(src.clone())
    }
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }

    type Graph = ();
    fn has_graphs(&self) -> bool {
        false
    }
    fn begin_capture(&self) -> Result<()> {
        crate::bail!("--cuda-graph: CUDA graphs need --device cuda; the CPU runs every step as it comes")
    }
    fn end_capture(&self) -> Result<()> {
        crate::bail!("end_capture: nothing is being captured on the CPU")
    }
    fn replay(&self, _: &()) -> Result<()> {
        crate::bail!("replay: the CPU has no graphs")
    }
}

/// The memory this process can still take, in bytes: `MemAvailable` of
/// /proc/meminfo, or less where the process's address-space limit (`ulimit
/// -v`) leaves less room above what it maps now. None where neither is known.
pub fn mem_available() -> Option<u64> {
    let kb = |text: &str, key: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(key))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    };
    let system = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| kb(&t, "MemAvailable:"));
    let room = address_space_limit().and_then(|limit| {
        let mapped = std::fs::read_to_string("/proc/self/status").ok().and_then(|t| kb(&t, "VmSize:"))?;
        Some(limit.saturating_sub(mapped))
    });
    match (system, room) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The soft limit on this process's address space (`ulimit -v`), None when
/// unlimited or unknown.
#[cfg(target_os = "linux")]
fn address_space_limit() -> Option<u64> {
    #[repr(C)]
    struct Rlimit {
        cur: u64,
        max: u64,
    }
    const RLIMIT_AS: i32 = 9;
    const RLIM_INFINITY: u64 = u64::MAX;
    unsafe extern "C" {
        fn getrlimit(resource: i32, rlim: *mut Rlimit) -> i32;
    }
    let mut r = Rlimit { cur: 0, max: 0 };
    // SAFETY: getrlimit from libc writes one struct rlimit (two 64-bit
    // fields on 64-bit Linux) into `r`, which lives for the call.
    let rc = unsafe { getrlimit(RLIMIT_AS, &mut r) };
    (rc == 0 && r.cur != RLIM_INFINITY).then_some(r.cur)
}

#[cfg(not(target_os = "linux"))]
fn address_space_limit() -> Option<u64> {
    None
}
