//! Data parallelism for the CPU kernels over all cores, with
//! `std::thread::scope`. Work is split into contiguous chunks of the output;
//! small jobs run inline, because spawning threads costs tens of microseconds.

use std::sync::OnceLock;

/// Below this many multiply-adds a kernel runs on the calling thread.
const INLINE_WORK: usize = 1 << 15;

pub fn threads() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        std::env::var("RARTS_THREADS")
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    })
}

/// Calls `f(i, chunk)` for every `chunk_len`-sized chunk of `out` (the last may
/// be shorter), spreading chunks over the cores. `work` is the total number of
/// multiply-adds, used to decide whether threads pay.
pub fn for_chunks<T: Send>(out: &mut [T], chunk_len: usize, work: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    if out.is_empty() || chunk_len == 0 {
        return;
    }
    let n_chunks = out.len().div_ceil(chunk_len);
    let nt = threads().min(n_chunks);
    if nt <= 1 || work < INLINE_WORK {
        for (i, c) in out.chunks_mut(chunk_len).enumerate() {
            f(i, c);
        }
        return;
    }
    // Give each thread a contiguous run of whole chunks.
    let per = n_chunks.div_ceil(nt);
    std::thread::scope(|s| {
        for (t, run) in out.chunks_mut(per * chunk_len).enumerate() {
            let f = &f;
            s.spawn(move || {
                for (j, c) in run.chunks_mut(chunk_len).enumerate() {
                    f(t * per + j, c);
                }
            });
        }
    });
}

/// Maps `f` over `0..n` in parallel and returns the results in order.
pub fn map<R: Send + Default + Clone>(n: usize, work: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let mut out = vec![R::default(); n];
    for_chunks(&mut out, 1, work, |i, c| c[0] = f(i));
    out
}
