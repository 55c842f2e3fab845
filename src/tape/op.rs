//! [`Op`]: every op a tape records, with its inputs, its output and the
//! op family it belongs to.

use crate::ops::{bn::BnGeom, conv::ConvGeom, layout::ChannelSlice, pool::PoolGeom};

use super::{NodeId, Term};

#[derive(Clone, Debug)]
pub enum Op {
    Conv2d {
        x: NodeId,
        w: NodeId,
        out: NodeId,
        geom: ConvGeom,
    },
    MaxPool {
        x: NodeId,
        out: NodeId,
        geom: PoolGeom,
    },
    AvgPool {
        x: NodeId,
        out: NodeId,
        geom: PoolGeom,
    },
    /// `saved` is an auxiliary buffer of 2·c: batch mean and 1/std.
    BatchNorm {
        x: NodeId,
        out: NodeId,
        affine: Option<(NodeId, NodeId)>,
        running: (NodeId, NodeId),
        saved: usize,
        geom: BnGeom,
    },
    Relu {
        x: NodeId,
        out: NodeId,
    },
    /// `out = Σ c_i · x_i` (add, subtract, scale by a constant).
    Combine {
        terms: Vec<(NodeId, f32)>,
        out: NodeId,
    },
    Mul {
        a: NodeId,
        b: NodeId,
        out: NodeId,
    },
    /// `out = Σ_t x_t · mask_t[n]` (`mask_t` absent: 1): a node of an
    /// evaluation cell, the sum of its ops with DARTS' drop path applied as
    /// they are added (per-sample multipliers, 0 or 1/keep, in input nodes).
    /// No gradient into the masks.
    MaskedSum {
        terms: Vec<(NodeId, Option<NodeId>)>,
        out: NodeId,
    },
    /// `out = Σ w[idx] · x` over its terms: a mixed edge, or all mixed edges
    /// into one node, with `w` the softmax of α. Absent terms (`none`) are zero.
    Mix {
        terms: Vec<Term>,
        w: NodeId,
        out: NodeId,
    },
    SoftmaxRows {
        x: NodeId,
        out: NodeId,
        rows: usize,
        cols: usize,
    },
    /// Concatenation along channels, per group when `groups` > 1: each
    /// tensor is `groups` blocks of channels (networks side by side), and
    /// block g of the output is block g of every input, in order.
    Concat {
        xs: Vec<NodeId>,
        out: NodeId,
        groups: usize,
    },
    /// `out[n, ch, …] = x[n, ch, …] · m[ch mod cm]`, `m` of `cm` values: a
    /// factor per channel (the width search's mask mix).
    ChannelScale {
        x: NodeId,
        m: NodeId,
        out: NodeId,
    },
    /// `out = x[:, off:off + c]` (`slice.c_part` channels of `slice.c_whole`).
    Slice {
        x: NodeId,
        out: NodeId,
        slice: ChannelSlice,
    },
    /// `out = x[:, :, 1:, 1:]`
    Shift {
        x: NodeId,
        out: NodeId,
    },
    Zeros {
        out: NodeId,
    },
    GlobalAvgPool {
        x: NodeId,
        out: NodeId,
    },
    Linear {
        x: NodeId,
        w: NodeId,
        b: Option<NodeId>,
        out: NodeId,
    },
    /// Mean softmax cross-entropy; `probs` is an auxiliary buffer of n·k.
    CrossEntropy {
        logits: NodeId,
        labels: NodeId,
        out: NodeId,
        probs: usize,
    },
    SumAll {
        x: NodeId,
        out: NodeId,
    },
}

impl Op {
    /// The node this op writes.
    pub fn output(&self) -> NodeId {
        use Op::*;
        match self {
            Conv2d { out, .. }
            | MaxPool { out, .. }
            | AvgPool { out, .. }
            | BatchNorm { out, .. }
            | Relu { out, .. } => *out,
            Combine { out, .. } | Mul { out, .. } | Mix { out, .. } | SoftmaxRows { out, .. } | Concat { out, .. } => {
                *out
            }
            MaskedSum { out, .. } => *out,
            Shift { out, .. } | Zeros { out } | GlobalAvgPool { out, .. } | Linear { out, .. } => *out,
            Slice { out, .. } | ChannelScale { out, .. } => *out,
            CrossEntropy { out, .. } | SumAll { out, .. } => *out,
        }
    }

    /// The nodes this op reads and can differentiate into (not labels,
    /// not running statistics).
    pub fn inputs(&self) -> Vec<NodeId> {
        use Op::*;
        match self {
            Conv2d { x, w, .. } => vec![*x, *w],
            MaxPool { x, .. } | AvgPool { x, .. } | Relu { x, .. } | Shift { x, .. } | Slice { x, .. } => vec![*x],
            GlobalAvgPool { x, .. } | SoftmaxRows { x, .. } | SumAll { x, .. } => vec![*x],
            BatchNorm { x, affine, .. } => {
                let mut v = vec![*x];
                if let Some((gamma, beta)) = affine {
                    v.extend([*gamma, *beta]);
                }
                v
            }
            Combine { terms, .. } => terms.iter().map(|t| t.0).collect(),
            // The masks are data, like labels.
            MaskedSum { terms, .. } => terms.iter().map(|t| t.0).collect(),
            Mul { a, b, .. } => vec![*a, *b],
            ChannelScale { x, m, .. } => vec![*x, *m],
            Mix { terms, w, .. } => terms.iter().map(|t| t.x).chain([*w]).collect(),
            Concat { xs, .. } => xs.clone(),
            Zeros { .. } => vec![],
            Linear { x, w, b, .. } => [Some(*x), Some(*w), *b].into_iter().flatten().collect(),
            CrossEntropy { logits, .. } => vec![*logits],
        }
    }

    /// A short family name, for profiles.
    pub fn family(&self) -> &'static str {
        use Op::*;
        match self {
            Conv2d { geom, .. } if geom.groups > 1 && geom.groups == geom.cin && geom.cin == geom.cout => {
                "conv_depthwise"
            }
            Conv2d { geom, .. } if geom.k == 1 => "conv_1x1",
            Conv2d { .. } => "conv_dense",
            MaxPool { .. } => "max_pool",
            AvgPool { .. } => "avg_pool",
            BatchNorm { .. } => "batch_norm",
            Relu { .. } => "relu",
            Combine { .. } => "combine",
            Mul { .. } => "mul",
            MaskedSum { .. } => "masked_sum",
            Mix { .. } => "mix",
            SoftmaxRows { .. } => "softmax",
            Concat { .. } => "concat",
            Slice { .. } => "slice",
            ChannelScale { .. } => "channel_scale",
            Shift { .. } => "shift",
            Zeros { .. } => "zeros",
            GlobalAvgPool { .. } => "global_avg_pool",
            Linear { .. } => "linear",
            CrossEntropy { .. } => "cross_entropy",
            SumAll { .. } => "sum",
        }
    }
}
