//! A global allocator that asks Linux to back large buffers with 2 MiB
//! transparent huge pages.
//!
//! A training step streams over gigabytes of activations and gradients in
//! buffers of a few MB. With 4 KiB pages every page is a TLB miss and the
//! hardware prefetchers stop at each page boundary; where transparent huge
//! pages are enabled only on request (`/sys/kernel/mm/transparent_hugepage/
//! enabled` = `madvise`, a common default) nothing asks for them. Blocks of
//! at least [`THRESHOLD`] bytes are therefore aligned to 2 MiB, rounded up to
//! whole huge pages and marked `MADV_HUGEPAGE` before anything touches them.
//! Everything else goes to the system allocator unchanged; where the advice
//! is refused the block is ordinary memory.

use std::alloc::{GlobalAlloc, Layout, System};

/// Huge-page size on x86-64 and aarch64 Linux.
const HUGE: usize = 2 << 20;
/// Smallest block that gets huge pages (half a huge page, so that rounding
/// up at most doubles a block).
pub const THRESHOLD: usize = HUGE / 2;

pub struct HugeAlloc;

/// The layout a large block is allocated with: 2 MiB aligned, whole pages.
fn huge(layout: Layout) -> Option<Layout> {
    if layout.size() < THRESHOLD {
        return None;
    }
    Layout::from_size_align(layout.size().div_ceil(HUGE) * HUGE, HUGE.max(layout.align())).ok()
}

#[cfg(target_os = "linux")]
fn advise(p: *mut u8, len: usize) {
    unsafe extern "C" {
        fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: i32) -> i32;
    }
    const MADV_HUGEPAGE: i32 = 14;
    // SAFETY: [p, p + len) is a block this allocator just obtained; the
    // advice changes how it is backed, never its contents. A refusal
    // (kernel without THP) leaves ordinary pages, which is fine.
    unsafe {
        madvise(p.cast(), len, MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_: *mut u8, _: usize) {}

// SAFETY: every block is obtained from and returned to `System` with the
// same layout (`huge` is a pure function of the caller's layout).
unsafe impl GlobalAlloc for HugeAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract (non-zero size) carries over.
        unsafe {
            match huge(layout) {
                None => System.alloc(layout),
                Some(l) => {
                    let p = System.alloc(l);
                    if !p.is_null() {
                        advise(p, l.size());
                    }
                    p
                }
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`; the block is zeroed only after the advice,
        // so that the first touch already faults in huge pages.
        unsafe {
            match huge(layout) {
                None => System.alloc_zeroed(layout),
                Some(_) => {
                    let p = self.alloc(layout);
                    if !p.is_null() {
                        std::ptr::write_bytes(p, 0, layout.size());
                    }
                    p
                }
            }
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // SAFETY: p came from `alloc` with this layout, so from System with `huge(layout)` or `layout`.
        unsafe { System.dealloc(p, huge(layout).unwrap_or(layout)) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract; a block that stays small keeps
        // System's realloc, anything else is copied.
        unsafe {
            let new = Layout::from_size_align_unchecked(new_size, layout.align());
            if huge(layout).is_none() && huge(new).is_none() {
                return System.realloc(p, layout, new_size);
            }
            let q = self.alloc(new);
            if !q.is_null() {
                std::ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                self.dealloc(p, layout);
            }
            q
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_blocks_are_aligned_zeroed_and_survive_realloc() {
        let a = HugeAlloc;
        // SAFETY: every block is used within its layout and freed with it.
        unsafe {
            let l = Layout::from_size_align(3 * THRESHOLD + 5, 4).unwrap();
            let p = a.alloc_zeroed(l);
            assert!(!p.is_null());
            assert_eq!(p as usize % HUGE, 0, "large blocks start on a huge page");
            assert!(std::slice::from_raw_parts(p, l.size()).iter().all(|&b| b == 0));
            a.dealloc(p, l);

            // small → large → larger → small, the contents kept each time.
            let small = Layout::from_size_align(1000, 8).unwrap();
            let mut p = a.alloc(small);
            for i in 0..1000 {
                *p.add(i) = (i % 251) as u8;
            }
            let mut size = small.size();
            for new_size in [THRESHOLD + 1, 5 * THRESHOLD, 700] {
                p = a.realloc(p, Layout::from_size_align(size, 8).unwrap(), new_size);
                assert!(!p.is_null());
                assert!((0..new_size.min(1000)).all(|i| *p.add(i) == (i % 251) as u8), "realloc to {new_size}");
                size = new_size;
            }
            a.dealloc(p, Layout::from_size_align(size, 8).unwrap());
        }
    }
}
