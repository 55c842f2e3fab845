//! [`Op`]: every op a tape records, one line each. Each op is written in
//! its family's `op.rs` (`src/ops/<family>/op.rs`): its struct, the method
//! that records it, its forward and its backward rule.

use crate::backend::Backend;
use crate::error::Result;
use crate::ops::node::{Bwd, Fwd, Node, NodeId, Run, Variant};
use crate::ops::{bn, conv, elementwise, layout, linear, pool, softmax};

/// The op enum, with `From` and [`Variant`] for each op struct and the
/// dispatch of [`Node`] and [`Run`] to them.
macro_rules! ops {
    ($($name:ident($ty:ty),)*) => {
        #[derive(Clone, Debug)]
        pub enum Op {
            $($name($ty),)*
        }

        impl Op {
            /// The op's nodes ([`Node`]).
            pub fn node(&self) -> &dyn Node {
                match self {
                    $(Op::$name(op) => op,)*
                }
            }

            /// Its forward ([`Run::forward`]).
            pub fn forward<B: Backend>(&self, io: Fwd<'_, B>, out: &mut B::Buf) -> Result<()> {
                match self {
                    $(Op::$name(op) => op.forward(io, out),)*
                }
            }

            /// Its backward ([`Run::backward`]).
            pub fn backward<B: Backend>(&self, io: &mut Bwd<'_, B>, dy: &B::Buf) -> Result<()> {
                match self {
                    $(Op::$name(op) => op.backward(io, dy),)*
                }
            }
        }

        $(
            impl From<$ty> for Op {
                fn from(op: $ty) -> Self {
                    Op::$name(op)
                }
            }

            impl Variant<$ty> for Op {
                fn peek(&self) -> Option<&$ty> {
                    match self {
                        Op::$name(op) => Some(op),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }
            }
        )*
    };
}

ops! {
    Conv2d(conv::Conv2d),
    Chain(conv::Chain),
    MaxPool(pool::MaxPool),
    AvgPool(pool::AvgPool),
    BatchNorm(bn::BatchNorm),
    Relu(elementwise::Relu),
    Combine(elementwise::Combine),
    Mul(elementwise::Mul),
    MaskedSum(elementwise::MaskedSum),
    Mix(elementwise::Mix),
    ChannelScale(elementwise::ChannelScale),
    Zeros(elementwise::Zeros),
    SumAll(elementwise::SumAll),
    SoftmaxRows(softmax::SoftmaxRows),
    CrossEntropy(softmax::CrossEntropy),
    Concat(layout::Concat),
    Slice(layout::Slice),
    Shift(layout::Shift),
    GlobalAvgPool(layout::GlobalAvgPool),
    Linear(linear::Linear),
}

impl Op {
    /// The node this op writes.
    pub fn output(&self) -> NodeId {
        self.node().output()
    }

    /// The nodes this op reads and can differentiate into.
    pub fn inputs(&self) -> Vec<NodeId> {
        self.node().inputs()
    }

    /// A short family name, for profiles.
    pub fn family(&self) -> &'static str {
        self.node().family()
    }

    /// Whether its backward can overwrite input `x`'s gradient ([`Node::overwrites`]).
    pub fn overwrites(&self, x: NodeId) -> bool {
        self.node().overwrites(x)
    }
}
