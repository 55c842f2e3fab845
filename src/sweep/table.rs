//! A sweep's table: one row per point and seed with the grid's values and
//! the point's final numbers — the toy's `α` beside its closed form; a
//! search's last epoch (losses, accuracies, `α`'s spread, the NB201 table's
//! accuracies where one judged it) and its genotype; a training's last
//! epoch — then the mean ± std over seeds of each point. Written as
//! `results.md` and `results.csv`.

use std::fmt::Write as _;
use std::path::Path;

use super::{Command, Point, Sweep, TOY_RESULT, done};
use crate::compare::mean_std;
use crate::error::{Context, Error, Result};
use crate::json::Json;

/// A point's numbers (name, value; NaN where the run did not record it)
/// and, for a search, its genotype.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub point: Point,
    pub numbers: Vec<(String, f64)>,
    pub genotype: Option<String>,
}

/// The last line of `dir/log.jsonl`, parsed.
fn last_log_line(dir: &Path) -> Result<Json> {
    let path = dir.join("log.jsonl");
    let text = std::fs::read_to_string(&path).ctx(|| format!("reading {}", path.display()))?;
    let line = text.lines().last().ok_or_else(|| Error(format!("{}: no epoch logged", path.display())))?;
    Json::parse(line).map_err(|e| Error(format!("{}: {e}", path.display())))
}

/// What point `p` of the sweep in `out` came to.
pub fn read_row(sw: &Sweep, out: &Path, p: &Point) -> Result<Row> {
    let dir = out.join(&p.id);
    let num = |j: &Json, k: &str| j.get(k).and_then(Json::num).unwrap_or(f64::NAN);
    let (numbers, genotype) = match sw.command {
        Command::Toy => {
            let path = dir.join(TOY_RESULT);
            let text = std::fs::read_to_string(&path).ctx(|| format!("reading {}", path.display()))?;
            let j = Json::parse(&text).map_err(|e| Error(format!("{}: {e}", path.display())))?;
            let (a, c) = (num(&j, "alpha"), num(&j, "closed_form"));
            let v = vec![
                ("alpha".to_string(), a),
                ("closed_form".to_string(), c),
                ("abs_error".to_string(), (a - c).abs()),
                ("steps".to_string(), num(&j, "steps")),
            ];
            (v, None)
        }
        Command::Search => {
            let j = last_log_line(&dir)?;
            let loss_val = j.get("loss_val").or_else(|| j.get("loss_val_unrolled")).and_then(Json::num);
            let mut v = vec![
                ("loss_train".to_string(), num(&j, "loss_train")),
                ("loss_val".to_string(), loss_val.unwrap_or(f64::NAN)),
                ("acc_train".to_string(), num(&j, "acc_train")),
                ("acc_val".to_string(), num(&j, "acc_val")),
                ("test_acc".to_string(), num(&j, "test_acc")),
                ("alpha_spread".to_string(), num(&j, "alpha_spread")),
            ];
            if let Some(b) = j.get("bench") {
                for (name, x) in b.fields() {
                    v.push((format!("nb201_{name}"), x.num().unwrap_or(f64::NAN)));
                }
            }
            let g = std::fs::read_to_string(dir.join("genotype.txt")).ok().map(|g| g.trim().to_string());
            (v, g)
        }
        Command::Train => {
            let j = last_log_line(&dir)?;
            let v = ["loss_train", "acc_train", "loss_test", "acc_test"].map(|k| (k.to_string(), num(&j, k)));
            (v.to_vec(), None)
        }
    };
    Ok(Row { point: p.clone(), numbers, genotype })
}

/// Every finished point's row; the names of those not finished.
pub fn rows(sw: &Sweep, out: &Path) -> Result<(Vec<Row>, Vec<String>)> {
    let (mut rows, mut left) = (Vec::new(), Vec::new());
    for p in sw.points() {
        if done(out, &p) {
            rows.push(read_row(sw, out, &p)?);
        } else {
            left.push(p.id);
        }
    }
    Ok((rows, left))
}

