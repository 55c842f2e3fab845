//! Search spaces, recorded onto a [`crate::tape::Tape`].

pub mod darts;
pub mod eval;

/// Parameter group of the weights of the first network (`w`).
pub const GROUP_W: u32 = 0;
/// Parameter group of the weights of the second RARTS network (`y`).
pub const GROUP_Y: u32 = 1;
/// Parameter group of the architecture `α`.
pub const GROUP_ARCH: u32 = 2;
/// Parameter group of the evaluation network's auxiliary head: apart from
/// `w` so that the network's weight count excludes it, as DARTS' does.
pub const GROUP_AUX: u32 = 3;
