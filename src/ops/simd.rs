//! Wider vectors where the CPU has them. The kernels are plain generic Rust
//! that the compiler vectorises; the default x86-64 target only allows SSE2
//! (4 f32 lanes), so each hot inner function is compiled a second time with
//! AVX2 and FMA enabled (8 lanes) and chosen at run time.

use std::sync::atomic::{AtomicBool, Ordering};

static BASELINE_ONLY: AtomicBool = AtomicBool::new(false);

/// Makes every kernel take its baseline variant (`true`) or the best one the
/// CPU supports again (`false`), so that tests can check both on one machine.
/// Both variants compute the same thing, so switching while kernels run on
/// other threads is harmless.
pub fn force_baseline(on: bool) {
    BASELINE_ONLY.store(on, Ordering::Relaxed);
}

/// True when the wide variants run: the CPU supports AVX2 and FMA (cached by
/// std after the first call) and [`force_baseline`] is off.
#[inline]
pub fn avx2() -> bool {
    if BASELINE_ONLY.load(Ordering::Relaxed) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `a·b + c`: one fused instruction in the FMA variant (`F`), a multiply and
/// an add otherwise (where `mul_add` would be a slow library call).
#[inline(always)]
pub fn madd<T: crate::real::Real, const F: bool>(a: T, b: T, c: T) -> T {
    if F { a.mul_add(b, c) } else { a * b + c }
}

/// `multiversion! { fn name<T: Real>(args) => FMA: body }` defines `name`
/// running `body` (an `#[inline(always)]` generic function call, which may
/// use the const `FMA` to pick [`madd`]'s variant) compiled for AVX2 + FMA
/// when [`avx2`] says so, for the baseline target otherwise.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident<T: Real>($($arg:ident: $ty:ty),* $(,)?) => $fma:ident: $body:expr) => {
        $(#[$m])*
        $vis fn $name<T: Real>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn wide<T: Real>($($arg: $ty),*) {
                    const $fma: bool = true;
                    $body
                }
                if $crate::ops::simd::avx2() {
                    // SAFETY: `wide` only needs AVX2 and FMA, which the CPU
                    // was just checked to support.
                    return unsafe { wide::<T>($($arg),*) };
                }
            }
            const $fma: bool = false;
            $body
        }
    };
}
pub(crate) use multiversion;
