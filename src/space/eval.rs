//! DARTS' evaluation network (SPEC §5; quark0/darts `cnn/model.py`,
//! `NetworkCIFAR`): the cells a genotype names, stacked L deep and trained
//! from scratch. Unlike the search network every BN is affine, pools carry no
//! BN, and each node is the plain sum of its two ops.
//!
//! Training extras, both optional in [`EvalNetConfig`]: drop path on every
//! non-identity op's output (DARTS' `utils.drop_path`, one mask input per
//! op, drawn by [`fill_drop_masks`]) and the auxiliary head after cell 2L/3
//! (`AuxiliaryHeadCIFAR`).

use rand::Rng;

use crate::backend::Backend;
use crate::bail;
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::genotype::{CellGenes, Genotype, STEPS};
use crate::ops::conv::ConvSpec;
use crate::ops::record::*;
use crate::shape::Shape;
use crate::space::GROUP_AUX;
use crate::space::darts::{Primitive, factorized_reduce, primitive, relu_conv_bn};
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
    /// It needs an 8×8 map there (32×32 inputs with two reductions).
    pub auxiliary: bool,
    /// Drop path on every non-identity op's output. When false nothing of it
    /// is recorded (no mask inputs, no ops): evaluation and training without
    /// drop path pay nothing.
    pub drop_path: bool,
    pub genotype: Genotype,
}

impl EvalNetConfig {
    /// No auxiliary head, no drop path.
    pub fn new(c: usize, layers: usize, classes: usize, in_channels: usize, genotype: Genotype) -> Self {
        EvalNetConfig { c, layers, classes, in_channels, auxiliary: false, drop_path: false, genotype }
    }

