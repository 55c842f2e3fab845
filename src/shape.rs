//! Shapes are always four dimensions, NCHW. A matrix (rows, cols) is
//! `[rows, cols, 1, 1]`, a vector of n is `[n, 1, 1, 1]`, a scalar `[1, 1, 1, 1]`.

use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Shape(pub [usize; 4]);

impl Shape {
    pub const fn nchw(n: usize, c: usize, h: usize, w: usize) -> Self {
        Shape([n, c, h, w])
    }
    pub const fn mat(rows: usize, cols: usize) -> Self {
        Shape([rows, cols, 1, 1])
    }
    pub const fn vec(n: usize) -> Self {
        Shape([n, 1, 1, 1])
    }
    pub const fn scalar() -> Self {
        Shape([1, 1, 1, 1])
    }
    pub fn n(&self) -> usize {
        self.0[0]
    }
    pub fn c(&self) -> usize {
        self.0[1]
    }
    pub fn h(&self) -> usize {
        self.0[2]
    }
    pub fn w(&self) -> usize {
        self.0[3]
    }
    /// Pixels per channel plane.
    pub fn hw(&self) -> usize {
        self.0[2] * self.0[3]
    }
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [n, c, h, w] = self.0;
        write!(f, "({n}, {c}, {h}, {w})")
    }
}
