//! DARTS' evaluation network (SPEC §5; quark0/darts `cnn/model.py`,
//! `NetworkCIFAR`): the cells a genotype names, stacked L deep and trained
//! from scratch. Unlike the search network every BN is affine, pools carry no
//! BN, and each node is the plain sum of its two ops.
//!
//! Not recorded yet: drop path (its place is [`drop_path`], which every
//! non-identity op's output passes through) and the auxiliary head (after
//! cell 2L/3, where the layer loop of [`eval_net`] marks it).

use crate::bail;
use crate::error::{Error, Result};
use crate::genotype::{CellGenes, Genotype, STEPS};
use crate::space::darts::{PRIMITIVES, factorized_reduce, primitive, relu_conv_bn};
use crate::tape::{NodeId, Tape};

/// The stem has `STEM_MULTIPLIER · C` channels.
pub const STEM_MULTIPLIER: usize = 3;

/// Shape of the evaluation network.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalNetConfig {
    /// Initial channels C.
    pub c: usize,
    /// Number of cells L; cells L/3 and 2L/3 reduce.
    pub layers: usize,
    pub classes: usize,
    pub in_channels: usize,
    /// The auxiliary classifier after cell 2L/3 (DARTS' `AuxiliaryHeadCIFAR`).
    /// Not recorded yet: [`eval_net`] refuses `true`.
    pub auxiliary: bool,
    pub genotype: Genotype,
}

impl EvalNetConfig {
    /// No auxiliary head.
    pub fn new(c: usize, layers: usize, classes: usize, in_channels: usize, genotype: Genotype) -> Self {
        EvalNetConfig { c, layers, classes, in_channels, auxiliary: false, genotype }
    }

    pub fn is_reduction(&self, layer: usize) -> bool {
        layer == self.layers / 3 || layer == 2 * self.layers / 3
    }

    /// How many cells reduce (two, or one when L = 1 makes L/3 = 2L/3).
    pub fn reductions(&self) -> usize {
        (0..self.layers).filter(|&l| self.is_reduction(l)).count()
    }
}

/// The nodes of one recorded evaluation network.
#[derive(Clone, Debug)]
pub struct EvalNet {
    /// `(n, classes)`
    pub logits: NodeId,
    pub weight_params: Vec<NodeId>,
}

/// Records the evaluation network on input `x` `(n, in_channels, h, w)`;
/// its weights go to parameter `group`. Refuses an invalid genotype, an
/// input whose sides do not halve evenly at every reduction, and (for now)
/// the auxiliary head.
pub fn eval_net(t: &mut Tape, cfg: &EvalNetConfig, x: NodeId, group: u32) -> Result<EvalNet> {
    if cfg.auxiliary {
        bail!("evaluation network: the auxiliary head is not implemented yet; record it without");
    }
    if cfg.c == 0 || cfg.layers == 0 || cfg.classes == 0 {
        bail!(
            "evaluation network: C, layers and classes must be positive (got {}, {}, {})",
            cfg.c,
            cfg.layers,
            cfg.classes
        );
    }
    cfg.genotype.check(STEPS).map_err(|e| Error(format!("evaluation network: genotype: {e}")))?;
    let s = t.shape(x);
    let halvings = 1 << cfg.reductions();
    if s.c() != cfg.in_channels || !s.h().is_multiple_of(halvings) || !s.w().is_multiple_of(halvings) {
        bail!(
            "evaluation network: input is {}×{}×{}; expected {} channels and sides divisible by {halvings} \
             (each of the {} reduction cells halves them)",
            s.c(),
            s.h(),
            s.w(),
            cfg.in_channels,
            cfg.reductions()
        );
    }

    let first = t.nodes.len();
    let c_stem = STEM_MULTIPLIER * cfg.c;
    let stem = t.conv(x, c_stem, 3, 1, 1, 1, 1, false, group, "stem.conv");
    let stem = t.batch_norm(stem, true, group, "stem.bn");
    let (mut s0, mut s1) = (stem, stem);
    let mut c_curr = cfg.c;
    let mut reduction_prev = false;
    let g = &cfg.genotype;
    for layer in 0..cfg.layers {
        let reduction = cfg.is_reduction(layer);
        if reduction {
            c_curr *= 2;
        }
        let (genes, concat) = if reduction { (&g.reduce, &g.reduce_concat) } else { (&g.normal, &g.normal_concat) };
        let cell = EvalCell { c: c_curr, reduction, reduction_prev, genes, concat };
        let out = cell.record(t, s0, s1, group, &format!("cells.{layer}"))?;
        // The auxiliary head reads `out` of layer 2L/3 here.
        (s0, s1) = (s1, out);
        reduction_prev = reduction;
    }
    let pooled = t.global_avg_pool(s1);
    let logits = t.linear(pooled, cfg.classes, group, "classifier");
    let weight_params = t.params(group).into_iter().filter(|&p| p >= first).collect();
    Ok(EvalNet { logits, weight_params })
}

