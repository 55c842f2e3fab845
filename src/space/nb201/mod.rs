//! The NAS-Bench-201 / NATS-Bench topology space (SPEC §6; D-X-Y's
//! AutoDL-Projects, `cell_operations.py`, `search_cells.py`,
//! `infer_cells.py`, `cell_searchs/search_model_darts.py`).
//!
//! A cell has 4 nodes: node 0 is the cell's input, node i the sum of one op
//! on every earlier node (6 edges), node 3 the output. Edge `j → i` is edge
//! number `i(i−1)/2 + j` (AutoDL's `'{i}<-{j}'` keys in sorted order). The
//! network: a 3×3 stem conv to C and BN; N cells at C; a residual block to
//! 2C with stride 2; N cells at 2C; a residual block to 4C; N cells at 4C;
//! BN → ReLU → global pool → linear. Searching, every edge mixes the five
//! ops by `softmax(α)` of its row, and the cells' BN has no affine
//! parameters (the stem, the residual blocks and the last BN keep theirs);
//! the trained network has them everywhere. A result is the strongest op of
//! each edge (`none` allowed), written as the string NATS-Bench looks up.

pub mod table;

use crate::error::{Error, Result};
use crate::genotype::softmax_rows;
use crate::ops::conv::ConvSpec;
use crate::ops::elementwise::Term;
use crate::ops::record::*;
use crate::shape::Shape;
use crate::space::darts::SuperNet;
use crate::space::{Alphas, Derived, SearchSpace, SpaceKind};
use crate::tape::{Init, NodeId, Tape};

/// The ops, in the order of α's columns.
pub const OPS: [&str; 5] = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"];

/// What a cell without a path from its input to its output means (see
/// [`Nb201Cell::input_reaches_output`]).
pub const CUT_OFF: &str = "no path of edges other than `none` leads from the cell's input (node 0) to its output \
                           (node 3): the network's prediction does not depend on the image, and trained it scores \
                           chance";

/// Nodes of a cell, the input included.
pub const NODES: usize = 4;

/// Edges of a cell.
pub const EDGES: usize = NODES * (NODES - 1) / 2;

/// The number of edge `j → i` (j < i).
pub fn edge(i: usize, j: usize) -> usize {
    debug_assert!(j < i && i < NODES);
    i * (i - 1) / 2 + j
}

/// Shape of the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nb201Config {
    /// Channels of the first stage (16 in NATS-Bench).
    pub c: usize,
    /// Cells per stage (5 in NATS-Bench).
    pub cells_per_stage: usize,
    pub classes: usize,
    pub in_channels: usize,
}

impl Nb201Config {
    pub fn new(c: usize, cells_per_stage: usize, classes: usize, in_channels: usize) -> Self {
        Nb201Config { c, cells_per_stage, classes, in_channels }
    }
}

/// One cell's ops: `ops[e]` is the index in [`OPS`] of edge `e`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nb201Cell {
    pub ops: [usize; EDGES],
}

impl Nb201Cell {
    /// The strongest op of every edge of `alpha` (`(EDGES, 5)`, row-major;
    /// α or its softmax), `none` included, as AutoDL's `genotype()` does.
    pub fn from_alpha(alpha: &[f64]) -> Result<Self> {
        let k = OPS.len();
        if alpha.len() != EDGES * k {
            crate::bail!("an NB201 α holds {} values, expected {EDGES}×{k}", alpha.len());
        }
        let mut ops = [0; EDGES];
        for (e, row) in alpha.chunks(k).enumerate() {
            // The first of equal maxima, as Python's argmax.
            ops[e] = (0..k).fold(0, |b, j| if row[j] > row[b] { j } else { b });
        }
        Ok(Nb201Cell { ops })
    }

    /// The arch string NATS-Bench looks up:
    /// `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`.
    pub fn to_arch_str(&self) -> String {
        (1..NODES)
            .map(|i| {
                let genes: Vec<String> = (0..i).map(|j| format!("{}~{j}", OPS[self.ops[edge(i, j)]])).collect();
                format!("|{}|", genes.join("|"))
            })
            .collect::<Vec<_>>()
            .join("+")
    }

