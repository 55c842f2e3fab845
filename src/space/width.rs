//! Channel widths of a CIFAR ResNet (SPEC §7; He et al. 2016, the CIFAR
//! networks with parameter-free shortcuts).
//!
//! The network: a 3×3 conv to 16 channels, BN, ReLU; three stages of n
//! basic blocks at 16, 32 and 64 channels (depth 6n + 2: 20 or 56), the
//! first block of stages 2 and 3 with stride 2; global pool and a linear
//! layer. A basic block is `ReLU(BN(conv₂(ReLU(BN(conv₁(x))))) + s(x))`,
//! `s` the identity or, where the block halves the map and doubles the
//! channels, `x[:, :, ::2, ::2]` padded with zero channels on both sides.
//!
//! The first conv of every block is searchable: K candidate widths (by
//! default 25/50/75/100 % of its channels), an `α` row per layer. Searching,
//! the conv keeps all its channels and its BN output is multiplied per
//! channel by `Σₖ softmax(α)ₖ · maskₖ` (`maskₖ` keeps the first cₖ channels)
//! before the ReLU; without a cost the widest choice would always win, so
//! the validation loss adds `μ · max(0, E[MACs] / target − 1)`, `E[MACs]`
//! the network's multiply-adds at the expected widths (linear in the
//! softmax: each searchable width enters the MACs of its conv and the next
//! one). A result is the strongest width of each layer.

use crate::error::{Error, Result};
use crate::genotype::softmax_rows;
use crate::ops::conv::ConvSpec;
use crate::ops::record::*;
use crate::shape::Shape;
use crate::space::darts::SuperNet;
use crate::space::{Alphas, Derived, SearchSpace, SpaceKind};
use crate::tape::{Init, NodeId, Tape};

/// The candidate widths' fractions of each searchable conv's channels.
pub const FRACTIONS: [f64; 4] = [0.25, 0.5, 0.75, 1.0];

/// Channels of the three stages.
const STAGE_CHANNELS: [usize; 3] = [16, 32, 64];

/// The network and what the search costs it against.
#[derive(Clone, Debug, PartialEq)]
pub struct WidthConfig {
    /// 6n + 2 (20: n = 3; 56: n = 9).
    pub depth: usize,
    pub classes: usize,
    pub in_channels: usize,
    /// Input image sides, for the multiply-adds.
    pub image: (usize, usize),
    /// The multiply-add target as a fraction of the full network's.
    pub macs_target: f64,
    /// μ, the weight of the multiply-add cost in the validation loss.
    pub macs_weight: f32,
}

/// How far (relative) derived widths may land from the multiply-add target
/// before the search warns and the width comparison flags them.
pub const TARGET_TOLERANCE: f64 = 0.1;

/// One searchable layer: the first conv of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layer {
    /// Input channels of the block.
    pub c_in: usize,
    /// The block's channels (the searchable conv's full width).
    pub planes: usize,
    pub stride: usize,
    /// Output map sides of the block.
    pub out: (usize, usize),
}

impl Layer {
    /// `f` of the layer's channels, rounded, at least one.
    pub fn fraction(&self, f: f64) -> usize {
        ((f * self.planes as f64).round() as usize).max(1)
    }
}

impl WidthConfig {
    pub fn new(depth: usize, classes: usize, in_channels: usize, image: (usize, usize)) -> Self {
        WidthConfig { depth, classes, in_channels, image, macs_target: 0.5, macs_weight: 2.0 }
    }

