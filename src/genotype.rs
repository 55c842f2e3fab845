//! Reading the discrete architecture off α (SPEC §3; quark0/darts
//! `model_search.py::genotype`), written as DARTS' `Genotype(...)` text and
//! as JSON with the softmax of α beside it.

use crate::space::darts::PRIMITIVES;

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

    /// Every node has two edges from earlier states, none of them `none`.
    pub fn is_valid(&self, steps: usize) -> bool {
        let ok = |g: &CellGenes| {
            g.len() == 2 * steps
                && g.iter().enumerate().all(|(i, (op, j))| *op != "none" && PRIMITIVES.contains(op) && *j < i / 2 + 2)
        };
        ok(&self.normal) && ok(&self.reduce)
    }
}
