//! `rarts report DIR`: one self-contained page (`report.html`, inline SVG,
//! no scripts) and its figures as SVG files beside it, for a search, a
//! training or a comparison folder. A search: the architecture α stands for
//! now, softmax(α) per edge over time, losses, accuracies and the learning
//! rate per epoch. A training: its architecture and curves. A comparison:
//! its results table and a dot plot of test accuracy per method and seed.
//! Every part reads the run's files as they are, so a report of a run that
//! is going shows it up to its last epoch.

pub mod cell;
mod compare;
pub mod json;
pub mod plot;
pub mod svg;
mod sweep;

pub use sweep::SweepView;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use self::json::{Json, check_alphas, lines};
use self::plot::Series;
use self::svg::{Style, escape};
use crate::checkpoint::Checkpoint;
use crate::error::{Context, Result};
use crate::genotype::parse_cell;
use crate::model::Model;
use crate::space::NetSpec;
use crate::space::darts::PRIMITIVES;
use crate::space::nb201::{self, Nb201Cell};
use crate::space::width::{FRACTIONS, WidthConfig, Widths};

/// The page.
pub const HTML: &str = "report.html";

/// Every file a report may write, the page first: what `--force` removes.
pub const FILES: [&str; 17] = [
    HTML,
    "report-cell-normal.svg",
    "report-cell-reduce.svg",
    "report-cell.svg",
    "report-widths.svg",
    "report-alpha-normal.svg",
    "report-alpha-reduce.svg",
    "report-alpha-cell.svg",
    "report-alpha-width.svg",
    "report-loss.svg",
    "report-accuracy.svg",
    "report-lr.svg",
    "report-times.svg",
    "report-test-accuracy.svg",
    BENCH_FILES[0],
    BENCH_FILES[1],
    BENCH_FILES[2],
];

/// An NB201 search judged by a table: one figure per data set of the
/// derived cell's accuracy over the epochs, in `nb201::table::DATASETS` order.
const BENCH_FILES: [&str; 3] = ["report-bench-cifar10.svg", "report-bench-cifar100.svg", "report-bench-imagenet16.svg"];

/// What kind of folder a report is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Search,
    Train,
    Compare,
    Sweep,
}

/// A page and its figures (file name, SVG text).
pub struct Report {
    pub html: String,
    pub figures: Vec<(&'static str, String)>,
}

/// The folder's kind, from its files.
pub fn kind(dir: &Path) -> Result<Kind> {
    if !dir.is_dir() {
        crate::bail!("{}: not a folder; expected a search, train or compare --out folder", dir.display());
    }
    if dir.join(crate::sweep::PLAN_FILE).is_file() {
        return Ok(Kind::Sweep);
    }
    let results = std::fs::read_to_string(dir.join("results.md")).unwrap_or_default();
    if dir.join("compare.txt").is_file() || results.starts_with("# rarts compare") {
        return Ok(Kind::Compare);
    }
    if !crate::rundir::is_run_folder(dir) {
        crate::bail!(
            "{}: not a folder a rarts run made (no rarts checkpoint, lock file or comparison in it); expected a \
             search, train or compare --out folder, and rarts report writes into no other",
            dir.display()
        );
    }
    let log = lines(&dir.join("log.jsonl"))?;
    match log.first() {
        Some(l) if l.get("drop_prob").is_some() => Ok(Kind::Train),
        Some(_) => Ok(Kind::Search),
        None if dir.join("alpha.jsonl").exists() => Ok(Kind::Search),
        None => crate::bail!(
            "{}: no log.jsonl with an epoch in it, and no results.md; expected a search, train or compare --out \
             folder with at least one epoch done",
            dir.display()
        ),
    }
}

/// The settings a run's checkpoint records, by flag (empty before its first epoch).
fn settings(dir: &Path) -> Vec<(String, String)> {
    let Ok(ck) = Checkpoint::load(&dir.join("checkpoint.bin")) else { return Vec::new() };
    let mut v: Vec<(String, String)> =
        ck.header.iter().filter_map(|(k, v)| k.strip_prefix("setting").map(|f| (f.to_string(), v.clone()))).collect();
    v.sort();
    v
}

fn setting<'a>(s: &'a [(String, String)], flag: &str) -> Option<&'a str> {
    s.iter().find(|(f, _)| f == flag).map(|(_, v)| v.as_str())
}

