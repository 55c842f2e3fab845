//! Stopping a run cleanly: SIGTERM, SIGINT and SIGUSR1 (what a scheduler
//! sends before it preempts a job or its time runs out, and Ctrl-C) are
//! noted, not obeyed at once; the epoch loop sees the note after the step it
//! is in, writes a checkpoint there and stops, and the process exits with
//! [`EXIT_CHECKPOINTED`]: "checkpointed, run me again with --resume". A
//! second Ctrl-C (SIGINT) before that ends the process at once; a scheduler
//! may send TERM and USR1 both, and they only repeat the request.
//!
//! Two calls of the C library that std links anyway (`signal`, `raise`);
//! the handler only stores the signal's number in an atomic, which is all
//! a handler may safely do.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The exit code of a run that stopped on a signal after writing its
/// checkpoint (EX_TEMPFAIL of sysexits.h: a temporary failure, try again).
pub const EXIT_CHECKPOINTED: i32 = 75;

/// The signals a run stops cleanly on.
pub const SIGINT: i32 = 2;
pub const SIGUSR1: i32 = 10;
pub const SIGTERM: i32 = 15;
const CAUGHT: [i32; 3] = [SIGINT, SIGUSR1, SIGTERM];

/// Environment variable of the test hook: `N` or `N:SIGNAL` raises SIGNAL
/// (TERM, INT, USR1, or KILL for a kill without warning; TERM when not
/// given) in the process itself after
/// step N of the run (1-based, counted across epochs from the run's very
/// first step, resumed or not), as a scheduler would send it.
pub const RAISE_AFTER_STEP: &str = "RARTS_RAISE_AFTER_STEP";

/// Environment variable of the second test hook: every step then takes at
/// least this many more milliseconds, so that a test can send a signal in
/// the middle of a run from outside (a scheduler's `scancel`).
pub const STEP_DELAY_MS: &str = "RARTS_TEST_STEP_DELAY_MS";

/// The signal received and not yet acted on (0: none).
static PENDING: AtomicI32 = AtomicI32::new(0);
/// Set once a run has written its checkpoint and stopped on a signal.
static CHECKPOINTED: AtomicBool = AtomicBool::new(false);

#[cfg(unix)]
mod sys {
    use std::ffi::c_int;

    /// `SIG_DFL`
    pub const DEFAULT: usize = 0;

    unsafe extern "C" {
        pub fn signal(signum: c_int, handler: usize) -> usize;
        pub fn raise(sig: c_int) -> c_int;
    }
}

#[cfg(unix)]
extern "C" fn on_signal(sig: std::ffi::c_int) {
    if PENDING.swap(sig, Ordering::SeqCst) != 0 && sig == SIGINT {
        // Ctrl-C twice: the default action (termination), now.
        // SAFETY: `signal` and `raise` are async-signal-safe.
        unsafe {
            sys::signal(sig, sys::DEFAULT);
            sys::raise(sig);
        }
    }
}

/// Restores the default action of SIGPIPE, which the Rust runtime ignores:
/// `rarts info | head` then ends quietly instead of panicking in `println!`.
pub fn default_sigpipe() {
    const SIGPIPE: i32 = 13;
    #[cfg(unix)]
    // SAFETY: a valid signal number and SIG_DFL, before any other thread exists.
    unsafe {
        sys::signal(SIGPIPE, sys::DEFAULT);
    }
}

/// Catches SIGTERM, SIGINT and SIGUSR1 from now on (see the module's
/// documentation). Without it they end the process at once, as usual.
pub fn catch() {
    #[cfg(unix)]
    for sig in CAUGHT {
        // SAFETY: installs a handler that only touches an atomic.
        unsafe {
            sys::signal(sig, on_signal as extern "C" fn(std::ffi::c_int) as usize);
        }
    }
}

/// The signal received since [`catch`], if any (not cleared).
pub fn pending() -> Option<i32> {
    match PENDING.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Notes that the run wrote its checkpoint and stopped on a signal: the
/// process should exit with [`EXIT_CHECKPOINTED`].
pub fn set_checkpointed() {
    CHECKPOINTED.store(true, Ordering::SeqCst);
}

/// Whether a run stopped on a signal with its checkpoint written.
pub fn checkpointed() -> bool {
    CHECKPOINTED.load(Ordering::SeqCst)
}

/// `SIGTERM`, `SIGUSR1`, … for a message.
pub fn name(sig: i32) -> String {
    match sig {
        SIGINT => "SIGINT".into(),
        SIGUSR1 => "SIGUSR1".into(),
        SIGTERM => "SIGTERM".into(),
        s => format!("signal {s}"),
    }
}

/// The test hooks as read from the environment: the delay in ms, and the
/// step after which to raise which signal; or what is wrong with them.
type Hooks = Result<(Option<u64>, Option<(usize, i32)>), String>;

/// The test hooks, after step `done` (1-based, from the run's first step):
/// waits [`STEP_DELAY_MS`], then raises [`RAISE_AFTER_STEP`]'s signal if
/// `done` is its step. A value that does not parse is an error naming the
/// variable.
pub fn test_hook(done: usize) -> crate::error::Result<()> {
    // Read once per process: the loop calls this after every step.
    static HOOKS: std::sync::OnceLock<Hooks> = std::sync::OnceLock::new();
    let (delay, raise) = HOOKS.get_or_init(read_hooks).clone().map_err(crate::error::Error)?;
    if let Some(ms) = delay {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    if let Some((step, sig)) = raise
        && step == done
    {
        #[cfg(unix)]
        // SAFETY: raising a signal whose handler `catch` installed, or
        // whose default action is wanted.
        unsafe {
            sys::raise(sig);
        }
    }
    Ok(())
}

/// The test hooks' variables: the delay in ms, the step and the signal.
fn read_hooks() -> Hooks {
    let delay = match std::env::var(STEP_DELAY_MS) {
        Ok(ms) => {
            Some(ms.trim().parse().map_err(|_| format!("{STEP_DELAY_MS}={ms}: expected a number of milliseconds"))?)
        }
        Err(_) => None,
    };
    let Ok(v) = std::env::var(RAISE_AFTER_STEP) else { return Ok((delay, None)) };
    let (step, sig) = v.split_once(':').unwrap_or((&v, "TERM"));
    let bad = || format!("{RAISE_AFTER_STEP}={v}: expected STEP or STEP:TERM|INT|USR1|KILL");
    let step: usize = step.trim().parse().map_err(|_| bad())?;
    let sig = match sig.trim() {
        "TERM" => SIGTERM,
        "INT" => SIGINT,
        "USR1" => SIGUSR1,
        "KILL" => 9,
        _ => return Err(bad()),
    };
    Ok((delay, Some((step, sig))))
}