    /// Refuses a depth that is not 6n + 2 and an image whose sides do not halve twice.
    pub fn check(&self) -> Result<()> {
        if self.depth < 8 || !(self.depth - 2).is_multiple_of(6) {
            crate::bail!("--depth {}: expected 6n + 2 for n ≥ 1 (20, 32, 44, 56, 110)", self.depth);
        }
        let (h, w) = self.image;
        if h < 4 || w < 4 || !h.is_multiple_of(4) || !w.is_multiple_of(4) {
            crate::bail!("width search: images of {h}×{w}; expected sides that are positive multiples of 4");
        }
        if !(self.macs_target > 0.0 && self.macs_target <= 1.0) {
            crate::bail!("--macs-target {}: expected a fraction in (0, 1]", self.macs_target);
        }
        if !(self.macs_weight.is_finite() && self.macs_weight >= 0.0) {
            crate::bail!("--macs-weight {}: expected a finite non-negative number", self.macs_weight);
        }
        Ok(())
    }

    /// Basic blocks per stage.
    pub fn blocks_per_stage(&self) -> usize {
        (self.depth.max(2) - 2) / 6
    }

    /// Every searchable layer, in order.
    pub fn layers(&self) -> Vec<Layer> {
        let (mut h, mut w) = self.image;
        let mut c_in = STAGE_CHANNELS[0];
        let mut v = Vec::new();
        for (s, &planes) in STAGE_CHANNELS.iter().enumerate() {
            for b in 0..self.blocks_per_stage() {
                let stride = if s > 0 && b == 0 { 2 } else { 1 };
                (h, w) = (h / stride, w / stride);
                v.push(Layer { c_in, planes, stride, out: (h, w) });
                c_in = planes;
            }
        }
        v
    }

    /// Layer `l`'s candidate widths, narrowest first.
    pub fn candidates(&self, l: &Layer) -> Vec<usize> {
        FRACTIONS.iter().map(|&f| l.fraction(f)).collect()
    }

    /// Each layer's expected width `Σₖ wₖ·cₖ` under a `(layers, K)`
    /// softmax(α) (row-major), as a real number of channels.
    pub fn expected_widths(&self, softmax: &[f64]) -> Vec<f64> {
        let k = FRACTIONS.len();
        self.layers()
            .iter()
            .zip(softmax.chunks(k))
            .map(|(l, row)| self.candidates(l).iter().zip(row).map(|(&c, w)| c as f64 * w).sum())
            .collect()
    }

    /// The multiply-adds of `widths` as a fraction of the full network's.
    pub fn macs_fraction(&self, widths: &[usize]) -> f64 {
        self.cost(widths).1 as f64 / self.cost(&self.full_widths()).1 as f64
    }

    /// Every layer at its full width.
    pub fn full_widths(&self) -> Vec<usize> {
        self.layers().iter().map(|l| l.planes).collect()
    }

    /// Every layer at `f` of its channels (see [`Layer::fraction`]).
    pub fn uniform_widths(&self, f: f64) -> Vec<usize> {
        self.layers().iter().map(|l| l.fraction(f)).collect()
    }

    /// The fraction (a multiple of 0.001) whose [`WidthConfig::uniform_widths`]
    /// come closest to `target` times the full network's multiply-adds; of
    /// equally close ones, the widest.
    pub fn uniform_fraction(&self, target: f64) -> f64 {
        let full = self.cost(&self.full_widths()).1 as f64;
        let off = |i: u32| (self.cost(&self.uniform_widths(f64::from(i) / 1e3)).1 as f64 / full - target).abs();
        let best = (1..=1000).fold(1000, |b, i| if off(i) <= off(b) { i } else { b });
        f64::from(best) / 1e3
    }

    /// The name prefix of searchable layer `li`'s block (`layer2.0`: the
    /// first block of stage 2), as the network's tensors are named.
    pub fn block_name(&self, li: usize) -> String {
        let per = self.blocks_per_stage();
        format!("layer{}.{}", li / per + 1, li % per)
    }