    /// Reads an arch string back; every op must be one of [`OPS`] and every
    /// node must list its inputs 0, 1, … in order.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: String| {
            Error(format!(
                "NB201 cell {s:?}: {why}; expected |op~0|+|op~0|op~1|+|op~0|op~1|op~2| with ops from {}",
                OPS.join(", ")
            ))
        };
        let nodes: Vec<&str> = s.trim().split('+').collect();
        if nodes.len() != NODES - 1 {
            return Err(bad(format!("{} nodes", nodes.len())));
        }
        let mut ops = [0; EDGES];
        for (n, node) in nodes.iter().enumerate() {
            let i = n + 1;
            let inner = node
                .strip_prefix('|')
                .and_then(|r| r.strip_suffix('|'))
                .ok_or_else(|| bad(format!("node {i} is not enclosed in '|'")))?;
            let genes: Vec<&str> = inner.split('|').collect();
            if genes.len() != i {
                return Err(bad(format!("node {i} lists {} inputs, expected {i}", genes.len())));
            }
            for (j, gene) in genes.iter().enumerate() {
                let (op, from) = gene.split_once('~').ok_or_else(|| bad(format!("'{gene}' has no '~'")))?;
                if from != j.to_string() {
                    return Err(bad(format!("node {i}'s input {j} reads '~{from}'")));
                }
                ops[edge(i, j)] = OPS.iter().position(|&o| o == op).ok_or_else(|| bad(format!("unknown op '{op}'")))?;
            }
        }
        Ok(Nb201Cell { ops })
    }

    /// A cell whose every edge is drawn uniformly from the five ops (the
    /// random baseline), reproducibly from `seed`.
    pub fn random(seed: u64) -> Self {
        let mut rng = crate::data::Rng::new(seed);
        let mut ops = [0; EDGES];
        for op in ops.iter_mut() {
            *op = rng.below(OPS.len());
        }
        Nb201Cell { ops }
    }

    /// A cell from where `rarts train --genotype` points: an inline arch
    /// string, `random:SEED`, a search's `--out` folder, or its
    /// `genotype.txt` or `genotype.json`.
    pub fn from_source(s: &str) -> Result<Self> {
        let src = s.trim();
        let expected = "an NB201 arch string |op~0|+|op~0|op~1|+|op~0|op~1|op~2|, random:SEED, a search --out \
                        folder, or its genotype.txt or genotype.json";
        if src.starts_with('|') {
            return Self::parse(src);
        }
        if let Some(seed) = src.strip_prefix("random:") {
            let seed = seed.trim().parse::<u64>().map_err(|_| {
                Error(format!("NB201 cell `{src}`: expected random:SEED with SEED an integer in 0..2^64"))
            })?;
            return Ok(Self::random(seed));
        }
        let path = std::path::Path::new(src);
        if path.is_dir() && !path.join("genotype.txt").exists() && path.join("log.jsonl").is_file() {
            return Self::from_running(path);
        }
        let file = if path.is_dir() { path.join("genotype.txt") } else { path.to_path_buf() };
        if !file.is_file() {
            crate::bail!("NB201 cell `{src}`: no such file, and not an arch string; expected {expected}");
        }
        let text = std::fs::read_to_string(&file)
            .map_err(|e| Error(format!("NB201 cell {}: cannot read it: {e}", file.display())))?;
        let arch = if text.trim_start().starts_with('{') {
            // genotype.json: its "arch" field.
            let json =
                crate::json::Json::parse(&text).map_err(|e| Error(format!("NB201 cell {}: {e}", file.display())))?;
            json.get("arch")
                .and_then(|a| a.str())
                .map(str::to_string)
                .ok_or_else(|| Error(format!("NB201 cell {}: a JSON file without an \"arch\" field", file.display())))?
        } else {
            text.trim().to_string()
        };
        Self::parse(&arch).map_err(|e| Error(format!("{}: {e}", file.display())))
    }

    /// The cell a search still running in `dir` stands for: derived from the
    /// softmax of α in the last line of its `log.jsonl`.
    fn from_running(dir: &std::path::Path) -> Result<Self> {
        let path = dir.join("log.jsonl");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error(format!("NB201 cell {}: cannot read it: {e}", path.display())))?;
        // The last whole line: one the search is writing may be cut off.
        let last = text.lines().rev().find_map(|l| crate::json::Json::parse(l).ok());
        let no_alpha = || {
            Error(format!(
                "NB201 cell {}: no softmax_alpha_cell in its last whole line; expected an NB201 search's log",
                path.display()
            ))
        };
        let rows =
            last.as_ref().and_then(|j| j.get("softmax_alpha_cell")).and_then(|a| a.matrix()).ok_or_else(no_alpha)?;
        let values: Vec<f64> = rows.into_iter().flatten().collect();
        Self::from_alpha(&values).map_err(|e| Error(format!("NB201 cell {}: {e}", path.display())))
    }

    /// Whether a path of edges other than `none` leads from the cell's input
    /// (node 0) to its output (node 3). Where none does, the output of every
    /// cell, and so the network's prediction, does not depend on the image
    /// ([`CUT_OFF`]).
    pub fn input_reaches_output(&self) -> bool {
        let none = OPS.iter().position(|&o| o == "none");
        let mut reached = [false; NODES];
        reached[0] = true;
        for i in 1..NODES {
            reached[i] = (0..i).any(|j| reached[j] && Some(self.ops[edge(i, j)]) != none);
        }
        reached[NODES - 1]
    }

    /// How many edges are `skip_connect`, and how many have no parameters
    /// (`none`, `skip_connect`, `avg_pool_3x3`): what DARTS collapses onto.
    pub fn skips_and_parameterless(&self) -> (usize, usize) {
        let name = |e: &usize| OPS[*e];
        let skips = self.ops.iter().filter(|e| name(e) == "skip_connect").count();
        let free = self.ops.iter().filter(|e| matches!(name(e), "none" | "skip_connect" | "avg_pool_3x3")).count();
        (skips, free)
    }

    /// The cell as JSON: the arch string, the op of each edge, and (given)
    /// the softmax of α per edge.
    pub fn to_json(&self, softmax: Option<&[f64]>) -> String {
        let edges: Vec<String> = (1..NODES)
            .flat_map(|i| (0..i).map(move |j| (i, j)))
            .map(|(i, j)| format!("{{\"from\":{j},\"to\":{i},\"op\":\"{}\"}}", OPS[self.ops[edge(i, j)]]))
            .collect();
        let mut s = format!(
            "{{\"space\":\"nb201\",\"arch\":\"{}\",\"edges\":[{}],\"input_reaches_output\":{}",
            self.to_arch_str(),
            edges.join(","),
            self.input_reaches_output()
        );
        if let Some(w) = softmax {
            let rows: Vec<String> = w
                .chunks(OPS.len())
                .map(|r| format!("[{}]", r.iter().map(|v| format!("{v:.5}")).collect::<Vec<_>>().join(",")))
                .collect();
            s += &format!(",\"ops\":[{}],\"softmax_alpha\":[{}]", quoted(&OPS), rows.join(","));
        }
        s + "}"
    }
}

