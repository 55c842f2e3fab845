//! Data parallelism for the CPU kernels over all cores, with
//! `std::thread::scope`. Work is split into contiguous chunks of the output;
//! small jobs run inline, because spawning a thread costs tens of
//! microseconds, as much as a small kernel itself.

use std::sync::OnceLock;

/// Each thread must get at least this many multiply-adds (or element
/// visits) for spawning it to pay: a scoped spawn and join costs about
/// 20–50 µs, 64k multiply-adds take about as long on one core.
const WORK_PER_THREAD: usize = 1 << 16;

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

/// How many threads `work` multiply-adds split into `parts` pieces deserve.
pub fn threads_for(parts: usize, work: usize) -> usize {
    threads().min(parts).min(work / WORK_PER_THREAD).max(1)
}

/// Calls `f(i, chunk)` for every `chunk_len`-sized chunk of `out` (the last may
/// be shorter), spreading chunks over the cores. `work` is the total number of
/// multiply-adds, used to decide whether threads pay.
pub fn for_chunks<T: Send>(out: &mut [T], chunk_len: usize, work: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    for_chunks_init(out, chunk_len, work, || (), |_, i, c| f(i, c));
}

/// [`for_chunks`] with per-thread state: `init` runs once on each thread
/// (scratch buffers: one allocation per thread and call, not per chunk) and
/// `f(state, i, chunk)` gets it for every chunk that thread handles.
pub fn for_chunks_init<T: Send, S>(
    out: &mut [T],
    chunk_len: usize,
    work: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &mut [T]) + Sync,
) {
    if out.is_empty() || chunk_len == 0 {
        return;
    }
    let n_chunks = out.len().div_ceil(chunk_len);
    let nt = threads_for(n_chunks, work);
    if nt <= 1 {
        let mut s = init();
        for (i, c) in out.chunks_mut(chunk_len).enumerate() {
            f(&mut s, i, c);
        }
        return;
    }
    // Give each thread a contiguous run of whole chunks; the calling thread
    // takes the first run itself instead of idling in the join.
    let per = n_chunks.div_ceil(nt);
    let mut runs = out.chunks_mut(per * chunk_len).enumerate();
    let first = runs.next();
    std::thread::scope(|sc| {
        for (t, run) in runs {
            let (f, init) = (&f, &init);
            sc.spawn(move || {
                let mut s = init();
                for (j, c) in run.chunks_mut(chunk_len).enumerate() {
                    f(&mut s, t * per + j, c);
                }
            });
        }
        if let Some((_, run)) = first {
            let mut s = init();
            for (j, c) in run.chunks_mut(chunk_len).enumerate() {
                f(&mut s, j, c);
            }
        }
    });
}

/// Maps `f` over `0..n` in parallel and returns the results in order.
pub fn map<R: Send + Default + Clone>(n: usize, work: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let mut out = vec![R::default(); n];
    for_chunks(&mut out, 1, work, |i, c| c[0] = f(i));
    out
}
