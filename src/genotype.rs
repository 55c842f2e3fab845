//! Reading the discrete architecture off α (SPEC §3; quark0/darts
//! `model_search.py::genotype`), written as DARTS' `Genotype(...)` text and
//! as JSON with the softmax of α beside it; and reading a genotype back
//! from either form, from DARTS' published cells or from a seed
//! ([`Genotype::from_source`]).

mod parse;

use std::path::Path;

use crate::data::Rng;
use crate::error::{Context, Error, Result};
use crate::space::primitive::PRIMITIVES;

/// Intermediate nodes per cell in DARTS' CNN space: a genotype has
/// `2·STEPS` genes per cell.
pub const STEPS: usize = 4;

/// DARTS (first order) as published in quark0/darts `cnn/genotypes.py`.
pub const DARTS_V1: &str = "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), \
    ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], \
    normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), \
    ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], \
    reduce_concat=[2, 3, 4, 5])";

/// DARTS (second order) as published in quark0/darts `cnn/genotypes.py`
/// (where `DARTS = DARTS_V2`); SPEC §3 lists it too.
pub const DARTS_V2: &str = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), \
    ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], \
    normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), \
    ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], \
    reduce_concat=[2, 3, 4, 5])";

/// What [`Genotype::from_source`] accepts, for error messages.
const SOURCES: &str = "a search --out directory, a genotype.txt or genotype.json file, an inline Genotype(...), \
    DARTS_V1, DARTS_V2 or random:SEED";