    /// The cell the auxiliary head reads: 2L/3, the second reduction (DARTS'
    /// `i == 2 * self._layers // 3`).
    pub fn aux_layer(&self) -> usize {
        2 * self.layers / 3
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
    /// The main network's weights (parameter `group`), without the
    /// auxiliary head: what DARTS counts as the model's size.
    pub weight_params: Vec<NodeId>,
    /// `(n, classes)` logits of the auxiliary head, when configured. DARTS
    /// adds `0.4 ·` its cross-entropy to the loss while training only.
    pub aux_logits: Option<NodeId>,
    /// The auxiliary head's weights. They are in their own parameter group,
    /// [`GROUP_AUX`], so that `tape.numel(group)` stays DARTS' weight count:
    /// train with `backward(loss, &[group, GROUP_AUX])` and step both.
    pub aux_params: Vec<NodeId>,
    /// `(n)` drop-path mask inputs, one per non-identity op in recording
    /// order, each named `{op}.drop_mask`; empty without drop path. Fill
    /// them every step ([`set_drop_masks`]); probability 0 (all ones) for
    /// evaluation: the executor starts them at zero.
    pub drop_masks: Vec<NodeId>,
}

/// Records the evaluation network on input `x` `(n, in_channels, h, w)`;
/// its weights go to parameter `group`, the auxiliary head's to
/// [`GROUP_AUX`]. Refuses an invalid genotype, an input whose sides do not
/// halve evenly at every reduction, and an auxiliary head on a map that is
/// not 8×8.
pub fn eval_net(t: &mut Tape, cfg: &EvalNetConfig, x: NodeId, group: u32) -> Result<EvalNet> {
    if cfg.c == 0 || cfg.layers == 0 || cfg.classes == 0 || cfg.in_channels == 0 {
        bail!(
            "evaluation network: C, layers, classes and image channels must be positive (got {}, {}, {}, {})",
            cfg.c,
            cfg.layers,
            cfg.classes,
            cfg.in_channels
        );
    }
    cfg.genotype.check(STEPS).map_err(|e| Error(format!("evaluation network: genotype: {e}")))?;
    let s = t.shape(x);
    let halvings = 1 << cfg.reductions();
    if s.c() != cfg.in_channels
        || s.h() < halvings
        || s.w() < halvings
        || !s.h().is_multiple_of(halvings)
        || !s.w().is_multiple_of(halvings)
    {
        bail!(
            "evaluation network: input is {}×{}×{}; expected {} channels and sides that are positive multiples \
             of {halvings} (each of the {} reduction cells halves them)",
            s.c(),
            s.h(),
            s.w(),
            cfg.in_channels,
            cfg.reductions()
        );
    }
    // Cell 2L/3 is the last reduction: its map is the input's side halved
    // at every reduction.
    let aux_side = (s.h() / halvings, s.w() / halvings);
    if cfg.auxiliary && aux_side != (8, 8) {
        bail!(
            "evaluation network: the auxiliary head needs an 8×8 map after cell {} (32×32 inputs), \
             but the map there is {}×{}",
            cfg.aux_layer(),
            aux_side.0,
            aux_side.1
        );
    }

    let first = t.nodes.len();
    let c_stem = STEM_MULTIPLIER * cfg.c;
    let stem = t.conv(x, c_stem, ConvSpec::dense(3, 1, 1), group, "stem.conv");
    let stem = t.batch_norm(stem, true, group, "stem.bn");
    let (mut s0, mut s1) = (stem, stem);
    let mut c_curr = cfg.c;
    let mut reduction_prev = false;
    let genotype = &cfg.genotype;
    let mut drop_masks = Vec::new();
    let mut aux_logits = None;
    for layer in 0..cfg.layers {
        let reduction = cfg.is_reduction(layer);
        if reduction {
            c_curr *= 2;
        }
        let (genes, concat) = if reduction {
            (&genotype.reduce, &genotype.reduce_concat)
        } else {
            (&genotype.normal, &genotype.normal_concat)
        };
        let cell = EvalCell { c: c_curr, reduction, reduction_prev, genes, concat };
        let masks = cfg.drop_path.then_some(&mut drop_masks);
        let out = cell.record(t, s0, s1, group, &format!("cells.{layer}"), masks)?;
        if cfg.auxiliary && layer == cfg.aux_layer() {
            aux_logits = Some(auxiliary_head(t, out, cfg.classes, "auxiliary_head"));
        }
        (s0, s1) = (s1, out);
        reduction_prev = reduction;
    }
    let pooled = t.global_avg_pool(s1);
    let logits = t.linear(pooled, cfg.classes, group, "classifier");
    let weight_params = t.params(group).into_iter().filter(|&p| p >= first).collect();
    let aux_params =
        if cfg.auxiliary { t.params(GROUP_AUX).into_iter().filter(|&p| p >= first).collect() } else { vec![] };
    Ok(EvalNet { logits, weight_params, aux_logits, aux_params, drop_masks })
}

/// Channels of the auxiliary head's hidden layers (DARTS' constants).
const AUX_HIDDEN: usize = 128;
const AUX_FEATURES: usize = 768;

/// DARTS' `AuxiliaryHeadCIFAR` on `x`, the `(n, c, 8, 8)` output of cell
/// 2L/3 (checked by [`eval_net`]): ReLU, 5×5 average pool stride 3 without padding (2×2, padding
/// not counted), 1×1 conv c→128, BN, ReLU, 2×2 conv 128→768 (1×1), BN,
/// ReLU, linear 768→classes; weights in [`GROUP_AUX`], every BN affine.
///
/// DARTS' first ReLU is in place and so also rectifies the cell output the
/// next cells read; they begin with a ReLU themselves, so reading `x`
/// unchanged here gives the same values and gradients (except when cell
/// 2L/3 is the last, L ≤ 2, where DARTS' global pool would see the
/// rectified map too).
fn auxiliary_head(t: &mut Tape, x: NodeId, classes: usize, name: &str) -> NodeId {
    assert_eq!((t.shape(x).h(), t.shape(x).w()), (8, 8), "auxiliary head: eval_net checks for an 8×8 map");
    let group = GROUP_AUX;
    let x = t.relu(x);
    let x = t.avg_pool_k(x, 5, 3, 0); // (n, c, 2, 2)
    let x = t.conv(x, AUX_HIDDEN, ConvSpec::pointwise(1), group, &format!("{name}.conv1"));
    let x = t.batch_norm(x, true, group, &format!("{name}.bn1"));
    // The ReLU after bn1 is fused into conv2's input.
    let x = t.conv(x, AUX_FEATURES, ConvSpec::dense(2, 1, 0).after_relu(), group, &format!("{name}.conv2")); // (n, 768, 1, 1)
    let x = t.batch_norm(x, true, group, &format!("{name}.bn2"));
    let x = t.relu(x);
    t.linear(x, classes, group, &format!("{name}.classifier"))
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
    /// the `concat` states (`concat.len()·c` channels). With `drop_masks`,
    /// every non-identity op's output goes through drop path and its mask
    /// input is pushed there; without, no drop path is recorded.
    pub fn record(
        &self,
        t: &mut Tape,
        s0: NodeId,
        s1: NodeId,
        group: u32,
        name: &str,
        mut drop_masks: Option<&mut Vec<NodeId>>,
    ) -> Result<NodeId> {
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
                let op_name = format!("{name}.ops.{gene}");
                let y = Primitive::from_name(op)
                    .and_then(|p| primitive(t, p, x, c, stride, true, group, &op_name))
                    .ok_or_else(|| {
                        Error(format!("{name}: gene {gene}: '{op}' is not an op of the evaluation network"))
                    })?;
                // `skip_connect` at stride 1 is the state itself (DARTS'
                // `Identity`): no drop path.
                h.push(match drop_masks.as_deref_mut() {
                    Some(masks) if y != x => {
                        let mask = t.input(Shape::vec(t.shape(y).n()), &format!("{op_name}.drop_mask"));
                        masks.push(mask);
                        (y, Some(mask))
                    }
                    _ => (y, None),
                });
            }
            if h.len() != 2 {
                bail!("{name}: a node has {} genes; expected 2", h.len());
            }
            // Drop path applied as the two ops are added: one op, one pass.
            states.push(if h.iter().any(|t| t.1.is_some()) { t.masked_sum(&h) } else { t.add(h[0].0, h[1].0) });
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

/// One drop-path mask for a batch, as DARTS' `utils.drop_path` draws it:
/// each sample kept with probability `1 − prob` and then scaled by
/// `1/(1 − prob)` (`x.div_(keep_prob).mul_(mask)`), so the mask is 0 or
/// `1/keep` and its mean is 1. All ones when `prob` is 0; all zeros when it
/// is 1 (DARTS would divide by zero there).
pub fn fill_drop_masks(rng: &mut impl Rng, prob: f32, batch: usize) -> Vec<f32> {
    assert!((0.0..=1.0).contains(&prob), "drop-path probability {prob} is outside [0, 1]");
    let keep = 1.0 - prob;
    if keep == 0.0 {
        return vec![0.0; batch];
    }
    (0..batch).map(|_| if rng.random::<f32>() < keep { 1.0 / keep } else { 0.0 }).collect()
}

/// Draws a fresh mask for every node of `masks` (DARTS draws one per op
/// and step) and uploads it: `prob` 0 for evaluation.
pub fn set_drop_masks<B: Backend>(ex: &mut Exec<B>, masks: &[NodeId], rng: &mut impl Rng, prob: f32) -> Result<()> {
    for &m in masks {
        let v: Vec<f64> = fill_drop_masks(rng, prob, ex.shape(m).numel()).into_iter().map(f64::from).collect();
        ex.set(m, &v)?;
    }
    Ok(())
}