/// One evaluation cell: the genes of one cell type.
#[derive(Clone, Copy, Debug)]
pub struct EvalCell<'g> {
    pub c: usize,
    pub reduction: bool,
    pub reduction_prev: bool,
    /// `(op, input state)`, two per node.
    pub genes: &'g CellGenes,
    /// States concatenated into the output.
    pub concat: &'g [usize],
}

impl EvalCell<'_> {
    /// Records the cell on states `s0`, `s1`; returns the concatenation of
    /// the `concat` states (`concat.len()·c` channels).
    pub fn record(&self, t: &mut Tape, s0: NodeId, s1: NodeId, group: u32, name: &str) -> Result<NodeId> {
        let c = self.c;
        let p0 = if self.reduction_prev {
            factorized_reduce(t, s0, c, true, group, &format!("{name}.preprocess0"))
        } else {
            relu_conv_bn(t, s0, c, true, group, &format!("{name}.preprocess0"))
        };
        let p1 = relu_conv_bn(t, s1, c, true, group, &format!("{name}.preprocess1"));
        let mut states = vec![p0, p1];
        for pair in self.genes.chunks(2) {
            let mut h = Vec::with_capacity(2);
            for &(op, j) in pair {
                let gene = 2 * (states.len() - 2) + h.len();
                let Some(&x) = states.get(j) else {
                    bail!("{name}: gene {gene} ('{op}', {j}) reads state {j}, but only {} exist", states.len());
                };
                let stride = if self.reduction && j < 2 { 2 } else { 1 };
                let y = PRIMITIVES
                    .iter()
                    .position(|p| *p == op)
                    .and_then(|k| primitive(t, k, x, c, stride, true, group, &format!("{name}.ops.{gene}")))
                    .ok_or_else(|| {
                        Error(format!("{name}: gene {gene}: '{op}' is not an op of the evaluation network"))
                    })?;
                // `skip_connect` at stride 1 is the state itself: no drop path.
                h.push(if y == x { y } else { drop_path(t, y) });
            }
            if h.len() != 2 {
                bail!("{name}: a node has {} genes; expected 2", h.len());
            }
            states.push(t.add(h[0], h[1]));
        }
        let mut out = Vec::with_capacity(self.concat.len());
        for &i in self.concat {
            match states.get(i) {
                Some(&s) if i >= 2 => out.push(s),
                _ => bail!("{name}: concat names state {i}; expected intermediate nodes 2..{}", states.len()),
            }
        }
        if out.is_empty() {
            bail!("{name}: concat is empty");
        }
        Ok(t.concat(&out))
    }
}

/// Drop path's place (SPEC §5: every non-identity op's output, while
/// training). Recorded as the identity until the tape has a drop-path op.
fn drop_path(_t: &mut Tape, y: NodeId) -> NodeId {
    y
}