fn show(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e6) {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}").trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The metric names of `rows`, in the order the first row has them.
fn metrics(rows: &[Row]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in rows {
        for (n, _) in &r.numbers {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    names
}

fn value(r: &Row, name: &str) -> f64 {
    r.numbers.iter().find(|(n, _)| n == name).map_or(f64::NAN, |x| x.1)
}

/// `results.csv`: a header, then one line per point and seed.
pub fn csv(sw: &Sweep, rows: &[Row]) -> String {
    let names = metrics(rows);
    let quote =
        |s: &str| if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.into() };
    let mut head: Vec<String> = sw.grid.iter().map(|(f, _)| f.trim_start_matches('-').to_string()).collect();
    head.push("seed".into());
    head.extend(names.iter().cloned());
    if sw.command == Command::Search {
        head.push("genotype".into());
    }
    let mut s = head.join(",") + "\n";
    for r in rows {
        let mut cells: Vec<String> = r.point.values.iter().map(|(_, v)| quote(v)).collect();
        cells.push(r.point.seed.map_or(String::new(), |x| x.to_string()));
        cells.extend(names.iter().map(|n| {
            let v = value(r, n);
            if v.is_nan() { String::new() } else { format!("{v}") }
        }));
        if sw.command == Command::Search {
            cells.push(quote(r.genotype.as_deref().unwrap_or("")));
        }
        s += &(cells.join(",") + "\n");
    }
    s
}

/// `results.md`: the sweep, the rows, the mean ± std over seeds per point,
/// the genotypes, and what is not done yet.
pub fn markdown(sw: &Sweep, rows: &[Row], left: &[String]) -> String {
    let names = metrics(rows);
    let flags: Vec<String> = sw.grid.iter().map(|(f, _)| f.clone()).collect();
    let mut s = format!("# rarts sweep {}\n\n", sw.command.name());
    let _ = writeln!(
        s,
        "Date {}; machine: {}. Fixed flags: `{}`. Grid: {}{}.\n",
        crate::rundir::today(),
        crate::rundir::machine(),
        sw.base.join(" "),
        sw.grid.iter().map(|(f, v)| format!("`{f}` {}", v.join(", "))).collect::<Vec<_>>().join(" × "),
        if sw.seeds.is_empty() {
            String::new()
        } else {
            format!(" × seeds {}", sw.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))
        }
    );
    let mut head: Vec<String> = flags.clone();
    if !sw.seeds.is_empty() {
        head.push("seed".into());
    }
    head.extend(names.iter().cloned());
    let _ = writeln!(s, "| {} |\n|{}", head.join(" | "), "---|".repeat(head.len()));
    for r in rows {
        let mut cells: Vec<String> = r.point.values.iter().map(|(_, v)| v.clone()).collect();
        if let Some(x) = r.point.seed {
            cells.push(x.to_string());
        }
        cells.extend(names.iter().map(|n| show(value(r, n))));
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
    if sw.seeds.len() > 1 {
        let _ = writeln!(s, "\nMean ± std over seeds:\n");
        let _ = writeln!(s, "| {} | seeds | {} |", flags.join(" | "), names.join(" | "));
        let _ = writeln!(s, "|{}", "---|".repeat(flags.len() + 1 + names.len()));
        let mut keys: Vec<&Vec<(String, String)>> = Vec::new();
        for r in rows {
            if !keys.contains(&&r.point.values) {
                keys.push(&r.point.values);
            }
        }
        for k in keys {
            let same: Vec<&Row> = rows.iter().filter(|r| &r.point.values == k).collect();
            let mut cells: Vec<String> = k.iter().map(|(_, v)| v.clone()).collect();
            cells.push(same.len().to_string());
            for n in &names {
                let v: Vec<f64> = same.iter().map(|r| value(r, n)).filter(|v| !v.is_nan()).collect();
                cells.push(if v.is_empty() {
                    "—".into()
                } else {
                    let (m, sd) = mean_std(&v);
                    format!("{} ± {}", show(m), show(sd))
                });
            }
            let _ = writeln!(s, "| {} |", cells.join(" | "));
        }
    }
    if rows.iter().any(|r| r.genotype.is_some()) {
        let _ = writeln!(s, "\n## Genotypes\n");
        for r in rows {
            if let Some(g) = &r.genotype {
                let _ = writeln!(s, "- {}: `{g}`", r.point.id);
            }
        }
    }
    if !left.is_empty() {
        let _ = writeln!(s, "\nNot done yet ({}): {}", left.len(), left.join(", "));
    }
    s
}

/// Writes `results.md` and `results.csv` into `out` from whatever is
/// finished; returns the Markdown.
pub fn write(sw: &Sweep, out: &Path) -> Result<String> {
    let (rows, left) = rows(sw, out)?;
    let md = markdown(sw, &rows, &left);
    crate::rundir::write_atomic(&out.join("results.csv"), csv(sw, &rows).as_bytes())?;
    crate::rundir::write_atomic(&out.join("results.md"), md.as_bytes())?;
    Ok(md)
}
