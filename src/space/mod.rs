//! Search spaces, recorded onto a [`crate::tape::Tape`]. A space is one
//! file or folder (`darts.rs`, `nb201/`, `width.rs`) and one [`SearchSpace`]
//! implementation:
//! how α and the supernet are recorded, and what architecture α's values
//! stand for at the end of a search. The search algorithms, the feed, the
//! checkpoints and the logs are the same for every space.

pub mod darts;
pub mod eval;
pub mod nb201;
pub mod primitive;
pub mod trainable;
pub mod width;

use crate::error::Result;
use crate::shape::Shape;
use crate::tape::{NodeId, Tape};

/// The spaces `rarts search --space` knows: DARTS' CNN cells (SPEC §3),
/// NAS-Bench-201 / NATS-Bench cells (SPEC §6), the channel widths of a
/// CIFAR ResNet (SPEC §7). (A variant's doc comment would become a line of
/// `--help`: the flags' own help describes them.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SpaceKind {
    #[default]
    Darts,
    Nb201,
    Width,
}

impl SpaceKind {
    pub fn name(self) -> &'static str {
        match self {
            SpaceKind::Darts => "darts",
            SpaceKind::Nb201 => "nb201",
            SpaceKind::Width => "width",
        }
    }
}

/// α as recorded: each matrix `(rows, ops)` with its name (`normal`,
/// `reduce`, `cell`) and its row softmax, which the supernet mixes by.
#[derive(Clone, Debug)]
pub struct Alphas {
    pub params: Vec<(NodeId, &'static str)>,
    pub softmax: Vec<NodeId>,
}

impl Alphas {
    pub fn nodes(&self) -> Vec<NodeId> {
        self.params.iter().map(|p| p.0).collect()
    }
}

/// What a search found: the architecture as text (what `rarts train
/// --genotype` reads) and as JSON with the softmax of α beside it, and a
/// warning where the architecture is degenerate.
#[derive(Clone, Debug, PartialEq)]
pub struct Derived {
    pub text: String,
    pub json: String,
    /// Something about it the user should know before training it.
    pub warning: Option<String>,
}

/// A search space.
pub trait SearchSpace {
    /// Its `--space` value.
    fn kind(&self) -> SpaceKind;
    /// The candidate ops: the columns of every α matrix.
    fn ops(&self) -> &'static [&'static str];
    /// Records α (architecture parameters of `group`).
    fn alphas(&self, t: &mut Tape, group: u32) -> Alphas;
    /// Records the supernet on images `x`, mixing by `a`'s softmaxes; its
    /// weights go to parameter `group`.
    fn supernet(&self, t: &mut Tape, x: NodeId, a: &Alphas, group: u32) -> darts::SuperNet;
    /// A cost of the architecture alone, added to the validation loss (the
    /// width search's multiply-add penalty); none by default.
    fn penalty(&self, t: &mut Tape, a: &Alphas) -> Option<NodeId> {
        let _ = (t, a);
        None
    }
    /// The architecture α's values stand for (one vector per α matrix, in
    /// the order of [`Alphas::params`]).
    fn derive(&self, alphas: &[Vec<f64>]) -> Result<Derived>;
    /// A lower bound of the bytes one supernet's recording and plan take
    /// for batches of `batch` images of `image`, known before anything is
    /// recorded (an absurd plan is refused before its recording alone could
    /// exhaust the memory).
    fn min_bytes(&self, batch: usize, image: Shape) -> u128;
}

/// Parameter group of the weights of the first network (`w`).
pub const GROUP_W: u32 = 0;
/// Parameter group of the weights of the second RARTS network (`y`).
pub const GROUP_Y: u32 = 1;
/// Parameter group of the architecture `α`.
pub const GROUP_ARCH: u32 = 2;
/// Parameter group of the evaluation network's auxiliary head: apart from
/// `w` so that the network's weight count excludes it, as DARTS' does.
pub const GROUP_AUX: u32 = 3;

/// A network trained from scratch: DARTS' evaluation network of a genotype
/// (SPEC §5), or the NB201 network of one cell (SPEC §6, every BN affine).
#[derive(Clone, Debug, PartialEq)]
pub enum NetSpec {
    Darts(eval::EvalNetConfig),
    Nb201(nb201::Nb201Config, nb201::Nb201Cell),
    /// A CIFAR ResNet at chosen widths (SPEC §7).
    Width(width::WidthConfig, width::Widths),
}