fn quoted(v: &[&str]) -> String {
    v.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(",")
}

/// Records α `(EDGES, 5)`, initialised `1e-3·N(0, 1)` as AutoDL does, and
/// its row softmax; returns `(α, softmax)`.
pub fn alphas(t: &mut Tape, group: u32) -> (NodeId, NodeId) {
    let a = t.param(Shape::mat(EDGES, OPS.len()), group, Init::Normal(1e-3), "alpha_cell");
    (a, t.softmax_rows(a))
}

/// ReLU → k×k conv (stride, padding (k−1)/2) → BN: AutoDL's `ReLUConvBN`.
#[allow(clippy::too_many_arguments)]
fn relu_conv_bn(
    t: &mut Tape,
    x: NodeId,
    c_out: usize,
    k: usize,
    stride: usize,
    affine: bool,
    group: u32,
    name: &str,
) -> NodeId {
    let spec = ConvSpec::dense(k, stride, (k - 1) / 2).after_relu();
    let y = t.conv(x, c_out, spec, group, &format!("{name}.conv"));
    t.batch_norm(y, affine, group, &format!("{name}.bn"))
}

/// Op `op` (an index in [`OPS`]) of a cell at `c` channels on `x`; `None`
/// for `none`.
fn op(t: &mut Tape, op: usize, x: NodeId, c: usize, affine: bool, group: u32, name: &str) -> Option<NodeId> {
    let name = format!("{name}.{}", OPS[op]);
    match OPS[op] {
        "none" => None,
        "skip_connect" => Some(x),
        "nor_conv_1x1" => Some(relu_conv_bn(t, x, c, 1, 1, affine, group, &name)),
        "nor_conv_3x3" => Some(relu_conv_bn(t, x, c, 3, 1, affine, group, &name)),
        "avg_pool_3x3" => Some(t.avg_pool(x, 1)),
        other => unreachable!("NB201 op {other}"),
    }
}