/// One cell's chosen edges: `(op name, input state)` pairs, two per node.
pub type CellGenes = Vec<(&'static str, usize)>;

#[derive(Clone, Debug, PartialEq)]
pub struct Genotype {
    pub normal: CellGenes,
    pub normal_concat: Vec<usize>,
    pub reduce: CellGenes,
    pub reduce_concat: Vec<usize>,
}

/// Row softmax of a `(rows, cols)` matrix in f64.
pub fn softmax_rows(a: &[f64], cols: usize) -> Vec<f64> {
    a.chunks(cols)
        .flat_map(|r| {
            let m = r.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = r.iter().map(|v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(move |v| v / s)
        })
        .collect()
}

/// For each node keep the two strongest incoming edges (strength: the
/// largest non-`none` weight), each with its strongest non-`none` op.
/// `w` is the `(edges, 8)` softmax of α, row-major.
pub fn parse_cell(w: &[f64], steps: usize) -> CellGenes {
    let k = PRIMITIVES.len();
    let none = 0;
    let best = |row: &[f64]| {
        (0..k).filter(|&j| j != none).fold((none, f64::NEG_INFINITY), |b, j| if row[j] > b.1 { (j, row[j]) } else { b })
    };
    let mut genes = Vec::new();
    let mut start = 0;
    for i in 0..steps {
        let n = i + 2;
        let rows: Vec<&[f64]> = (start..start + n).map(|e| &w[e * k..(e + 1) * k]).collect();
        let mut edges: Vec<usize> = (0..n).collect();
        // Stable sort by strength, strongest first, as Python's `sorted` does.
        edges.sort_by(|&a, &b| best(rows[b]).1.total_cmp(&best(rows[a]).1));
        for &j in edges.iter().take(2) {
            genes.push((PRIMITIVES[best(rows[j]).0], j));
        }
        start += n;
    }
    genes
}

impl Genotype {
    /// From the raw α matrices (`(edges, 8)` each).
    pub fn from_alphas(alpha_normal: &[f64], alpha_reduce: &[f64], steps: usize, multiplier: usize) -> Genotype {
        let k = PRIMITIVES.len();
        let concat: Vec<usize> = (2 + steps - multiplier..steps + 2).collect();
        Genotype {
            normal: parse_cell(&softmax_rows(alpha_normal, k), steps),
            normal_concat: concat.clone(),
            reduce: parse_cell(&softmax_rows(alpha_reduce, k), steps),
            reduce_concat: concat,
        }
    }

    /// DARTS' `genotypes.py` text, pasteable into PyTorch code.
    pub fn to_text(&self) -> String {
        let genes = |g: &CellGenes| g.iter().map(|(op, j)| format!("('{op}', {j})")).collect::<Vec<_>>().join(", ");
        let list = |v: &[usize]| v.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
        format!(
            "Genotype(normal=[{}], normal_concat=[{}], reduce=[{}], reduce_concat=[{}])",
            genes(&self.normal),
            list(&self.normal_concat),
            genes(&self.reduce),
            list(&self.reduce_concat)
        )
    }

    /// JSON with the genotype and the softmax of both α matrices.
    pub fn to_json(&self, alpha_normal: &[f64], alpha_reduce: &[f64]) -> String {
        let k = PRIMITIVES.len();
        let genes = |g: &CellGenes| g.iter().map(|(op, j)| format!("[\"{op}\", {j}]")).collect::<Vec<_>>().join(", ");
        let mat = |a: &[f64]| {
            softmax_rows(a, k)
                .chunks(k)
                .map(|r| format!("[{}]", r.iter().map(|v| format!("{v:.6}")).collect::<Vec<_>>().join(", ")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let list = |v: &[usize]| v.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
        let prims = PRIMITIVES.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", ");
        format!(
            "{{\"genotype\": {{\"normal\": [{}], \"normal_concat\": [{}], \"reduce\": [{}], \"reduce_concat\": [{}]}}, \
             \"primitives\": [{prims}], \"softmax_alpha_normal\": [{}], \"softmax_alpha_reduce\": [{}]}}",
            genes(&self.normal),
            list(&self.normal_concat),
            genes(&self.reduce),
            list(&self.reduce_concat),
            mat(alpha_normal),
            mat(alpha_reduce)
        )
    }

    /// Every node has two edges from earlier states, none of them `none`,
    /// and each concat list names intermediate nodes, each at most once.
    pub fn is_valid(&self, steps: usize) -> bool {
        self.check(steps).is_ok()
    }

    /// Like [`Genotype::is_valid`], with the first problem found as a message
    /// that names the field and the gene.
    pub fn check(&self, steps: usize) -> std::result::Result<(), String> {
        let cells = [("normal", &self.normal, &self.normal_concat), ("reduce", &self.reduce, &self.reduce_concat)];
        for (field, genes, concat) in cells {
            if genes.len() != 2 * steps {
                return Err(format!(
                    "{field} has {} genes; expected {} (two (op, input) pairs for each of {steps} nodes)",
                    genes.len(),
                    2 * steps
                ));
            }
            for (n, &(op, j)) in genes.iter().enumerate() {
                let node = n / 2;
                if op == "none" {
                    return Err(format!(
                        "{field} gene {n} ('{op}', {j}): 'none' cannot be chosen, a gene is a real op"
                    ));
                }
                if !PRIMITIVES.contains(&op) {
                    return Err(format!(
                        "{field} gene {n}: unknown op '{op}' (expected one of {})",
                        PRIMITIVES[1..].join(", ")
                    ));
                }
                if j >= node + 2 {
                    return Err(format!(
                        "{field} gene {n} ('{op}', {j}): node {node} can take states 0..={} only (the two cell inputs and earlier nodes)",
                        node + 1
                    ));
                }
            }
            let field = format!("{field}_concat");
            if concat.is_empty() {
                return Err(format!("{field} is empty; expected intermediate nodes such as [2, 3, 4, 5]"));
            }
            for (i, &s) in concat.iter().enumerate() {
                if !(2..steps + 2).contains(&s) {
                    return Err(format!("{field}: {s} is not an intermediate node (expected 2..={})", steps + 1));
                }
                if concat[..i].contains(&s) {
                    return Err(format!("{field}: node {s} appears twice"));
                }
            }
        }
        Ok(())
    }

    /// Reads DARTS' `Genotype(...)` text or our `genotype.json`; `what`
    /// names the input in errors. The result is checked for [`STEPS`] nodes.
    pub fn parse(src: &str, what: &str) -> Result<Genotype> {
        parse::genotype(src, what)
    }

    /// `DARTS_V1`, `DARTS_V2`, or `DARTS` (= `DARTS_V2`, as in `genotypes.py`).
    pub fn builtin(name: &str) -> Option<Genotype> {
        let text = match name {
            "DARTS_V1" => DARTS_V1,
            "DARTS_V2" | "DARTS" => DARTS_V2,
            _ => return None,
        };
        Some(Genotype::parse(text, name).expect("a built-in genotype parses"))
    }

    /// A uniformly random valid genotype: each node takes two distinct
    /// earlier states, each through any op but `none`; concat of all nodes.
    /// The same seed gives the same genotype on every platform.
    pub fn random(seed: u64) -> Genotype {
        let mut rng = Rng::new(seed);
        let mut cell = || {
            let mut genes = CellGenes::with_capacity(2 * STEPS);
            for node in 0..STEPS {
                let inputs = node + 2;
                let a = rng.below(inputs);
                // Second input: uniform over the other `inputs − 1` states.
                let b = rng.below(inputs - 1);
                let b = if b >= a { b + 1 } else { b };
                for j in [a, b] {
                    genes.push((PRIMITIVES[1 + rng.below(PRIMITIVES.len() - 1)], j));
                }
            }
            genes
        };
        let normal = cell();
        let reduce = cell();
        let concat: Vec<usize> = (2..STEPS + 2).collect();
        Genotype { normal, normal_concat: concat.clone(), reduce, reduce_concat: concat }
    }

    /// Resolves what a user names as a genotype: `DARTS_V1`, `DARTS_V2`
    /// (also `DARTS`), `random:SEED`, an inline `Genotype(...)` or JSON
    /// object, a genotype.txt / genotype.json file (either form, told apart
    /// by content), or a search's --out directory (its genotype.json, else
    /// its genotype.txt). The names are tried before the file system.
    pub fn from_source(s: &str) -> Result<Genotype> {
        let src = s.trim();
        if src.is_empty() {
            crate::bail!("genotype: the source is empty; expected {SOURCES}");
        }
        if let Some(g) = Genotype::builtin(src) {
            return Ok(g);
        }
        if let Some(seed) = src.strip_prefix("random:") {
            let seed = seed.trim().parse::<u64>().map_err(|_| {
                Error(format!("genotype `{src}`: expected random:SEED with SEED an integer in 0..2^64"))
            })?;
            return Ok(Genotype::random(seed));
        }
        if src.starts_with("Genotype") || src.starts_with('{') {
            let quote: String = src.chars().take(40).collect();
            let more = if src.chars().count() > 40 { "…" } else { "" };
            return Genotype::parse(src, &format!("genotype `{quote}{more}`"));
        }
        let path = Path::new(src);
        if path.is_dir() {
            for name in ["genotype.json", "genotype.txt"] {
                let file = path.join(name);
                if file.is_file() {
                    return read_file(&file);
                }
            }
            crate::bail!(
                "genotype {}: the directory holds neither genotype.json nor genotype.txt (a search writes both \
                 into its --out directory)",
                path.display()
            );
        }
        if path.is_file() {
            return read_file(path);
        }
        crate::bail!("genotype `{src}`: no such file or directory, and not a genotype name; expected {SOURCES}")
    }
}

fn read_file(path: &Path) -> Result<Genotype> {
    let text = std::fs::read_to_string(path).ctx(|| format!("reading genotype file {}", path.display()))?;
    Genotype::parse(&text, &format!("genotype file {}", path.display()))
}

/// The least largest |softmax(α) − 1/K| for a genotype to mean something:
/// below it, every op of every edge is still within a few hundredths of
/// uniform and the argmax is decided by noise.
pub const ALPHA_MOVED: f64 = 0.02;

/// Largest |softmax(α) − 1/K| over every α matrix (K = `k` ops).
pub fn alpha_spread(k: usize, alphas: &[(&str, Vec<f64>)]) -> f64 {
    alphas.iter().flat_map(|(_, a)| softmax_rows(a, k)).fold(0.0, |m: f64, p| m.max((p - 1.0 / k as f64).abs()))
}
