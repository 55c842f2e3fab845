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
        if let Some(avail) = crate::hugealloc::mem_available()
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