/// The residual block between stages: `[ReLU → 3×3 conv s2 → BN] → [ReLU →
/// 3×3 conv → BN]` plus the shortcut `2×2 average pool → 1×1 conv`
/// (AutoDL's `ResNetBasicblock` with stride 2; BN with affine parameters).
fn residual(t: &mut Tape, x: NodeId, c_out: usize, group: u32, name: &str) -> NodeId {
    let a = relu_conv_bn(t, x, c_out, 3, 2, true, group, &format!("{name}.conv_a"));
    let b = relu_conv_bn(t, a, c_out, 3, 1, true, group, &format!("{name}.conv_b"));
    let p = t.avg_pool_k(x, 2, 2, 0);
    let s = t.conv(p, c_out, ConvSpec::pointwise(1), group, &format!("{name}.downsample"));
    t.add(s, b)
}

/// What fills a cell's edges: the search's mixes of every op, or one op each.
#[derive(Clone, Copy, Debug)]
enum Edges<'a> {
    /// `softmax(α)`, `(EDGES, 5)`, shared by every cell.
    Mixed(NodeId),
    Fixed(&'a Nb201Cell),
}

/// One cell on `x` at `c` channels (the same as x's).
fn cell(t: &mut Tape, x: NodeId, c: usize, edges: Edges<'_>, group: u32, name: &str) -> NodeId {
    let shape = t.shape(x);
    let affine = matches!(edges, Edges::Fixed(_));
    let mut nodes = vec![x];
    for i in 1..NODES {
        let node = match edges {
            Edges::Mixed(w) => {
                let mut terms = Vec::new();
                for (j, &h) in nodes.clone().iter().enumerate() {
                    let e = edge(i, j);
                    for k in 0..OPS.len() {
                        if let Some(out) = op(t, k, h, c, affine, group, &format!("{name}.edges.{i}<-{j}")) {
                            terms.push(Term { x: out, idx: e * OPS.len() + k });
                        }
                    }
                }
                t.mix(&terms, w, shape)
            }
            Edges::Fixed(cell) => {
                let mut outs = Vec::new();
                for (j, &h) in nodes.clone().iter().enumerate() {
                    let k = cell.ops[edge(i, j)];
                    outs.extend(op(t, k, h, c, affine, group, &format!("{name}.edges.{i}<-{j}")));
                }
                match outs.len() {
                    0 => t.zeros(shape),
                    1 => outs[0],
                    _ => t.combine(&outs.iter().map(|&o| (o, 1.0)).collect::<Vec<_>>()),
                }
            }
        };
        nodes.push(node);
    }
    nodes[NODES - 1]
}