    /// `(weights, multiply-adds)` of the network at `widths` (one per
    /// searchable layer): convolutions, BN's γ and β and the linear layer
    /// count as weights; convolutions and the linear layer as multiply-adds.
    pub fn cost(&self, widths: &[usize]) -> (usize, usize) {
        let (h, w) = self.image;
        let c0 = STAGE_CHANNELS[0];
        let mut params = self.in_channels * c0 * 9 + 2 * c0;
        let mut macs = h * w * c0 * self.in_channels * 9;
        for (l, &c) in self.layers().iter().zip(widths) {
            let hw = l.out.0 * l.out.1;
            params += l.c_in * c * 9 + 2 * c + c * l.planes * 9 + 2 * l.planes;
            macs += hw * 9 * (l.c_in * c + c * l.planes);
        }
        let last = STAGE_CHANNELS[2];
        (params + last * self.classes + self.classes, macs + last * self.classes)
    }
}

/// A `(rows, K)` matrix's JSON rows.
fn json_rows(v: &[f64], k: usize) -> String {
    let rows: Vec<String> = v
        .chunks(k)
        .map(|r| format!("[{}]", r.iter().map(|x| format!("{x:.5}")).collect::<Vec<_>>().join(",")))
        .collect();
    format!("[{}]", rows.join(","))
}

fn json_list(v: &[usize]) -> String {
    format!("[{}]", v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(","))
}

/// Chosen widths, one per searchable layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Widths(pub Vec<usize>);

impl Widths {
    /// The strongest candidate of each row of `alpha` (`(layers, K)`).
    pub fn from_alpha(cfg: &WidthConfig, alpha: &[f64]) -> Result<Self> {
        Self::per_layer(cfg, alpha, |cands, row| {
            cands[(0..row.len()).fold(0, |b, j| if row[j] > row[b] { j } else { b })]
        })
    }

    /// Each layer's candidate nearest its expected width `Σₖ softmax(α)ₖ·cₖ`
    /// (of two equally near, the wider): what the multiply-add cost saw,
    /// where the argmax can sit far from it while softmax(α) is spread.
    pub fn from_expected(cfg: &WidthConfig, softmax: &[f64]) -> Result<Self> {
        Self::check_rows(cfg, softmax)?;
        let nearest = |cands: Vec<usize>, e: f64| {
            cands
                .iter()
                .copied()
                .fold(cands[0], |b, c| if (c as f64 - e).abs() <= (b as f64 - e).abs() { c } else { b })
        };
        Ok(Widths(
            cfg.layers().iter().zip(cfg.expected_widths(softmax)).map(|(l, e)| nearest(cfg.candidates(l), e)).collect(),
        ))
    }

    /// A width per layer, `pick(candidates, row)` of each row of a `(layers,
    /// K)` matrix.
    fn per_layer(cfg: &WidthConfig, m: &[f64], pick: impl Fn(&[usize], &[f64]) -> usize) -> Result<Self> {
        Self::check_rows(cfg, m)?;
        let k = FRACTIONS.len();
        Ok(Widths(cfg.layers().iter().zip(m.chunks(k)).map(|(l, row)| pick(&cfg.candidates(l), row)).collect()))
    }

    /// Refuses a matrix that is not `(layers, K)`.
    fn check_rows(cfg: &WidthConfig, m: &[f64]) -> Result<()> {
        let (layers, k) = (cfg.layers().len(), FRACTIONS.len());
        if m.len() != layers * k {
            crate::bail!("a width α holds {} values, expected {layers}×{k}", m.len());
        }
        Ok(())
    }

    /// The widths as JSON with the network's size, its full size and (when
    /// given) the softmax of α, with the widths nearest its expectation
    /// beside them: what `rarts train --space width --widths` reads.
    pub fn to_json(&self, cfg: &WidthConfig, softmax: Option<&[f64]>) -> String {
        let (params, macs) = cfg.cost(&self.0);
        let (full_params, full_macs) = cfg.cost(&cfg.full_widths());
        let mut s = format!(
            "{{\"space\":\"width\",\"depth\":{},\"widths\":{},\"full_widths\":{},\"params\":{params},\"macs\":{macs},\
             \"full_params\":{full_params},\"full_macs\":{full_macs},\"macs_fraction\":{:.4}",
            cfg.depth,
            json_list(&self.0),
            json_list(&cfg.full_widths()),
            macs as f64 / full_macs as f64
        );
        if let Some(w) = softmax {
            s += &format!(",\"fractions\":{:?},\"softmax_alpha\":{}", FRACTIONS, json_rows(w, FRACTIONS.len()));
            if let Ok(e) = Widths::from_expected(cfg, w) {
                let m = cfg.macs_fraction(&e.0);
                s += &format!(",\"widths_expected\":{},\"macs_fraction_expected\":{m:.4}", json_list(&e.0));
            }
        }
        s + "}"
    }

