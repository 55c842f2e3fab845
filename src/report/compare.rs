//! A comparison folder's page: its `results.md` as HTML (a small Markdown
//! subset: headings, paragraphs, lists, tables, code), a dot plot of the
//! per-seed numbers, and links to the jobs' own reports.

use std::fmt::Write as _;
use std::path::Path;

use super::svg::escape;
use super::{Report, add, page, plot};
use crate::error::{Context, Result};

/// Inline Markdown of the results file: `code` spans, escaped text.
fn inline(s: &str) -> String {
    let mut o = String::new();
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(o, "<code>{}</code>", escape(part));
        } else {
            o.push_str(&escape(&part.replace("\\|", "|")));
        }
    }
    o
}

/// The cells of a Markdown table row (`\|` kept inside a cell).
fn cells(row: &str) -> Vec<String> {
    let t = row.trim().trim_start_matches('|');
    let t = t.strip_suffix('|').unwrap_or(t);
    let mut out = vec![String::new()];
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().unwrap().push_str("\\|");
                chars.next();
            }
            '|' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out.iter().map(|c| c.trim().to_string()).collect()
}

/// The Markdown `results.md` writes (headings, tables, lists, paragraphs) as HTML.
pub(super) fn markdown(md: &str) -> String {
    let mut o = String::new();
    let mut in_table = false;
    let mut in_list = false;
    for line in md.lines() {
        let t = line.trim();
        if in_table && !t.starts_with('|') {
            o.push_str("</tbody></table>\n");
            in_table = false;
        }
        if in_list && !t.starts_with("- ") {
            o.push_str("</ul>\n");
            in_list = false;
        }
        if let Some(h) = t.strip_prefix("## ") {
            let _ = writeln!(o, "<h3>{}</h3>", inline(h));
        } else if let Some(h) = t.strip_prefix("# ") {
            let _ = writeln!(o, "<h2>{}</h2>", inline(h));
        } else if t.starts_with('|') {
            if t.starts_with("|---") {
                continue;
            }
            if !in_table {
                o.push_str("<table><thead><tr>");
                for c in cells(t) {
                    let _ = write!(o, "<th>{}</th>", inline(&c));
                }
                o.push_str("</tr></thead><tbody>\n");
                in_table = true;
            } else {
                o.push_str("<tr>");
                for c in cells(t) {
                    let _ = write!(o, "<td>{}</td>", inline(&c));
                }
                o.push_str("</tr>\n");
            }
        } else if let Some(item) = t.strip_prefix("- ") {
            if !in_list {
                o.push_str("<ul>\n");
                in_list = true;
            }
            let _ = writeln!(o, "<li>{}</li>", inline(item));
        } else if !t.is_empty() {
            let _ = writeln!(o, "<p>{}</p>", inline(t));
        }
    }
    if in_table {
        o.push_str("</tbody></table>\n");
    }
    if in_list {
        o.push_str("</ul>\n");
    }
    o
}

/// A comparison's page: its results table, a dot plot of test accuracy per
/// method and seed, links to the reports of its jobs.
pub(super) fn compare_report(dir: &Path) -> Result<Report> {
    let path = dir.join("results.md");
    let md = std::fs::read_to_string(&path).ctx(|| format!("reading {}", path.display()))?;
    let mut figures = Vec::new();
    let mut body = String::new();
    // The first table's rows: method, mean ± std, per seed.
    let mut rows: Vec<(String, Vec<(String, f64)>)> = Vec::new();
    let mut seeds: Vec<String> = Vec::new();
    for line in md.lines() {
        if let Some(s) = line.strip_prefix("Date ").and_then(|l| l.split("seeds [").nth(1)) {
            let list = s.split(']').next().unwrap_or("");
            seeds = list.split(", ").map(String::from).collect();
        }
    }
    // The column of per-seed numbers: the table's CIFAR-10 accuracy where a
    // NAS-Bench-201 table judged, else the retrained test accuracy.
    let header = md.lines().find(|l| l.starts_with("| method")).map(cells).unwrap_or_default();
    let per_seed = header.iter().position(|h| h.starts_with("per seed")).unwrap_or(2);
    let judged_by_table = header.get(per_seed).is_some_and(|h| h.contains("CIFAR-10"));
    for line in md.lines().skip_while(|l| !l.starts_with("| method")).skip(2) {
        if !line.starts_with('|') {
            break;
        }
        let c = cells(line);
        if c.len() <= per_seed {
            continue;
        }
        let vals: Vec<(String, f64)> = c[per_seed]
            .split(", ")
            .enumerate()
            .filter_map(|(i, v)| {
                let label = seeds.get(i).map_or(format!("#{i}"), |s| format!("s{s}"));
                Some((label, v.trim().parse().ok()?))
            })
            .collect();
        if !vals.is_empty() {
            rows.push((c[0].clone(), vals));
        }
    }
    if !rows.is_empty() {
        let (title, axis) = if judged_by_table {
            ("CIFAR-10 accuracy per method and seed (NAS-Bench-201 table)", "200-epoch test accuracy (%)")
        } else {
            ("Test accuracy per method and seed", "test accuracy (%)")
        };
        let svg = plot::dot_plot(title, axis, &rows);
        add(&mut figures, &mut body, "report-test-accuracy.svg", svg.finish());
    }
    body.push_str(&markdown(&md));
    let mut jobs: Vec<String> = std::fs::read_dir(dir)
        .ctx(|| format!("listing {}", dir.display()))?
        .flatten()
        .filter(|e| e.path().join("log.jsonl").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    jobs.sort();
    if !jobs.is_empty() {
        let _ = writeln!(
            body,
            "<h2>Jobs</h2>\n<p>Each job's own report, where it has been written (<code>rarts report DIR/JOB</code>):</p>\n<ul>"
        );
        for j in &jobs {
            let _ = writeln!(body, "<li><a href=\"{0}/report.html\">{0}</a></li>", escape(j));
        }
        body.push_str("</ul>\n");
    }
    Ok(Report { html: page(dir, "comparison", &body, &[], &[]), figures })
}