/// One series of a per-epoch field (x: epochs done).
fn epoch_series(log: &[Json], key: &str, name: &str, style: usize) -> Option<Series> {
    let points: Vec<(f64, f64)> = log
        .iter()
        .filter_map(|l| Some((l.get("epoch")?.num()? + 1.0, l.get(key)?.num()?)))
        .filter(|p| p.1.is_finite())
        .collect();
    (!points.is_empty()).then(|| Series { name: name.into(), points, style: Style::nth(style) })
}

/// The columns of α (op names) for a space.
fn ops_of(space: &str) -> Vec<String> {
    match space {
        "nb201" => nb201::OPS.iter().map(|s| s.to_string()).collect(),
        "width" => FRACTIONS.iter().map(|f| format!("{:.0}%", f * 100.0)).collect(),
        _ => PRIMITIVES.iter().map(|s| s.to_string()).collect(),
    }
}

/// The style of op `j` named `op`: the same for an op in every figure.
fn style_of(space: &str, op: &str, j: usize) -> Style {
    if space == "width" { Style::nth(j) } else { cell::op_style(op) }
}

/// The α matrices a search logs, by name (`normal`, `reduce`, `cell`, `width`).
fn alpha_names(line: &Json) -> Vec<String> {
    line.fields().iter().filter_map(|(k, _)| k.strip_prefix("softmax_alpha_").map(String::from)).collect()
}

/// DARTS edge labels: `node i ← input j` in α's row order.
fn darts_edge_names(rows: usize) -> Vec<String> {
    let mut v = Vec::new();
    let mut node = 0;
    while v.len() < rows {
        for j in 0..node + 2 {
            let from = match j {
                0 => "c_{k-2}".to_string(),
                1 => "c_{k-1}".to_string(),
                j => format!("node {}", j - 2),
            };
            v.push(format!("node {node} ← {from}"));
        }
        node += 1;
    }
    v.truncate(rows);
    v
}

fn edge_names(space: &str, rows: usize, depth: usize) -> Vec<String> {
    match space {
        "nb201" => (1..nb201::NODES).flat_map(|to| (0..to).map(move |from| format!("{from} → {to}"))).collect(),
        "width" => {
            let cfg = WidthConfig::new(depth, 10, 3, (32, 32));
            (0..rows).map(|i| cfg.block_name(i)).collect()
        }
        _ => darts_edge_names(rows),
    }
}

