//! The NAS-Bench-201 / NATS-Bench table: every cell of the space with the
//! test accuracy of its network (C = 16, 5 cells per stage) trained 200
//! epochs on CIFAR-10, CIFAR-100 and ImageNet16-120. A judge, not a
//! setting: a search or a comparison given one looks its cells up; nothing
//! it computes depends on it.
//!
//! The format is `nats_bench.csv`'s: the header [`HEADER`], then one line
//! per cell, `CIFAR10,CIFAR100,ImageNet16,ARCH_STRING,UNIQUE_STRING`.
//! Each of the 5⁶ = 15,625 cells must appear exactly once.

use std::path::{Path, PathBuf};

use super::{EDGES, Nb201Cell, OPS};
use crate::bail;
use crate::error::{Context, Error, Result};

/// The header line of the table.
pub const HEADER: &str = "CIFAR10TestAccuracy200Epochs,CIFAR100TestAccuracy200Epochs,\
                          ImageNetTestAccuracy200Epochs,ArchitectureString,UniqueString";

/// The environment variable that `--nb201-table` defaults to.
pub const ENV: &str = "RARTS_NB201_TABLE";

/// The file a run judged by a table keeps the table's reference numbers in
/// ([`reference_json`]), so that its report needs no table.
pub const REFERENCE_FILE: &str = "bench.json";

/// The number of cells in the space, 5⁶.
pub const CELLS: usize = 15_625;

/// The three data sets, in the table's column order: the key used in JSON
/// (`log.jsonl`'s `"bench"`, `rarts lookup --json`) and the name shown.
pub const DATASETS: [(&str, &str); 3] =
    [("cifar10", "CIFAR-10"), ("cifar100", "CIFAR-100"), ("imagenet16", "ImageNet16-120")];

/// The result published for DARTS first and second order on this space
/// (Dong and Yang, NAS-Bench-201, ICLR 2020, Table 5: both find the cell of
/// all `skip_connect`), test accuracy in percent per data set.
pub const PUBLISHED_DARTS: [f64; 3] = [54.30, 15.61, 16.32];

/// A cell's three test accuracies in percent, in [`DATASETS`] order.
pub type Accuracies = [f64; 3];

/// Where a cell stands among all cells on one data set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Standing {
    /// 1 + the number of cells strictly better (ties share a rank).
    pub rank: usize,
    /// The percentage of cells strictly worse.
    pub percentile: f64,
}

/// Best, median and mean of one data set's column.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Column {
    pub best: f64,
    pub median: f64,
    pub mean: f64,
    pub std: f64,
}

#[derive(Clone, Debug)]
pub struct Nb201Table {
    path: PathBuf,
    /// Indexed by [`index`].
    acc: Vec<Accuracies>,
    /// Each data set's accuracies, sorted ascending.
    sorted: [Vec<f64>; 3],
}

/// The position of a cell in the table's own order-independent index: its
/// ops as a base-5 number, edge 0 the lowest digit.
pub fn index(cell: &Nb201Cell) -> usize {
    cell.ops.iter().rev().fold(0, |i, &op| i * OPS.len() + op)
}

/// The cell at `index` (inverse of [`index`]).
pub fn cell_at(mut index: usize) -> Nb201Cell {
    let mut ops = [0; EDGES];
    for op in ops.iter_mut() {
        *op = index % OPS.len();
        index /= OPS.len();
    }
    Nb201Cell { ops }
}

impl Nb201Table {
    /// Reads the table at `path`; errors name the file and line.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).ctx(|| {
            format!("--nb201-table {}: cannot read it (expected NATS-Bench's nats_bench.csv)", path.display())
        })?;
        Self::parse(&text, path).map_err(|e| Error(format!("--nb201-table {}{e}", path.display())))
    }

    /// Parses a table's text; `path` is recorded, errors start with `:LINE:`
    /// or `:` so that the caller can put the file's name before them.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let mut lines = text.lines().enumerate();
        let header = lines.next().map(|(_, l)| l.trim_end_matches('\r').trim_start_matches('\u{feff}'));
        if header != Some(HEADER) {
            bail!(":1: header {:?}; expected {HEADER:?}", header.unwrap_or(""));
        }
        let mut acc: Vec<Option<(Accuracies, usize)>> = vec![None; CELLS];
        for (i, line) in lines {
            let line_no = i + 1;
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != 5 {
                bail!(":{line_no}: {} comma-separated fields; expected 5 ({HEADER})", fields.len());
            }
            let mut a = [0.0; 3];
            for (k, v) in a.iter_mut().enumerate() {
                *v = fields[k].trim().parse::<f64>().ok().filter(|x| (0.0..=100.0).contains(x)).ok_or_else(|| {
                    Error(format!(
                        ":{line_no}: {} accuracy {:?}; expected a percentage between 0 and 100",
                        DATASETS[k].1, fields[k]
                    ))
                })?;
            }
            let cell = Nb201Cell::parse(fields[3]).map_err(|e| Error(format!(":{line_no}: {e}")))?;
            let slot = &mut acc[index(&cell)];
            if let Some((_, first)) = slot {
                bail!(":{line_no}: cell {} appears again (first on line {first}); expected each once", fields[3]);
            }
            *slot = Some((a, line_no));
        }
        let missing: Vec<usize> = (0..CELLS).filter(|&i| acc[i].is_none()).collect();
        if let Some(&first) = missing.first() {
            bail!(
                ": {} of the {CELLS} cells are missing, the first {}; expected every cell of the space once",
                missing.len(),
                cell_at(first).to_arch_str()
            );
        }
        let acc: Vec<Accuracies> = acc.into_iter().map(|a| a.map_or([0.0; 3], |a| a.0)).collect();
        let sorted = std::array::from_fn(|k| {
            let mut v: Vec<f64> = acc.iter().map(|a| a[k]).collect();
            v.sort_by(f64::total_cmp);
            v
        });
        Ok(Nb201Table { path: path.to_path_buf(), acc, sorted })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cell's three accuracies.
    pub fn get(&self, cell: &Nb201Cell) -> Accuracies {
        self.acc[index(cell)]
    }

    /// Where the cell stands on each data set.
    pub fn standing(&self, cell: &Nb201Cell) -> [Standing; 3] {
        let a = self.get(cell);
        std::array::from_fn(|k| {
            let col = &self.sorted[k];
            let worse = col.partition_point(|&v| v < a[k]);
            let not_better = col.partition_point(|&v| v <= a[k]);
            Standing { rank: 1 + col.len() - not_better, percentile: 100.0 * worse as f64 / col.len() as f64 }
        })
    }

    /// Best, median and mean (with the std) of each data set's column.
    pub fn columns(&self) -> [Column; 3] {
        std::array::from_fn(|k| {
            let col = &self.sorted[k];
            let n = col.len();
            let median = if n % 2 == 1 { col[n / 2] } else { (col[n / 2 - 1] + col[n / 2]) / 2.0 };
            let mean = col.iter().sum::<f64>() / n as f64;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            Column { best: col[n - 1], median, mean, std: var.sqrt() }
        })
    }

    /// The cell with the highest accuracy on data set `k` (the first in
    /// index order among equals).
    pub fn best_cell(&self, k: usize) -> Nb201Cell {
        let i = (0..CELLS).fold(0, |b, i| if self.acc[i][k] > self.acc[b][k] { i } else { b });
        cell_at(i)
    }
}