    /// Widths from where `rarts train --widths` points: `full`,
    /// `uniform:FRACTION` (every layer at that fraction of its channels), a
    /// search's `--out` folder, or a file holding a `"widths"` list (its
    /// `genotype.txt` or `genotype.json`); `expected:` before a folder or
    /// file takes its `"widths_expected"` instead (see
    /// [`Widths::from_expected`]).
    pub fn from_source(cfg: &WidthConfig, s: &str) -> Result<Self> {
        let src = s.trim();
        let (src, key) = match src.strip_prefix("expected:") {
            Some(rest) => (rest.trim(), "widths_expected"),
            None => (src, "widths"),
        };
        if src == "full" {
            return Ok(Widths(cfg.full_widths()));
        }
        if let Some(f) = src.strip_prefix("uniform:") {
            let f: f64 = f.trim().parse().map_err(|_| Error(format!("widths `{src}`: expected uniform:FRACTION")))?;
            if !(f > 0.0 && f <= 1.0) {
                crate::bail!("widths `{src}`: expected a fraction in (0, 1]");
            }
            return Ok(Widths(cfg.uniform_widths(f)));
        }
        let path = std::path::Path::new(src);
        let file = if path.is_dir() { path.join("genotype.json") } else { path.to_path_buf() };
        if !file.is_file() {
            crate::bail!(
                "widths `{src}`: no such file; expected full, uniform:FRACTION, a search --out folder or a file with a \"widths\" list"
            );
        }
        let text = std::fs::read_to_string(&file)
            .map_err(|e| Error(format!("widths {}: cannot read it: {e}", file.display())))?;
        Self::parse_key(cfg, &text, &file.display().to_string(), key)
    }

    /// Reads the `"widths"` list of a JSON file written by [`Widths::to_json`]
    /// (a search's `genotype.json`), checking it against `cfg`.
    pub fn parse(cfg: &WidthConfig, text: &str, what: &str) -> Result<Self> {
        Self::parse_key(cfg, text, what, "widths")
    }