/// A search's page.
fn search_report(dir: &Path) -> Result<Report> {
    let log = lines(&dir.join("log.jsonl"))?;
    let mut trace = lines(&dir.join("alpha.jsonl"))?;
    if trace.is_empty() {
        // Runs from before the α trace: a point per epoch.
        trace = log.clone();
    }
    let set = settings(dir);
    let space = setting(&set, "--space").unwrap_or("darts").to_string();
    let depth: usize = setting(&set, "--depth").and_then(|d| d.parse().ok()).unwrap_or(20);
    let ops = ops_of(&space);
    check_alphas(&dir.join("log.jsonl"), &log, ops.len())?;
    check_alphas(&dir.join("alpha.jsonl"), &trace, ops.len())?;
    let mut figures: Vec<(&'static str, String)> = Vec::new();
    let mut body = String::new();
    let last = trace.last();
    let when = |l: &Json| {
        let e = l.get("epoch").and_then(Json::num).unwrap_or(0.0) as usize;
        match (l.get("step").and_then(Json::num), l.get("steps").and_then(Json::num)) {
            (Some(s), Some(n)) => format!("epoch {}, step {s}/{n}", e + 1),
            _ => format!("after epoch {}", e + 1),
        }
    };
    if let Some(l) = last {
        // How far α has moved, first: a genotype means little before it has.
        let k = ops.len().max(1);
        let spread = alpha_names(l)
            .iter()
            .filter_map(|name| l.get(&format!("softmax_alpha_{name}"))?.matrix())
            .flatten()
            .flatten()
            .fold(0.0, |m: f64, p| m.max((p - 1.0 / k as f64).abs()));
        let moved = crate::genotype::ALPHA_MOVED;
        let _ = writeln!(
            body,
            "<p class=\"spread\">α has moved: the largest |softmax(α) − 1/{k}| is <b>{spread:.4}</b> ({}).</p>",
            escape(&when(l))
        );
        if spread < moved {
            let _ = writeln!(
                body,
                "<p class=\"warning\"><b>Warning:</b> every op of every edge is still within {spread:.4} of 1/{k} \
                 (below {moved}), so the architecture below is decided by noise: search longer or raise \
                 <code>--arch-lr</code>.</p>"
            );
        }
        let _ = writeln!(body, "<h2>The architecture α stands for now ({})</h2>", escape(&when(l)));
        architecture_from_alpha(&space, depth, l, &mut figures, &mut body)?;
    }
    // softmax(α) over time.
    if let Some(first) = trace.first() {
        let _ = writeln!(
            body,
            "<h2>softmax(α) over time</h2>\n<p>One panel per edge (per layer for widths), one line per op; x is \
             epochs done. A drift toward <code>skip_connect</code> or <code>none</code> shows as their lines \
             rising.</p>"
        );
        for name in alpha_names(first) {
            let key = format!("softmax_alpha_{name}");
            let rows = first.get(&key).and_then(Json::matrix).map_or(0, |m| m.len());
            let edges = edge_names(&space, rows, depth);
            let mut panels: Vec<(String, Vec<Series>)> =
                edges.iter().map(|e| (e.clone(), Vec::new())).take(rows).collect();
            for (j, op) in ops.iter().enumerate() {
                for (r, panel) in panels.iter_mut().enumerate() {
                    let points: Vec<(f64, f64)> = trace
                        .iter()
                        .filter_map(|l| {
                            let m = l.get(&key)?.matrix()?;
                            let e = l.get("epoch")?.num()?;
                            let x = match (l.get("step").and_then(Json::num), l.get("steps").and_then(Json::num)) {
                                (Some(s), Some(n)) if n > 0.0 => e + s / n,
                                _ => e + 1.0,
                            };
                            Some((x, *m.get(r)?.get(j)?))
                        })
                        .collect();
                    panel.1.push(Series { name: op.clone(), points, style: style_of(&space, op, j) });
                }
            }
            let y_max =
                panels.iter().flat_map(|p| p.1.iter().flat_map(|s| s.points.iter().map(|q| q.1))).fold(0.0, f64::max);
            let y_max = (y_max * 1.1).clamp(0.05, 1.0);
            let svg = plot::panel_grid(&format!("softmax(α), {name}"), "epoch", &panels, y_max);
            add(&mut figures, &mut body, alpha_file(&name), svg.finish());
        }
    }
    bench_curves(dir, &log, &mut figures, &mut body)?;
    curves(&log, &mut figures, &mut body, true);
    let steps: f64 = log.iter().filter_map(|l| l.get("steps")?.num()).sum();
    let wall: f64 =
        log.iter().filter_map(|l| Some(l.get("step_ms")?.num()? * l.get("steps")?.num()? / 1e3)).sum::<f64>();
    let median: Vec<f64> = log.iter().filter_map(|l| l.get("step_ms_median")?.num()).collect();
    let times = vec![
        ("epochs done".to_string(), log.len().to_string()),
        ("steps done".to_string(), format!("{steps:.0}")),
        ("time stepping".to_string(), format!("{wall:.0} s")),
        ("median step (last epoch)".to_string(), median.last().map_or("—".to_string(), |m| format!("{m:.1} ms"))),
    ];
    Ok(Report { html: page(dir, "search", &body, &set, &times), figures })
}

fn alpha_file(name: &str) -> &'static str {
    match name {
        "normal" => "report-alpha-normal.svg",
        "reduce" => "report-alpha-reduce.svg",
        "width" => "report-alpha-width.svg",
        _ => "report-alpha-cell.svg",
    }
}

