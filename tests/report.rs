//! `rarts report` and the report every run writes: each SVG and the page
//! parse as strict XML, and every expected figure is there — an edge per
//! op of the architecture, a panel per edge of α with a line per op, the
//! curves, a dot per method and seed of a comparison.

mod common;

use std::fs;
use std::path::Path;

use common::cli::{bin, fails_with, ok, small_search, tmp};

/// Parses `file` as XML; returns its text.
fn xml(file: &Path) -> String {
    let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let opt = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
    if let Err(e) = roxmltree::Document::parse_with_options(&text, opt) {
        panic!("{}: not well-formed: {e}", file.display());
    }
    text
}

/// Elements named `tag` whose `class` is `class` in the SVG text.
fn count(svg: &str, tag: &str, class: &str) -> usize {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants().filter(|n| n.has_tag_name(tag) && n.attribute("class") == Some(class)).count()
}

/// Panel titles of a panel grid (bold 12 px text).
fn panels(svg: &str) -> usize {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| {
            n.has_tag_name("text") && n.attribute("font-size") == Some("12") && n.attribute("font-weight").is_some()
        })
        .count()
}

/// The page parses, holds every figure inline, and every SVG file parses.
fn check_page(dir: &Path, figures: &[&str]) -> String {
    let html = xml(&dir.join("report.html"));
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<html lang=\"en\">"), "{html}");
    assert!(!html.contains("<script"), "no scripts");
    for f in figures {
        let svg = xml(&dir.join(f));
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{f}");
        assert!(html.contains(&format!("<figure id=\"{}\">", f.trim_end_matches(".svg"))), "{f} not in the page");
    }
    html
}

/// A DARTS search: the run writes its report after every epoch; α is
/// sampled every --alpha-every steps; the cells have an edge per op (8),
/// α a panel per edge (14) with a line per op (8); the curves are drawn.
#[test]
fn a_darts_search_reports_its_cells_alpha_and_curves() {
    let out = tmp("report-darts");
    ok(&small_search(&out, "rarts", 2, 6).args(["--alpha-every", "2"]).output().unwrap());
    let trace = fs::read_to_string(out.join("alpha.jsonl")).unwrap();
    assert_eq!(trace.lines().count(), 2 * 3, "{trace}");
    assert!(
        trace.lines().last().unwrap().starts_with("{\"epoch\":1,\"step\":6,\"steps\":6,\"softmax_alpha_normal\":[[")
    );
    let figures = [
        "report-cell-normal.svg",
        "report-cell-reduce.svg",
        "report-alpha-normal.svg",
        "report-alpha-reduce.svg",
        "report-loss.svg",
        "report-accuracy.svg",
        "report-lr.svg",
    ];
    let html = check_page(&out, &figures);
    assert!(html.contains("<th>--algo</th><td>rarts</td>") && html.contains("epochs done"), "settings and times");
    for cell in ["normal", "reduce"] {
        let svg = xml(&out.join(format!("report-cell-{cell}.svg")));
        assert_eq!(count(&svg, "path", "edge"), 8, "{cell}: an edge per op");
        assert_eq!(count(&svg, "path", "concat"), 4, "{cell}: the output concatenates 4 nodes");
        assert_eq!(count(&svg, "rect", "node"), 7, "{cell}: 2 inputs, 4 nodes, the output");
        let a = xml(&out.join(format!("report-alpha-{cell}.svg")));
        assert_eq!(panels(&a), 14, "{cell}: a panel per edge");
        assert_eq!(count(&a, "polyline", "alpha-line"), 14 * 8, "{cell}: a line per op in each");
        assert_eq!(count(&a, "polyline", "legend"), 8, "{cell}: one legend entry per op");
    }
    let loss = xml(&out.join("report-loss.svg"));
    assert_eq!(count(&loss, "polyline", "series"), 2, "training and validation loss");
    // `rarts report` on the finished folder writes the same figures.
    let before = fs::read_to_string(out.join("report-cell-normal.svg")).unwrap();
    fs::remove_file(out.join("report.html")).unwrap();
    let stdout = ok(&bin().arg("report").arg(&out).output().unwrap());
    assert!(stdout.trim_end().ends_with("report.html"), "{stdout}");
    assert_eq!(fs::read_to_string(out.join("report-cell-normal.svg")).unwrap(), before);
    // --force removes the report with the rest; --no-report writes none.
    ok(&small_search(&out, "rarts", 1, 2).args(["--force", "--no-report"]).output().unwrap());
    assert!(!out.join("report.html").exists() && !out.join("report-cell-normal.svg").exists());
}

