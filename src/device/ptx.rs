//! What a kernel's parameter list is, read from PTX, and what a launch's
//! argument list is, from its arguments' types: the two sides of the check
//! every CUDA launch makes (`Cuda::check_params`).

use std::collections::HashMap;

use cudarc::driver::CudaSlice;

/// Each `.entry`'s parameter sizes in bytes, from PTX text:
/// `.param .u64 x` is 8, `.param .f32 x` 4, `.param .align 8 .b8 x[800]` 800.
pub fn params(ptx: &str) -> HashMap<String, Vec<usize>> {
    let mut out = HashMap::new();
    let mut rest = ptx;
    while let Some(at) = rest.find(".entry ") {
        rest = &rest[at + ".entry ".len()..];
        let (Some(open), Some(close)) = (rest.find('('), rest.find(')')) else { break };
        let name = rest[..open].trim().to_string();
        let sizes = rest[open + 1..close]
            .split(',')
            .filter(|d| d.contains(".param"))
            .map(|d| {
                if let Some(lb) = d.find('[') {
                    return d[lb + 1..].trim_end_matches(|c: char| !c.is_ascii_digit()).parse().unwrap_or(0);
                }
                let ty = d.split_whitespace().find(|w| w.len() > 2 && w.starts_with('.') && w != &".param");
                ty.and_then(|t| t[2..].parse::<usize>().ok()).map_or(0, |bits| bits / 8)
            })
            .collect();
        out.insert(name, sizes);
        rest = &rest[close..];
    }
    out
}

/// How many bytes a launch argument puts in the kernel's parameter list: a
/// device buffer its address, a scalar or a `#[repr(C)]` struct its value.
pub(crate) trait ParamBytes {
    const BYTES: usize;
}

impl<T> ParamBytes for CudaSlice<T> {
    const BYTES: usize = 8;
}

macro_rules! param_bytes_of_values {
    ($($t:ty),*) => { $(impl ParamBytes for $t { const BYTES: usize = std::mem::size_of::<$t>(); })* };
}
param_bytes_of_values!(i32, u32, i64, u64, f32, f64);

/// The bytes `arg` passes (see [`ParamBytes`]).
pub(crate) fn param_bytes<T: ParamBytes>(_arg: &T) -> usize {
    T::BYTES
}

#[cfg(test)]
mod tests {
    use super::params as ptx_params;

    /// The sizes of each `.entry`'s parameters, as nvcc writes them.
    #[test]
    fn ptx_parameters_are_sized() {
        let ptx = ".visible .entry fill_f32(\n\t.param .u64 fill_f32_param_0,\n\t.param .f32 fill_f32_param_1,\n\t\
                   .param .u64 fill_f32_param_2\n)\n{\n}\n.visible .entry mix(\n\t.param .align 8 .b8 mix_param_0[800],\n\t\
                   .param .u32 mix_param_1\n)\n{\n}\n";
        let p = ptx_params(ptx);
        assert_eq!(p["fill_f32"], vec![8, 4, 8]);
        assert_eq!(p["mix"], vec![800, 4]);
    }
}
