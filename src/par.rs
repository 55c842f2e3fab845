//! Data parallelism for the CPU kernels over all cores, on a small pool of
//! helper threads (see `pool`). Work is split into chunks of the output;
//! small jobs run inline, because waking a thread costs microseconds to
//! milliseconds, as much as a small kernel itself.

use std::sync::{Mutex, OnceLock};

/// Each thread must get at least this many multiply-adds (or element
/// visits) for spawning it to pay: a scoped spawn and join costs about
/// 20–50 µs, 64k multiply-adds take about as long on one core.
const WORK_PER_THREAD: usize = 1 << 16;

/// Elements of the output one claim on the shared queue takes at least (in
/// whole chunks): a plane of a 7×7 map is 49 elements, and taking the
/// queue's lock once per plane, with two threads contending for it, cost as
/// much as the arithmetic on that plane.
const CLAIM: usize = 4096;

/// Claims per thread the queue keeps at least, for balance between threads.
const CLAIMS_PER_THREAD: usize = 8;

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
    // Chunks are claimed a few at a time from a shared queue rather than
    // dealt out in advance: on a busy machine a helper that is not scheduled
    // for a while leaves its share to the caller instead of holding up the
    // call, and uneven chunks balance out.
    let group = (CLAIM / chunk_len).clamp(1, (n_chunks / (nt * CLAIMS_PER_THREAD)).max(1));
    let queue = Mutex::new(out.chunks_mut(chunk_len * group).enumerate());
    let worker = || {
        let mut state = None;
        loop {
            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
            let Some((gi, block)) = next else { break };
            let state = state.get_or_insert_with(&init);
            for (j, c) in block.chunks_mut(chunk_len).enumerate() {
                f(state, gi * group + j, c);
            }
        }
    };
    pool::run(&worker);
}

/// Helper threads that live as long as the process, parked on a condition
/// variable between jobs. Measured on a 2-core machine shared with other
/// work: spawning a scoped thread per kernel call made the caller wait for
/// the new thread to be scheduled, often a whole time slice (ms) per call,
/// and a DARTS edge ran ~9× slower on 2 threads than on 1. Here the caller
/// works through the job itself and only waits for helpers that actually
/// took part of it; a helper that wakes up late finds the job closed.
mod pool {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
    use std::time::{Duration, Instant};

    /// How long a helper that finished a job watches for the next one
    /// before it parks. Kernels of a step follow each other within
    /// microseconds; waking a parked helper costs a system call on each
    /// side and often a scheduler round.
    const SPIN: Duration = Duration::from_micros(100);

    type Job = &'static (dyn Fn() + Sync);

    #[derive(Default)]
    struct State {
        /// The open job, if any, and its sequence number.
        job: Option<Job>,
        seq: u64,
        /// Helpers inside the current job.
        active: usize,
        /// A helper panicked inside the current job.
        panicked: bool,
        /// Helpers parked on `wake`.
        parked: usize,
        /// The caller is waiting on `done` for the helpers to leave.
        closing: bool,
    }

    struct Pool {
        state: Mutex<State>,
        wake: Condvar,
        done: Condvar,
        /// `State::seq` of the last job opened, readable without the lock
        /// by spinning helpers.
        opened: AtomicU64,
    }

    thread_local! {
        static IS_HELPER: Cell<bool> = const { Cell::new(false) };
    }

    fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pool() -> &'static Pool {
        static P: OnceLock<&'static Pool> = OnceLock::new();
        P.get_or_init(|| {
            let p: &'static Pool = Box::leak(Box::new(Pool {
                state: Mutex::default(),
                wake: Condvar::new(),
                done: Condvar::new(),
                opened: AtomicU64::new(0),
            }));
            for _ in 1..super::threads() {
                std::thread::spawn(move || helper(p));
            }
            p
        })
    }

    /// Leaves the job on drop, also when the job panicked.
    struct Leave(&'static Pool);

    impl Drop for Leave {
        fn drop(&mut self) {
            let mut st = lock(&self.0.state);
            st.active -= 1;
            st.panicked |= std::thread::panicking();
            if st.active == 0 && st.closing {
                self.0.done.notify_all();
            }
        }
    }

    fn helper(p: &'static Pool) {
        IS_HELPER.with(|h| h.set(true));
        let mut seen = 0;
        loop {
            let since = Instant::now();
            // The clock is read every 64 spins: reading it is a call of its own.
            'spin: while since.elapsed() < SPIN {
                for _ in 0..64 {
                    if p.opened.load(Ordering::Acquire) != seen {
                        break 'spin;
                    }
                    std::hint::spin_loop();
                }
            }
            let job = {
                let mut st = lock(&p.state);
                loop {
                    if let Some(job) = st.job.filter(|_| st.seq != seen) {
                        seen = st.seq;
                        st.active += 1;
                        break job;
                    }
                    // A job closed before this helper came is not waited for again.
                    seen = st.seq;
                    st.parked += 1;
                    st = p.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                    st.parked -= 1;
                }
            };
            let _leave = Leave(p);
            job();
        }
    }

    /// Runs `job` on the calling thread and on whichever helpers join in
    /// before it finishes; `job` must split the work itself (it is called
    /// once per participating thread). Runs it on the caller alone when the
    /// pool is busy (another caller, or a call from inside a job).
    pub fn run(job: &(dyn Fn() + Sync)) {
        if IS_HELPER.with(|h| h.get()) {
            return job();
        }
        let p = pool();
        {
            let mut st = lock(&p.state);
            if st.job.is_some() || st.active > 0 {
                drop(st);
                return job();
            }
            // SAFETY: the 'static lifetime is a lie that never escapes this
            // function: helpers only take the reference under the lock while
            // `job` is set, counting themselves in `active`, and below the job
            // is cleared and `active` waited down to 0 before returning (also
            // when `job` panics on this thread, via `Close`).
            let job: Job = unsafe { std::mem::transmute::<&(dyn Fn() + Sync), Job>(job) };
            st.job = Some(job);
            st.seq += 1;
            st.panicked = false;
            p.opened.store(st.seq, Ordering::Release);
            if st.parked > 0 {
                p.wake.notify_all();
            }
        }
        let close = Close(p);
        job();
        drop(close);
    }

    /// Closes the job and waits for the helpers inside it.
    struct Close(&'static Pool);

    impl Drop for Close {
        fn drop(&mut self) {
            let mut st = lock(&self.0.state);
            st.job = None;
            while st.active > 0 {
                st.closing = true;
                st = self.0.done.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            st.closing = false;
            if st.panicked && !std::thread::panicking() {
                panic!("a kernel panicked on a helper thread");
            }
        }
    }
}

/// Maps `f` over `0..n` in parallel and returns the results in order.
pub fn map<R: Send + Default + Clone>(n: usize, work: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let mut out = vec![R::default(); n];
    for_chunks(&mut out, 1, work, |i, c| c[0] = f(i));
    out
}