/// `{"cifar10":…,"cifar100":…,"imagenet16":…}`.
pub fn accuracies_json(a: &Accuracies) -> String {
    let fields: Vec<String> = DATASETS.iter().zip(a).map(|((key, _), v)| format!("\"{key}\":{v:.4}")).collect();
    format!("{{{}}}", fields.join(","))
}

/// The table's reference numbers as JSON, for a run folder's `bench.json`:
/// what a report draws beside a search's cells without needing the table.
pub fn reference_json(t: &Nb201Table) -> String {
    let cols = t.columns();
    let per: Vec<String> = DATASETS
        .iter()
        .zip(&cols)
        .enumerate()
        .map(|(k, ((key, _), c))| {
            format!(
                "\"{key}\":{{\"best\":{:.4},\"best_arch\":\"{}\",\"median\":{:.4},\"mean\":{:.4},\"std\":{:.4}}}",
                c.best,
                t.best_cell(k).to_arch_str(),
                c.median,
                c.mean,
                c.std
            )
        })
        .collect();
    let published = accuracies_json(&PUBLISHED_DARTS);
    format!(
        "{{\"table\":\"{}\",\"cells\":{CELLS},{},\"published_darts\":{published}}}",
        json_escape(&t.path.display().to_string()),
        per.join(",")
    )
}

/// The table `--nb201-table` names, or `$RARTS_NB201_TABLE` where the flag is
/// absent; `None` when neither is set.
pub fn from_flag(flag: Option<&Path>) -> Result<Option<Nb201Table>> {
    let env = std::env::var_os(ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
    match flag.map(Path::to_path_buf).or(env) {
        Some(p) => Nb201Table::load(&p).map(Some),
        None => Ok(None),
    }
}

/// `s` with JSON's string escapes (quote, backslash, control characters).
fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `rarts lookup`'s answer for `cell`: its three accuracies with rank and
/// percentile, as text, or as JSON with `json`.
pub fn lookup(t: &Nb201Table, cell: &Nb201Cell, json: bool) -> String {
    let acc = t.get(cell);
    let st = t.standing(cell);
    if json {
        let per: Vec<String> = DATASETS
            .iter()
            .zip(acc.iter().zip(&st))
            .map(|((key, _), (a, s))| {
                format!("\"{key}\":{{\"accuracy\":{a:.4},\"rank\":{},\"percentile\":{:.3}}}", s.rank, s.percentile)
            })
            .collect();
        return format!(
            "{{\"arch\":\"{}\",\"index\":{},\"input_reaches_output\":{},{},\"cells\":{CELLS}}}\n",
            cell.to_arch_str(),
            index(cell),
            cell.input_reaches_output(),
            per.join(",")
        );
    }
    let mut s = format!("cell {}\n", cell.to_arch_str());
    s += &format!("{:<16}{:>10}{:>14}{:>13}\n", "data set", "accuracy", "rank", "percentile");
    for (((_, name), a), st) in DATASETS.iter().zip(&acc).zip(&st) {
        s += &format!("{name:<16}{:>9.2} %{:>14}{:>11.2} %\n", a, format!("{} / {CELLS}", st.rank), st.percentile);
    }
    s += "(200-epoch test accuracy from the NAS-Bench-201 table; rank = 1 + cells strictly better; \
          percentile = cells strictly worse)\n";
    if !cell.input_reaches_output() {
        s += &format!("note: {}\n", super::CUT_OFF);
    }
    s
}