/// Draws the architecture the last α sample `l` stands for.
fn architecture_from_alpha(
    space: &str,
    depth: usize,
    l: &Json,
    figures: &mut Vec<(&'static str, String)>,
    body: &mut String,
) -> Result<()> {
    let m = |k: &str| l.get(&format!("softmax_alpha_{k}")).and_then(Json::matrix);
    match space {
        "nb201" => {
            let Some(a) = m("cell") else { return Ok(()) };
            let flat: Vec<f64> = a.concat();
            let cell = Nb201Cell::from_alpha(&flat)?;
            let w: Vec<f64> = a.iter().zip(cell.ops).map(|(r, o)| r[o]).collect();
            add(figures, body, "report-cell.svg", cell::nb201_cell("NB201 cell", &cell, Some(&w)).finish());
        }
        "width" => {
            let Some(a) = m("width") else { return Ok(()) };
            let cfg = WidthConfig::new(depth, 10, 3, (32, 32));
            let flat = a.concat();
            let widths = Widths::from_alpha(&cfg, &flat)?.0;
            let names: Vec<String> = (0..widths.len()).map(|i| cfg.block_name(i)).collect();
            let full = cfg.full_widths();
            // The log holds softmax(α).
            let expected = cfg.expected_widths(&flat);
            let title = "The strongest width of each block's first conv";
            let svg = cell::width_bars(title, &names, &widths, &full, Some(&expected));
            add(figures, body, "report-widths.svg", svg.finish());
        }
        _ => {
            for (name, file) in [("normal", "report-cell-normal.svg"), ("reduce", "report-cell-reduce.svg")] {
                let Some(a) = m(name) else { continue };
                let flat: Vec<f64> = a.concat();
                let steps = (1..).find(|s| s * (s + 3) / 2 >= a.len()).unwrap_or(4);
                let genes = parse_cell(&flat, steps);
                // The chosen edge's weight: its row (edge index) and op column.
                let mut starts = vec![0];
                for i in 0..steps {
                    starts.push(starts[i] + i + 2);
                }
                let w: Vec<f64> = genes
                    .iter()
                    .enumerate()
                    .map(|(g, (op, from))| {
                        let col = PRIMITIVES.iter().position(|p| p == op).unwrap_or(0);
                        a[starts[g / 2] + from][col]
                    })
                    .collect();
                let concat: Vec<usize> = (2..steps + 2).collect();
                let svg = cell::darts_cell(&format!("{name} cell"), &genes, &concat, Some(&w));
                add(figures, body, file, svg.finish());
            }
        }
    }
    Ok(())
}

/// Loss, accuracy and learning-rate charts of a per-epoch log.
/// NB201 searches judged by a table: the 200-epoch test accuracy of the cell
/// derived after each epoch (the log's `bench`), one figure per data set,
/// with the table's best and median cell as reference lines (from the run
/// folder's `bench.json`, so the table itself is not needed here): the
/// figure NAS-Bench-201 papers draw.
fn bench_curves(dir: &Path, log: &[Json], figures: &mut Vec<(&'static str, String)>, body: &mut String) -> Result<()> {
    use nb201::table::DATASETS;
    if !log.iter().any(|l| l.get("bench").is_some()) {
        return Ok(());
    }
    let reference = match std::fs::read_to_string(dir.join(nb201::table::REFERENCE_FILE)) {
        Ok(text) => Some(Json::parse(&text).ctx(|| dir.join(nb201::table::REFERENCE_FILE).display().to_string())?),
        Err(_) => None,
    };
    let _ = writeln!(
        body,
        "<h2>The derived cell in the NAS-Bench-201 table</h2>\n<p>After each epoch, the test accuracy of the cell \
         α stands for, trained 200 epochs (the table's C = 16, 5 cells per stage), beside the table's best and \
         median cell.</p>"
    );
    let x_end = log.iter().filter_map(|l| l.get("epoch")?.num()).fold(0.0, f64::max) + 1.0;
    for (k, (key, name)) in DATASETS.iter().enumerate() {
        let points: Vec<(f64, f64)> =
            log.iter().filter_map(|l| Some((l.get("epoch")?.num()? + 1.0, l.get("bench")?.get(key)?.num()?))).collect();
        let mut series = vec![Series { name: "the derived cell".into(), points, style: Style::nth(0) }];
        for (i, (field, label)) in [("best", "best cell in the table"), ("median", "median cell")].iter().enumerate() {
            if let Some(v) = reference.as_ref().and_then(|r| r.get(key)?.get(field)?.num()) {
                let points = vec![(1.0, v), (x_end.max(2.0), v)];
                series.push(Series { name: format!("{label} ({v:.2} %)"), points, style: Style::nth(i + 1) });
            }
        }
        let svg = plot::line_chart(
            &format!("{name}: the derived cell's 200-epoch accuracy"),
            "epoch",
            "test accuracy (%)",
            &series,
        );
        add(figures, body, BENCH_FILES[k], svg.finish());
    }
    Ok(())
}

fn curves(log: &[Json], figures: &mut Vec<(&'static str, String)>, body: &mut String, search: bool) {
    let _ = writeln!(body, "<h2>Per epoch</h2>");
    let keys: &[(&str, &str)] = if search {
        &[
            ("loss_train", "training loss (w)"),
            ("loss_val", "validation loss"),
            ("loss_val_unrolled", "validation loss at w′"),
        ]
    } else {
        &[("loss_train", "training loss"), ("loss_test", "test loss")]
    };
    let loss: Vec<Series> = keys.iter().enumerate().filter_map(|(i, (k, n))| epoch_series(log, k, n, i)).collect();
    if !loss.is_empty() {
        add(figures, body, "report-loss.svg", plot::line_chart("Loss", "epoch", "cross-entropy", &loss).finish());
    }
    let keys: &[(&str, &str)] = if search {
        &[("acc_train", "training (w)"), ("acc_val", "validation (y)"), ("test_acc", "test")]
    } else {
        &[("acc_train", "training"), ("acc_test", "test")]
    };
    let acc: Vec<Series> = keys.iter().enumerate().filter_map(|(i, (k, n))| epoch_series(log, k, n, i)).collect();
    if !acc.is_empty() {
        let svg = plot::line_chart("Accuracy", "epoch", "accuracy", &acc);
        add(figures, body, "report-accuracy.svg", svg.finish());
    }
    if let Some(lr) = epoch_series(log, "lr", "learning rate", 0) {
        let svg = plot::line_chart("Learning rate (of the weights)", "epoch", "learning rate", &[lr]);
        add(figures, body, "report-lr.svg", svg.finish());
    }
}

/// Adds a figure: the file and the page's inline copy.
fn add(figures: &mut Vec<(&'static str, String)>, body: &mut String, file: &'static str, svg: String) {
    let _ = writeln!(body, "<figure id=\"{}\">\n{svg}</figure>", file.trim_end_matches(".svg"));
    figures.push((file, svg));
}

/// A training's page.
fn train_report(dir: &Path) -> Result<Report> {
    let log = lines(&dir.join("log.jsonl"))?;
    let set = settings(dir);
    let mut figures = Vec::new();
    let mut body = String::new();
    if let Ok(model) = Model::load(dir) {
        let _ = writeln!(body, "<h2>The network: {}</h2>", escape(&model.info.net.size()));
        match &model.info.net {
            NetSpec::Darts(c) => {
                let g = &c.genotype;
                for (name, genes, concat, file) in [
                    ("normal", &g.normal, &g.normal_concat, "report-cell-normal.svg"),
                    ("reduce", &g.reduce, &g.reduce_concat, "report-cell-reduce.svg"),
                ] {
                    let svg = cell::darts_cell(&format!("{name} cell"), genes, concat, None);
                    add(&mut figures, &mut body, file, svg.finish());
                }
            }
            NetSpec::Nb201(_, cell) => {
                let svg = cell::nb201_cell("NB201 cell", cell, None);
                add(&mut figures, &mut body, "report-cell.svg", svg.finish());
            }
            NetSpec::Width(cfg, w) => {
                let names: Vec<String> = (0..w.0.len()).map(|i| cfg.block_name(i)).collect();
                let svg =
                    cell::width_bars("Channels of each block's first conv", &names, &w.0, &cfg.full_widths(), None);
                add(&mut figures, &mut body, "report-widths.svg", svg.finish());
            }
        }
    }
    curves(&log, &mut figures, &mut body, false);
    let secs: f64 = log.iter().filter_map(|l| l.get("epoch_s")?.num()).sum();
    let best = log.iter().filter_map(|l| l.get("acc_test")?.num()).fold(f64::NAN, f64::max);
    let last = log.last().and_then(|l| l.get("acc_test")?.num());
    let times = vec![
        ("epochs done".to_string(), log.len().to_string()),
        ("time".to_string(), format!("{secs:.0} s")),
        ("test accuracy, last epoch".to_string(), last.map_or("—".into(), |a| format!("{:.2} %", a * 100.0))),
        (
            "test accuracy, best epoch".to_string(),
            if best.is_nan() { "—".into() } else { format!("{:.2} %", best * 100.0) },
        ),
    ];
    Ok(Report { html: page(dir, "training", &body, &set, &times), figures })
}

/// What marks a page as written by `rarts report`.
const GENERATOR: &str = "<meta name=\"generator\" content=\"rarts report\"/>";

/// Whether `html` is a page `rarts report` wrote (before the generator mark,
/// its pages began with this head and a `rarts …` title).
fn written_by_us(html: &str) -> bool {
    html.contains(GENERATOR)
        || html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>rarts ")
}

/// The page around `body`: title, settings and times tables, style.
fn page(dir: &Path, what: &str, body: &str, settings: &[(String, String)], times: &[(String, String)]) -> String {
    let title = format!("rarts {what}: {}", dir.display());
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n{GENERATOR}\n<title>{t}</title>\n<style>\n\
         body {{ font-family: 'DejaVu Sans', Arial, Helvetica, sans-serif; margin: 24px auto; max-width: 1120px; \
         color: #222; line-height: 1.4; padding: 0 16px; }}\n\
         h1 {{ font-size: 22px; }} h2 {{ font-size: 18px; margin-top: 28px; }} h3 {{ font-size: 16px; }}\n\
         table {{ border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }}\n\
         th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }}\n\
         th {{ background: #f3f3f3; }}\n\
         figure {{ margin: 12px 0; }}\n\
         figure svg {{ max-width: 100%; height: auto; }}\n\
         code {{ font-size: 12px; background: #f5f5f5; padding: 0 2px; }}\n\
         p.warning {{ background: #fff3cd; border-left: 4px solid #d55e00; padding: 6px 10px; }}\n\
         </style>\n</head>\n<body>\n<h1>{t}</h1>\n",
        t = escape(&title)
    );
    let _ = writeln!(
        s,
        "<p>Written {} by rarts {} on {}; a run rewrites it after every epoch.</p>",
        crate::rundir::today(),
        env!("CARGO_PKG_VERSION"),
        escape(&crate::rundir::machine())
    );
    for (name, rows) in [("Run", times), ("Settings", settings)] {
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(s, "<h2>{name}</h2>\n<table><tbody>");
        for (k, v) in rows {
            let _ = writeln!(s, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(v));
        }
        s.push_str("</tbody></table>\n");
    }
    s.push_str(body);
    s.push_str("</body>\n</html>\n");
    s
}

/// The report of `dir` (see the module's documentation).
pub fn build(dir: &Path) -> Result<Report> {
    build_with(dir, &SweepView::default())
}

/// [`build`], a sweep's figure as `view` asks (other folders refuse a view
/// other than the default).
pub fn build_with(dir: &Path, view: &SweepView) -> Result<Report> {
    let k = kind(dir)?;
    let chosen = view.metric.is_some() || view.x.is_some() || view.by.is_some() || view.heat_map;
    if chosen && k != Kind::Sweep {
        crate::bail!(
            "{}: --metric, --x, --by and --heat-map choose a sweep's figure; expected a sweep's folder",
            dir.display()
        );
    }
    match k {
        Kind::Search => search_report(dir),
        Kind::Train => train_report(dir),
        Kind::Compare => compare::compare_report(dir),
        Kind::Sweep => sweep::sweep_report(dir, view),
    }
}

/// `files` and the report's: what a run's `--force` removes.
pub fn with_report_files<'a>(files: &[&'a str]) -> Vec<&'a str> {
    files.iter().copied().chain(FILES).collect()
}

/// Writes the report of a run's folder after an epoch; a report that
/// cannot be written is a warning, never the end of the run.
pub fn write_during_run(dir: &Path) {
    if let Err(e) = write(dir) {
        eprintln!("warning: the report of {} was not written: {}", dir.display(), e.0);
    }
}

/// Builds the report of `dir` and writes it (each file atomically) into
/// `dir`; returns the page's path.
pub fn write(dir: &Path) -> Result<PathBuf> {
    write_with(dir, &SweepView::default())
}

/// [`write`] with a sweep's figure as `view` asks.
pub fn write_with(dir: &Path, view: &SweepView) -> Result<PathBuf> {
    let r = build_with(dir, view)?;
    let path = dir.join(HTML);
    if let Ok(old) = std::fs::read_to_string(&path)
        && !written_by_us(&old)
    {
        crate::bail!(
            "{}: not a page rarts report wrote; left as it is (move it away to have the report written)",
            path.display()
        );
    }
    for (file, svg) in &r.figures {
        crate::rundir::write_atomic(&dir.join(file), svg.as_bytes())?;
    }
    crate::rundir::write_atomic(&path, r.html.as_bytes())?;
    Ok(path)
}
