//! A comparison's `results.md`: the table per method (test accuracy, or a
//! NAS-Bench-201 table's three accuracies), the reference rows, search
//! costs, the cells and the settings.

use std::fmt::Write as _;

use super::{Cost, Outcome, Preset, mean_std};
use crate::rundir::{machine, today};
use crate::space::SpaceKind;
use crate::space::nb201;
use crate::space::nb201::table::{Accuracies, Nb201Table};

pub(super) fn report(p: &Preset, rows: &[(&str, Vec<Outcome>)], table: Option<&Nb201Table>) -> String {
    use nb201::table::{DATASETS, PUBLISHED_DARTS};
    let mut s = String::new();
    let space = p.search.step.space;
    let k = match space {
        SpaceKind::Darts => crate::space::darts::PRIMITIVES.len(),
        SpaceKind::Nb201 => nb201::OPS.len(),
        SpaceKind::Width => crate::space::width::FRACTIONS.len(),
    };
    let _ = writeln!(s, "# rarts compare --space {} --preset {}\n", space.name(), p.name);
    let _ =
        writeln!(s, "Date {}; machine: {}; seeds {:?}; data {}.\n", today(), machine(), p.seeds, p.search.step.data);
    if let Some(t) = table {
        let _ = writeln!(
            s,
            "Each cell is judged by the NAS-Bench-201 table ({}): the test accuracy of its network (C = 16, 5 cells \
             per stage) trained 200 epochs on each data set, as NATS-Bench reports it.{}\n",
            t.path().display(),
            if p.retrain { "" } else { " Nothing was retrained." }
        );
    }
    let nb = space == SpaceKind::Nb201;
    let pct = |v: &[f64]| {
        let (m, sd) = mean_std(v);
        format!("{m:.2} ± {sd:.2}")
    };
    let mut head = vec!["method".to_string()];
    if table.is_some() {
        head.extend(DATASETS.iter().map(|(_, name)| format!("{name} (%)")));
        head.push("per seed (CIFAR-10)".into());
    }
    if p.retrain {
        head.push("retrained test accuracy (%)".into());
        head.push("per seed".into());
    }
    head.extend(
        [
            "ms / search step (median)",
            "CPU ms / search step",
            "search time (s)",
            &format!("max \\|softmax(α) − 1/{k}\\|"),
        ]
        .map(String::from),
    );
    if nb {
        head.push(format!("edges by op, {} (of 6)", nb201::OPS.join(" / ")));
    }
    let _ = writeln!(s, "| {} |", head.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(head.len()));
    // (method, mean, std) of what ranks the methods: the table's CIFAR-10
    // accuracy where a table judges, else the retrained accuracy.
    let mut means = Vec::new();
    for (method, outs) in rows {
        let mut cells = vec![method.to_string()];
        let bench: Vec<Accuracies> = outs.iter().filter_map(|o| o.bench).collect();
        if table.is_some() {
            for d in 0..DATASETS.len() {
                cells.push(pct(&bench.iter().map(|a| a[d]).collect::<Vec<_>>()));
            }
            cells.push(bench.iter().map(|a| format!("{:.2}", a[0])).collect::<Vec<_>>().join(", "));
            let (m, sd) = mean_std(&bench.iter().map(|a| a[0]).collect::<Vec<_>>());
            means.push((*method, m, sd));
        }
        if p.retrain {
            let accs: Vec<f64> = outs.iter().filter_map(|o| o.test_acc).map(|a| a * 100.0).collect();
            cells.push(pct(&accs));
            cells.push(accs.iter().map(|a| format!("{a:.2}")).collect::<Vec<_>>().join(", "));
            if table.is_none() {
                let (m, sd) = mean_std(&accs);
                means.push((*method, m, sd));
            }
        }
        let cost = |f: fn(&Cost) -> Option<f64>| {
            let v: Vec<f64> = outs.iter().filter_map(|o| o.search.as_ref().and_then(f)).collect();
            if v.is_empty() { "—".to_string() } else { format!("{:.0}", mean_std(&v).0) }
        };
        let spread: Vec<String> = outs.iter().filter_map(|o| o.alpha_spread.map(|a| format!("{a:.3}"))).collect();
        cells.push(cost(|c| Some(c.step_ms)));
        cells.push(cost(|c| c.cpu_ms));
        cells.push(cost(|c| Some(c.total_s)));
        cells.push(if spread.is_empty() { "—".into() } else { spread.join(", ") });
        if nb {
            let counts: Vec<String> =
                outs.iter().filter_map(|o| o.op_counts.map(|c| c.map(|k| k.to_string()).join("/"))).collect();
            cells.push(counts.join(", "));
        }
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
    if let Some(t) = table {
        let cols = t.columns();
        let blank = head.len() - 1 - DATASETS.len();
        let row = |name: &str, v: [String; 3], note: &str| {
            let mut cells = vec![name.to_string()];
            cells.extend(v);
            cells.push(note.to_string());
            cells.extend(std::iter::repeat_n(String::new(), blank - 1));
            format!("| {} |", cells.join(" | "))
        };
        let _ = writeln!(
            s,
            "{}",
            row(
                "random cell, expected (the whole table: mean ± std)",
                std::array::from_fn(|d| format!("{:.2} ± {:.2}", cols[d].mean, cols[d].std)),
                ""
            )
        );
        let _ = writeln!(
            s,
            "{}",
            row("the table's median cell", std::array::from_fn(|d| format!("{:.2}", cols[d].median)), "")
        );
        let _ = writeln!(
            s,
            "{}",
            row(
                "the table's best cell (per data set)",
                std::array::from_fn(|d| format!("{:.2}", cols[d].best)),
                &format!("`{}` on CIFAR-10", t.best_cell(0).to_arch_str())
            )
        );
        let _ = writeln!(
            s,
            "{}",
            row(
                "DARTS 1st and 2nd order, published",
                PUBLISHED_DARTS.map(|v| format!("{v:.2} ± 0.00")),
                "Dong and Yang (ICLR 2020), Table 5: the cell of all skip_connect"
            )
        );
    }
    // Mean over seeds of one cost; None unless every seed of the method has it.
    let mean_cost = |name: &str, f: fn(&Cost) -> Option<f64>| -> Option<f64> {
        let outs = &rows.iter().find(|r| r.0 == name)?.1;
        let v: Option<Vec<f64>> = outs.iter().map(|o| o.search.as_ref().and_then(f)).collect();
        v.filter(|v| !v.is_empty()).map(|v| mean_std(&v).0)
    };
    for (what, f) in [
        ("median wall ms per step", (|c: &Cost| Some(c.step_ms)) as fn(&Cost) -> Option<f64>),
        ("CPU ms per step (unmoved by other work on the machine)", |c: &Cost| c.cpu_ms),
    ] {
        if let (Some(r), Some(d2)) = (mean_cost("rarts", f), mean_cost("darts2", f)) {
            let _ = writeln!(
                s,
                "\nSearch cost, RARTS / DARTS second order, {what} in this run: {:.2} (the paper reports about 0.4).",
                r / d2
            );
        }
    }
    let best = means.iter().cloned().fold(("", f64::MIN, 0.0), |b, m| if m.1 > b.1 { m } else { b });
    let overlapping: Vec<&str> =
        means.iter().filter(|m| m.0 != best.0 && m.1 + m.2 >= best.1 - best.2).map(|m| m.0).collect();
    let _ = writeln!(
        s,
        "\nHighest mean{}: {} ({:.2} %). {}",
        if table.is_some() { " on CIFAR-10 (the table)" } else { "" },
        best.0,
        best.1,
        if overlapping.is_empty() {
            "Its mean ± std does not overlap any other method's.".to_string()
        } else {
            format!(
                "Within the spread across seeds of: {} — these differences are not significant.",
                overlapping.join(", ")
            )
        }
    );
    let cut_off: Vec<String> = rows
        .iter()
        .flat_map(|(method, outs)| {
            outs.iter().zip(&p.seeds).filter(|(o, _)| o.cut_off).map(move |(_, s)| format!("{method} seed {s}"))
        })
        .collect();
    if !cut_off.is_empty() {
        let _ = writeln!(s, "\nCut off from the input ({}): {}.", nb201::CUT_OFF, cut_off.join(", "));
    }
    let _ = writeln!(s, "\n## {}\n", if nb { "Cells" } else { "Genotypes" });
    for (method, outs) in rows {
        for (o, seed) in outs.iter().zip(&p.seeds) {
            let bench = o.bench.map_or(String::new(), |a| {
                let v: Vec<String> = DATASETS.iter().zip(&a).map(|((_, name), v)| format!("{name} {v:.2} %")).collect();
                format!(" — {}", v.join(", "))
            });
            let _ = writeln!(
                s,
                "- {method}, seed {seed}: `{}`{}{bench}",
                o.genotype,
                if o.cut_off { " (cut off)" } else { "" }
            );
        }
    }
    let _ = writeln!(s, "\n## Settings\n");
    let _ = writeln!(s, "Search (every method): {}", flags(&p.search.identity()));
    if p.retrain {
        let _ = writeln!(s, "\nRetraining (every method): {}", flags(&p.train.identity()));
    } else {
        let _ = writeln!(s, "\nNo retraining: the table is the judge.");
    }
    s
}

pub(super) fn flags(v: &[(&'static str, String)]) -> String {
    v.iter()
        .filter(|(f, _)| !matches!(*f, "--algo" | "--seed" | "--genotype" | "--init-from"))
        .map(|(f, x)| format!("`{f} {x}`"))
        .collect::<Vec<_>>()
        .join(" ")
}