/// The whole network on `x`: stem, three stages of cells with residual
/// blocks between them, BN → ReLU → pool → linear.
fn network(t: &mut Tape, cfg: &Nb201Config, x: NodeId, edges: Edges<'_>, group: u32) -> SuperNet {
    let first = t.nodes.len();
    let s = t.conv(x, cfg.c, ConvSpec::dense(3, 1, 1), group, "stem.conv");
    let mut h = t.batch_norm(s, true, group, "stem.bn");
    let mut c = cfg.c;
    for stage in 0..3 {
        if stage > 0 {
            c *= 2;
            h = residual(t, h, c, group, &format!("stage{stage}.residual"));
        }
        for k in 0..cfg.cells_per_stage {
            h = cell(t, h, c, edges, group, &format!("stage{stage}.cells.{k}"));
        }
    }
    let h = t.batch_norm(h, true, group, "lastact.bn");
    let h = t.relu(h);
    let pooled = t.global_avg_pool(h);
    let logits = t.linear(pooled, cfg.classes, group, "classifier");
    let weight_params = t.params(group).into_iter().filter(|&p| p >= first).collect();
    SuperNet { logits, weight_params }
}

/// The search network on `x`, every edge mixing the five ops by the row of
/// `softmax` (from [`alphas`]) that is its own.
pub fn supernet(t: &mut Tape, cfg: &Nb201Config, x: NodeId, softmax: NodeId, group: u32) -> SuperNet {
    network(t, cfg, x, Edges::Mixed(softmax), group)
}

/// The network of one cell, for training (BN with affine parameters everywhere).
pub fn trained_net(t: &mut Tape, cfg: &Nb201Config, x: NodeId, cell: &Nb201Cell, group: u32) -> SuperNet {
    network(t, cfg, x, Edges::Fixed(cell), group)
}

/// Bytes the recording of one cell takes at least (tape nodes, ops, names).
const TAPE_BYTES_PER_CELL: u128 = 16 << 10;

/// The NB201 space as a [`SearchSpace`].
#[derive(Clone, Copy, Debug)]
pub struct Nb201Space(pub Nb201Config);

impl SearchSpace for Nb201Space {
    fn kind(&self) -> SpaceKind {
        SpaceKind::Nb201
    }

    fn ops(&self) -> &'static [&'static str] {
        &OPS
    }

    fn alphas(&self, t: &mut Tape, group: u32) -> Alphas {
        let (a, w) = alphas(t, group);
        Alphas { params: vec![(a, "cell")], softmax: vec![w] }
    }

    fn supernet(&self, t: &mut Tape, x: NodeId, a: &Alphas, group: u32) -> SuperNet {
        supernet(t, &self.0, x, a.softmax[0], group)
    }

    fn derive(&self, alphas: &[Vec<f64>]) -> Result<Derived> {
        let [a] = alphas else { crate::bail!("the NB201 α is one matrix, got {}", alphas.len()) };
        let cell = Nb201Cell::from_alpha(a)?;
        let softmax = softmax_rows(a, OPS.len());
        let warning = (!cell.input_reaches_output()).then(|| CUT_OFF.to_string());
        Ok(Derived { text: cell.to_arch_str(), json: cell.to_json(Some(&softmax)), warning })
    }

    /// Every edge holds at least its two convs' and its pool's outputs at
    /// the cell's size.
    fn min_bytes(&self, batch: usize, image: Shape) -> u128 {
        let (mut c, mut hw) = (self.0.c as u128, (image.h() * image.w()) as u128);
        let mut elems = 0u128;
        for stage in 0..3 {
            if stage > 0 {
                c *= 2;
                hw /= 4;
            }
            elems += self.0.cells_per_stage as u128 * EDGES as u128 * 3 * batch as u128 * c * hw.max(1);
        }
        elems * 4 + 3 * self.0.cells_per_stage as u128 * TAPE_BYTES_PER_CELL
    }
}