/// NB201 and width searches: the cell has an edge per op that is not
/// `none`, α a panel per edge (6) or per searchable layer (3 at depth 8),
/// the widths a bar per layer.
#[test]
fn nb201_and_width_searches_report_their_own_figures() {
    let nb = tmp("report-nb201");
    let mut c = bin();
    c.args(["search", "--space", "nb201", "--c", "4", "--cells-per-stage", "1", "--batch", "8", "--epochs", "1"]);
    ok(&c.args(["--steps-per-epoch", "3", "--eval-images", "0", "--quiet", "--out"]).arg(&nb).output().unwrap());
    check_page(&nb, &["report-cell.svg", "report-alpha-cell.svg", "report-loss.svg"]);
    let arch = fs::read_to_string(nb.join("genotype.txt")).unwrap();
    let ops = arch.split('|').filter(|p| p.contains('~') && !p.starts_with("none~")).count();
    let cell = xml(&nb.join("report-cell.svg"));
    assert_eq!(count(&cell, "path", "edge"), ops, "{arch}");
    assert!(cell.contains(arch.trim()), "the cell's arch string is its title");
    let a = xml(&nb.join("report-alpha-cell.svg"));
    assert_eq!((panels(&a), count(&a, "polyline", "alpha-line")), (6, 6 * 5));

    let wd = tmp("report-width");
    let mut c = bin();
    c.args(["search", "--space", "width", "--depth", "8", "--batch", "8", "--epochs", "1", "--steps-per-epoch", "3"]);
    ok(&c.args(["--eval-images", "0", "--quiet", "--out"]).arg(&wd).output().unwrap());
    check_page(&wd, &["report-widths.svg", "report-alpha-width.svg"]);
    let bars = xml(&wd.join("report-widths.svg"));
    for l in ["layer1.0", "layer2.0", "layer3.0"] {
        assert!(bars.contains(&format!(">{l}</text>")), "{l} labelled");
    }
    // A mark per layer at its expected width under softmax(α).
    assert_eq!(count(&bars, "polyline", "expected"), 3);
    let a = xml(&wd.join("report-alpha-width.svg"));
    assert_eq!((panels(&a), count(&a, "polyline", "alpha-line")), (3, 3 * 4));
}

/// A training folder: its network and loss and accuracy curves (training
/// and test); a comparison folder: its table and a dot per method and seed;
/// a folder that is not a run: a clear error.
#[test]
fn train_and_compare_folders_and_errors() {
    let tr = tmp("report-train");
    let mut c = bin();
    c.args(["train", "--genotype", "DARTS_V2", "--c", "4", "--layers", "3", "--batch", "16", "--epochs", "2"]);
    ok(&c.args(["--steps-per-epoch", "2", "--eval-images", "50", "--quiet", "--out"]).arg(&tr).output().unwrap());
    let html = check_page(
        &tr,
        &["report-cell-normal.svg", "report-cell-reduce.svg", "report-loss.svg", "report-accuracy.svg"],
    );
    assert!(html.contains("test accuracy, last epoch"), "{html}");
    let cell = xml(&tr.join("report-cell-normal.svg"));
    assert_eq!(count(&cell, "path", "edge"), 8);
    let acc = xml(&tr.join("report-accuracy.svg"));
    assert_eq!(count(&acc, "polyline", "series"), 2, "training and test accuracy");

    let cmp = tmp("report-compare");
    ok(&bin().args(["compare", "--space", "nb201", "--preset", "smoke", "--out"]).arg(&cmp).output().unwrap());
    let html = check_page(&cmp, &["report-test-accuracy.svg"]);
    assert!(
        html.contains("<table><thead><tr><th>method</th>") && html.contains("search-rarts-s0/report.html"),
        "{html}"
    );
    let dots = xml(&cmp.join("report-test-accuracy.svg"));
    let doc = roxmltree::Document::parse(&dots).unwrap();
    let labels = doc.descendants().filter(|n| n.has_tag_name("text") && matches!(n.text(), Some("s0" | "s1"))).count();
    assert_eq!(labels, 4 * 2, "a dot per method and seed");

    let empty = tmp("report-empty");
    fs::create_dir_all(&empty).unwrap();
    fails_with(&bin().arg("report").arg(&empty).output().unwrap(), &["report-empty", "not a folder a rarts run made"]);
    fails_with(&bin().args(["report", "/nonexistent/run"]).output().unwrap(), &["/nonexistent/run", "not a folder"]);
}