    /// As [`Widths::parse`], the list under `key`.
    fn parse_key(cfg: &WidthConfig, text: &str, what: &str, key: &str) -> Result<Self> {
        let json = crate::json::Json::parse(text).map_err(|e| Error(format!("{what}: {e}")))?;
        let list = json.get(key).and_then(|v| v.arr()).ok_or_else(|| Error(format!("{what}: no \"{key}\" list")))?;
        let v = list
            .iter()
            .map(|w| match w.num() {
                Some(x) if x >= 0.0 && x.fract() == 0.0 && x <= u32::MAX as f64 => Ok(x as usize),
                _ => {
                    let shown = w.num().map_or_else(|| "a non-number".to_string(), |x| x.to_string());
                    Err(Error(format!("{what}: width {shown} in \"{key}\" is not a count")))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let layers = cfg.layers();
        if v.len() != layers.len() {
            crate::bail!(
                "{what}: {} widths; a depth-{} network has {} searchable layers",
                v.len(),
                cfg.depth,
                layers.len()
            );
        }
        if let Some((i, (w, l))) = v.iter().zip(&layers).enumerate().find(|(_, (w, l))| **w == 0 || **w > l.planes) {
            crate::bail!("{what}: width {i} is {w}; expected 1 to {} (that block's channels)", l.planes);
        }
        Ok(Widths(v))
    }
}

/// α `(layers, K)`, initialised `1e-3·N(0, 1)`, and its row softmax.
pub fn alphas(t: &mut Tape, cfg: &WidthConfig, group: u32) -> (NodeId, NodeId) {
    let a = t.param(Shape::mat(cfg.layers().len(), FRACTIONS.len()), group, Init::Normal(1e-3), "alpha_width");
    (a, t.softmax_rows(a))
}

/// How the searchable convs' widths are set.
#[derive(Clone, Copy, Debug)]
enum Choice<'a> {
    /// Full width, the BN output masked by `softmax(α)` (that node).
    Mixed(NodeId),
    Fixed(&'a [usize]),
}

/// ReLU(BN(conv(x))) is written as BN(conv(x)) with the ReLU fused into
/// the next conv's input; the block's output ReLU is explicit (the shortcut
/// reads it).
#[allow(clippy::too_many_arguments)]
fn block(
    t: &mut Tape,
    x: NodeId,
    l: &Layer,
    cands: &[usize],
    li: usize,
    choice: Choice<'_>,
    group: u32,
    name: &str,
) -> NodeId {
    let width = match choice {
        Choice::Mixed(_) => l.planes,
        Choice::Fixed(w) => w[li],
    };
    let c1 = t.conv(x, width, ConvSpec::dense(3, l.stride, 1), group, &format!("{name}.conv1"));
    let mut h = t.batch_norm(c1, true, group, &format!("{name}.bn1"));
    if let Choice::Mixed(softmax) = choice {
        let row = t.row(softmax, li);
        // mask (planes, K): channel c kept by candidate k when c < c_k.
        let mask: Vec<f32> =
            (0..l.planes).flat_map(|c| cands.iter().map(move |&ck| if c < ck { 1.0 } else { 0.0 })).collect();
        let m = t.constant(Shape::mat(l.planes, FRACTIONS.len()), mask, &format!("{name}.width_mask"));
        let factor = t.linear_with(row, m, None);
        h = t.channel_scale(h, factor);
    }
    let c2 = t.conv(h, l.planes, ConvSpec::dense(3, 1, 1).after_relu(), group, &format!("{name}.conv2"));
    let b2 = t.batch_norm(c2, true, group, &format!("{name}.bn2"));
    let s = if l.stride == 1 && l.c_in == l.planes {
        x
    } else {
        // x[:, :, ::2, ::2], then planes/4 zero channels on each side.
        let sub = t.avg_pool_k(x, 1, 2, 0);
        let ss = t.shape(sub);
        let pad = t.zeros(Shape::nchw(ss.n(), t.nets() * (l.planes - l.c_in) / 2, ss.h(), ss.w()));
        t.concat(&[pad, sub, pad])
    };
    let sum = t.add(b2, s);
    t.relu(sum)
}

fn network(t: &mut Tape, cfg: &WidthConfig, x: NodeId, choice: Choice<'_>, group: u32) -> SuperNet {
    let first = t.nodes.len();
    let c0 = STAGE_CHANNELS[0];
    let s = t.conv(x, c0, ConvSpec::dense(3, 1, 1), group, "conv1");
    let s = t.batch_norm(s, true, group, "bn1");
    let mut h = t.relu(s);
    for (li, l) in cfg.layers().iter().enumerate() {
        let cands = cfg.candidates(l);
        h = block(t, h, l, &cands, li, choice, group, &cfg.block_name(li));
    }
    let pooled = t.global_avg_pool(h);
    let logits = t.linear(pooled, cfg.classes, group, "linear");
    let weight_params = t.params(group).into_iter().filter(|&p| p >= first).collect();
    SuperNet { logits, weight_params }
}

/// The search network: full widths, each searchable conv's BN output masked
/// by its row of `softmax` (from [`alphas`]).
pub fn supernet(t: &mut Tape, cfg: &WidthConfig, x: NodeId, softmax: NodeId, group: u32) -> SuperNet {
    network(t, cfg, x, Choice::Mixed(softmax), group)
}

/// The network at `widths`, for training.
pub fn trained_net(t: &mut Tape, cfg: &WidthConfig, x: NodeId, widths: &Widths, group: u32) -> SuperNet {
    network(t, cfg, x, Choice::Fixed(&widths.0), group)
}

/// A tensor of a trained network: its shape and values.
pub type Tensor = (Vec<usize>, Vec<f32>);

/// L1-norm filter pruning (Li et al. 2017) of a trained width network
/// (`from`, usually full) down to `to`: in each searchable conv, the
/// `to[l]` filters of largest L1 norm stay (in their order), with their BN
/// entries (γ, β and running statistics) and the matching input channels
/// of the block's second conv. `tensor` reads one tensor of the trained
/// network by name. Returns the tensors pruning changes, by name; every
/// other tensor keeps its trained values.
pub fn prune_l1(
    cfg: &WidthConfig,
    from: &Widths,
    to: &Widths,
    tensor: &dyn Fn(&str) -> Result<Tensor>,
) -> Result<Vec<(String, Vec<f32>)>> {
    let mut out = Vec::new();
    for (li, l) in cfg.layers().iter().enumerate() {
        let (have, keep_n) = (from.0[li], to.0[li]);
        if keep_n > have {
            crate::bail!(
                "pruning: layer {} has {have} filters in the trained network, fewer than the {keep_n} asked for",
                cfg.block_name(li)
            );
        }
        let name = cfg.block_name(li);
        let conv1 = format!("{name}.conv1");
        let (shape, w) = tensor(&conv1)?;
        let per_filter = l.c_in * 9;
        if shape.first() != Some(&have) || w.len() != have * per_filter {
            crate::bail!("pruning: tensor '{conv1}' is {shape:?}; expected [{have}, {}, 3, 3]", l.c_in);
        }
        let norms: Vec<f64> = w.chunks_exact(per_filter).map(|f| f.iter().map(|v| f64::from(v.abs())).sum()).collect();
        let mut order: Vec<usize> = (0..have).collect();
        // Largest norm first; the lower index first among equal norms.
        order.sort_by(|&a, &b| norms[b].total_cmp(&norms[a]).then(a.cmp(&b)));
        let mut keep = order[..keep_n].to_vec();
        keep.sort_unstable();
        out.push((conv1, keep.iter().flat_map(|&o| w[o * per_filter..(o + 1) * per_filter].to_vec()).collect()));
        for part in ["weight", "bias", "running_mean", "running_var"] {
            let n = format!("{name}.bn1.{part}");
            let (_, v) = tensor(&n)?;
            if v.len() != have {
                crate::bail!("pruning: tensor '{n}' holds {} values; expected {have}", v.len());
            }
            out.push((n, keep.iter().map(|&o| v[o]).collect()));
        }
        let conv2 = format!("{name}.conv2");
        let (_, w2) = tensor(&conv2)?;
        if w2.len() != l.planes * have * 9 {
            crate::bail!("pruning: tensor '{conv2}' holds {} values; expected {}×{have}×3×3", w2.len(), l.planes);
        }
        let pruned: Vec<f32> = w2
            .chunks_exact(have * 9)
            .flat_map(|row| keep.iter().flat_map(move |&i| row[i * 9..(i + 1) * 9].to_vec()))
            .collect();
        out.push((conv2, pruned));
    }
    Ok(out)
}

/// `μ · max(0, E[MACs] / target − 1)` from the softmax of α: each layer's
/// expected width `Σₖ wₖ cₖ` enters its conv and the next linearly.
fn macs_penalty(t: &mut Tape, cfg: &WidthConfig, softmax: NodeId) -> NodeId {
    let layers = cfg.layers();
    let (_, full) = cfg.cost(&cfg.full_widths());
    let target = cfg.macs_target * full as f64;
    // The multiply-adds that do not depend on the searched widths.
    let fixed = cfg.cost(&vec![0; layers.len()]).1 as f64;
    let mut terms = Vec::new();
    for (li, l) in layers.iter().enumerate() {
        let per_channel = (l.out.0 * l.out.1 * 9 * (l.c_in + l.planes)) as f64;
        let coef: Vec<f32> = cfg.candidates(l).iter().map(|&c| (per_channel * c as f64 / target) as f32).collect();
        let row = t.row(softmax, li);
        let k = t.constant(Shape::mat(1, FRACTIONS.len()), coef, &format!("macs_coef.{li}"));
        terms.push((t.linear_with(row, k, None), 1.0));
    }
    let offset = t.constant(Shape::scalar(), vec![(fixed / target - 1.0) as f32], "macs_offset");
    terms.push((offset, 1.0));
    let over = t.combine(&terms);
    let over = t.relu(over);
    t.scale(over, cfg.macs_weight)
}

/// Bytes the recording of one block takes at least.
const TAPE_BYTES_PER_BLOCK: u128 = 4 << 10;

/// The width space as a [`SearchSpace`].
#[derive(Clone, Debug)]
pub struct WidthSpace(pub WidthConfig);

/// The candidate widths' names, the columns of α.
const WIDTH_NAMES: [&str; 4] = ["25%", "50%", "75%", "100%"];

impl SearchSpace for WidthSpace {
    fn kind(&self) -> SpaceKind {
        SpaceKind::Width
    }

    fn ops(&self) -> &'static [&'static str] {
        &WIDTH_NAMES
    }

    fn alphas(&self, t: &mut Tape, group: u32) -> Alphas {
        let (a, w) = alphas(t, &self.0, group);
        Alphas { params: vec![(a, "width")], softmax: vec![w] }
    }

    fn supernet(&self, t: &mut Tape, x: NodeId, a: &Alphas, group: u32) -> SuperNet {
        supernet(t, &self.0, x, a.softmax[0], group)
    }

    fn penalty(&self, t: &mut Tape, a: &Alphas) -> Option<NodeId> {
        Some(macs_penalty(t, &self.0, a.softmax[0]))
    }

    fn derive(&self, alphas: &[Vec<f64>]) -> Result<Derived> {
        let [a] = alphas else { crate::bail!("the width α is one matrix, got {}", alphas.len()) };
        let widths = Widths::from_alpha(&self.0, a)?;
        let softmax = softmax_rows(a, FRACTIONS.len());
        let json = widths.to_json(&self.0, Some(&softmax));
        // The argmax can land far from the target the cost term holds the
        // expectation at (RESULTS.md): say so, with the expected widths' cost.
        let (f, target) = (self.0.macs_fraction(&widths.0), self.0.macs_target);
        let off = f / target - 1.0;
        let warning = (off.abs() > TARGET_TOLERANCE).then(|| {
            let mut w = format!(
                "the argmax widths take {f:.3} of the full network's multiply-adds, {:+.0} % from --macs-target \
                 {target}",
                off * 100.0
            );
            if let Ok(e) = Widths::from_expected(&self.0, &softmax) {
                let fe = self.0.macs_fraction(&e.0);
                w += &format!("; the widths nearest the expected ones (--widths expected:DIR) take {fe:.3}");
            }
            w
        });
        Ok(Derived { text: widths.to_json(&self.0, None), json, warning })
    }

    /// Every block holds at least four maps of its full width.
    fn min_bytes(&self, batch: usize, _image: Shape) -> u128 {
        let elems: u128 =
            self.0.layers().iter().map(|l| 4 * batch as u128 * l.planes as u128 * (l.out.0 * l.out.1) as u128).sum();
        elems * 4 + self.0.layers().len() as u128 * TAPE_BYTES_PER_BLOCK
    }
}
