//! A kernel's scalar arguments as one `#[repr(C)]` struct, declared once in
//! Rust (in its family's `mod.rs`, with `kernel_params!`) and once in the
//! family's `.cu`, and passed whole. The two declarations cannot drift
//! apart unnoticed: the `.cu` pins its struct's size and every field's
//! offset with `static_assert`s (a field changed there alone fails the
//! kernel build), and a test (`tests/kernel_params.rs`) reads the `.cu`'s
//! struct and its asserts and compares each field's name, C type and
//! offset, and the size, with the Rust struct's (a field changed here alone
//! fails it). The launch itself checks the struct's size against the
//! kernel's PTX parameter (`Cuda::check_params`).

/// What the layout test compares: a params struct's name, size and fields.
pub trait KernelParams {
    /// The struct's name, the same on both sides.
    const NAME: &'static str;
    /// Each field's name, C type ([`c_type`]) and offset, in order.
    fn fields() -> Vec<(&'static str, String, usize)>;
    /// The struct's size in bytes.
    fn size() -> usize;
}

/// A device address in a params struct (a table of buffers): C's `T*`.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DevPtr(pub u64);

/// The C type of a field's Rust type, as the layout test reads C: `int`,
/// `unsigned`, `float`, `double`, `long long`, `unsigned long long`, `ptr`
/// (any `T*`), and arrays as `int[MIX_MAX]` (the length as written).
pub fn c_type(rust: &str) -> String {
    let rust = rust.replace(' ', "");
    if let Some(inner) = rust.strip_prefix('[').and_then(|r| r.strip_suffix(']'))
        && let Some((elem, len)) = inner.split_once(';')
    {
        return format!("{}[{len}]", c_type(elem));
    }
    match rust.as_str() {
        "i32" => "int",
        "u32" => "unsigned",
        "f32" => "float",
        "f64" => "double",
        "i64" => "long long",
        "u64" => "unsigned long long",
        "DevPtr" => "ptr",
        _ => "?",
    }
    .to_string()
}

/// Declares a kernel's params struct: `#[repr(C)]`, passed to a launch by
/// value ([`cudarc::driver::DeviceRepr`]), sized for the launch's PTX check,
/// and described for the layout test ([`KernelParams`]). Fields are `i32`,
/// `u32`, `f32`, `f64`, `i64`, `u64`, [`DevPtr`], or arrays of them.
macro_rules! kernel_params {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl Default for $name {
            /// Every field 0 (and every address null).
            fn default() -> Self {
                // SAFETY: every field is a number or an address, for which
                // all-zero bits are a valid value.
                unsafe { std::mem::zeroed() }
            }
        }

        // SAFETY: a `#[repr(C)]` struct of plain numbers, which the kernel
        // reads as the same C struct (checked by the layout test).
        unsafe impl cudarc::driver::DeviceRepr for $name {}

        impl $crate::device::ptx::ParamBytes for $name {
            const BYTES: usize = std::mem::size_of::<$name>();
        }

        impl $crate::device::kernel_params::KernelParams for $name {
            const NAME: &'static str = stringify!($name);
            fn fields() -> Vec<(&'static str, String, usize)> {
                vec![$((
                    stringify!($field),
                    $crate::device::kernel_params::c_type(stringify!($ty)),
                    std::mem::offset_of!($name, $field),
                ),)*]
            }
            fn size() -> usize {
                std::mem::size_of::<$name>()
            }
        }
    };
}
pub(crate) use kernel_params;

/// One params struct's layout, for the layout test.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub name: &'static str,
    pub size: usize,
    pub fields: Vec<(&'static str, String, usize)>,
}

/// The layout of `T`.
pub fn layout<T: KernelParams>() -> Layout {
    Layout { name: T::NAME, size: T::size(), fields: T::fields() }
}
