//! What the kernels are asked to do, counted on any device: backend calls,
//! the CUDA launches they stand for (a memset counts as one), and host reads
//! (calls that return a value to the host, so the host waits for the
//! device). Every method of the op-family traits notes itself here, on the
//! CPU as on CUDA, with the number of launches its CUDA launcher makes (one
//! unless the launcher declares otherwise, next to it); the CUDA backend
//! also counts the launches it really makes, so that a parity test can hold
//! the two to each other. Counted per thread (the thread that calls the
//! backend; kernels that spread over helper threads count once, on it): read
//! the difference over a step.

use std::cell::Cell;

thread_local! {
    static CALLS: Cell<u64> = const { Cell::new(0) };
    static LAUNCHES: Cell<u64> = const { Cell::new(0) };
    static READS: Cell<u64> = const { Cell::new(0) };
    static CUDA_LAUNCHES: Cell<u64> = const { Cell::new(0) };
}

fn add(c: &'static std::thread::LocalKey<Cell<u64>>, v: u64) {
    c.with(|c| c.set(c.get() + v));
}

/// Totals since the thread started; subtract two to get what lies between.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub calls: u64,
    pub launches: u64,
    pub reads: u64,
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, o: Counts) -> Counts {
        Counts { calls: self.calls - o.calls, launches: self.launches - o.launches, reads: self.reads - o.reads }
    }
}

/// One backend call that stands for `launches` CUDA launches.
#[inline]
pub fn call(launches: u64) {
    add(&CALLS, 1);
    add(&LAUNCHES, launches);
}

/// One backend call that returns a value to the host, after `launches` launches.
#[inline]
pub fn read(launches: u64) {
    call(launches);
    add(&READS, 1);
}

pub fn now() -> Counts {
    Counts { calls: CALLS.with(Cell::get), launches: LAUNCHES.with(Cell::get), reads: READS.with(Cell::get) }
}

/// Kernel launches the CUDA backend has made (each `launch!` and memset).
pub fn cuda_launches() -> u64 {
    CUDA_LAUNCHES.with(Cell::get)
}

#[inline]
pub(crate) fn note_cuda_launch() {
    add(&CUDA_LAUNCHES, 1);
}