impl NetSpec {
    pub fn space(&self) -> SpaceKind {
        match self {
            NetSpec::Darts(_) => SpaceKind::Darts,
            NetSpec::Nb201(..) => SpaceKind::Nb201,
            NetSpec::Width(..) => SpaceKind::Width,
        }
    }

    pub fn classes(&self) -> usize {
        match self {
            NetSpec::Darts(c) => c.classes,
            NetSpec::Nb201(c, _) => c.classes,
            NetSpec::Width(c, _) => c.classes,
        }
    }

    /// The architecture as `--genotype` reads it back.
    pub fn arch(&self) -> String {
        match self {
            NetSpec::Darts(c) => c.genotype.to_text(),
            NetSpec::Nb201(_, cell) => cell.to_arch_str(),
            NetSpec::Width(c, w) => w.to_json(c, None),
        }
    }

    /// A lower bound on the bytes a training plan of this network takes at
    /// `batch` on `image`-sized inputs (the outputs of every cell's nodes,
    /// and the tape's own records): cheap to compute, so that a size that
    /// cannot fit is refused before anything is recorded or allocated.
    pub fn min_bytes(&self, batch: usize, image: Shape) -> u128 {
        let hw0 = (image.h() * image.w()) as u128;
        let b = batch as u128;
        match self {
            NetSpec::Darts(c) => {
                let (mut ch, mut hw, mut elems) = (c.c as u128, hw0, 0u128);
                for layer in 0..c.layers {
                    if layer == c.layers / 3 || layer == 2 * c.layers / 3 {
                        (ch, hw) = (ch * 2, hw / 4);
                    }
                    elems += 4 * b * ch * hw.max(1);
                }
                elems * 4 + c.layers as u128 * (8 << 10)
            }
            NetSpec::Nb201(c, _) => {
                let (mut ch, mut hw, mut elems) = (c.c as u128, hw0, 0u128);
                for stage in 0..3 {
                    if stage > 0 {
                        (ch, hw) = (ch * 2, hw / 4);
                    }
                    elems += c.cells_per_stage as u128 * 3 * b * ch * hw.max(1);
                }
                elems * 4 + 3 * c.cells_per_stage as u128 * (4 << 10)
            }
            // The search network at full widths, of which a trained one keeps
            // at least a quarter of every layer's channels.
            NetSpec::Width(c, _) => width::WidthSpace(c.clone()).min_bytes(batch, image) / 16,
        }
    }

    /// The network's size in words: `C=36, 20 cells`, `C=16, 5 cells per stage`.
    pub fn size(&self) -> String {
        match self {
            NetSpec::Darts(c) => format!("C={}, {} cells", c.c, c.layers),
            NetSpec::Nb201(c, _) => format!("C={}, {} cells per stage", c.c, c.cells_per_stage),
            NetSpec::Width(c, w) => {
                let (params, macs) = c.cost(&w.0);
                format!("ResNet-{}, {params} weights, {macs} multiply-adds", c.depth)
            }
        }
    }

    /// Records the network on images `x`; its weights go to `group`.
    /// Refuses images that do not fit it.
    pub fn record(&self, t: &mut Tape, x: NodeId, group: u32) -> Result<eval::EvalNet> {
        match self {
            NetSpec::Darts(c) => eval::eval_net(t, c, x, group),
            NetSpec::Nb201(c, cell) => {
                let s = t.shape(x);
                if s.c() != c.in_channels
                    || s.h() < 4
                    || s.w() < 4
                    || !s.h().is_multiple_of(4)
                    || !s.w().is_multiple_of(4)
                {
                    crate::bail!(
                        "NB201 network: input is {}×{}×{}; expected {} channels and sides that are positive \
                         multiples of 4 (each of the two residual blocks halves them)",
                        s.c(),
                        s.h(),
                        s.w(),
                        c.in_channels
                    );
                }
                Ok(plain(nb201::trained_net(t, c, x, cell, group)))
            }
            NetSpec::Width(c, w) => {
                let s = t.shape(x);
                let cfg = width::WidthConfig { image: (s.h(), s.w()), ..c.clone() };
                cfg.check()?;
                if s.c() != c.in_channels {
                    crate::bail!("ResNet: input has {} channels; expected {}", s.c(), c.in_channels);
                }
                Ok(plain(width::trained_net(t, &cfg, x, w, group)))
            }
        }
    }
}

/// A network without DARTS' extras (auxiliary head, drop path).
fn plain(n: darts::SuperNet) -> eval::EvalNet {
    eval::EvalNet {
        logits: n.logits,
        weight_params: n.weight_params,
        aux_logits: None,
        aux_params: vec![],
        drop_masks: vec![],
    }
}
