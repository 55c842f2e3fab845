//! A sweep folder's page: a chosen metric over one or two of the grid's
//! flags (a line per value of the second, or a heat map), then the table
//! of every finished point.

use std::path::Path;

use super::plot::{Series, heat_map, line_chart};
use super::svg::Style;
use super::{Report, add, compare::markdown, page};
use crate::error::Result;
use crate::sweep::table::{self, Row};
use crate::sweep::{Command, Sweep};

/// What the figure shows: `metric` (default: the toy's α, a search's
/// α spread, a training's test accuracy) over grid flag `x` (default the
/// first), a line per value of `by` (default the second, if any), or a heat
/// map of the two.
#[derive(Clone, Debug, Default)]
pub struct SweepView {
    pub metric: Option<String>,
    pub x: Option<String>,
    pub by: Option<String>,
    pub heat_map: bool,
}

/// The figure's file.
pub const FIGURE: &str = "report-sweep.svg";

fn flag(f: &str) -> String {
    format!("--{}", f.trim_start_matches('-'))
}

/// The mean of `metric` over the rows at `x = xv` (and `by = bv`): over
/// seeds and any grid flag not drawn.
fn mean(rows: &[Row], metric: &str, at: &[(&str, &str)]) -> f64 {
    let v: Vec<f64> = rows
        .iter()
        .filter(|r| at.iter().all(|(f, x)| r.point.values.iter().any(|(g, y)| g == f && y == x)))
        .filter_map(|r| r.numbers.iter().find(|(n, _)| n == metric).map(|x| x.1))
        .filter(|v| !v.is_nan())
        .collect();
    if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
}

pub(super) fn sweep_report(dir: &Path, view: &SweepView) -> Result<Report> {
    let sw = Sweep::load(dir)?;
    let (rows, left) = table::rows(&sw, dir)?;
    if rows.is_empty() {
        crate::bail!("{}: no point of the sweep has finished yet; expected at least one", dir.display());
    }
    let names: Vec<&str> = rows[0].numbers.iter().map(|(n, _)| n.as_str()).collect();
    let metric = view.metric.clone().unwrap_or_else(|| {
        match sw.command {
            Command::Toy => "alpha",
            Command::Search => "alpha_spread",
            Command::Train => "acc_test",
        }
        .to_string()
    });
    if !names.contains(&metric.as_str()) {
        crate::bail!("--metric {metric}: not a number of this sweep; expected one of {}", names.join(", "));
    }
    let grid_flag = |f: &str, what: &str| -> Result<&(String, Vec<String>)> {
        let f = flag(f);
        sw.grid.iter().find(|(g, _)| *g == f).ok_or_else(|| {
            let flags: Vec<&str> = sw.grid.iter().map(|(g, _)| g.as_str()).collect();
            crate::error::Error(format!("{what} {f}: not a flag of the grid; expected one of {}", flags.join(", ")))
        })
    };
    let x = match &view.x {
        Some(f) => grid_flag(f, "--x")?,
        None => &sw.grid[0],
    };
    let by = match &view.by {
        Some(f) => Some(grid_flag(f, "--by")?),
        None => sw.grid.iter().find(|(g, _)| *g != x.0),
    };
    if by.is_some_and(|b| b.0 == x.0) {
        crate::bail!("--by {}: the same flag as --x; expected another", x.0);
    }
    if view.heat_map && by.is_none() {
        crate::bail!("--heat-map: needs two flags in the grid (--x and --by)");
    }
    let title = format!("{metric} over {}{}", x.0, by.map_or(String::new(), |b| format!(" and {}", b.0)));
    let svg = if let (true, Some(b)) = (view.heat_map, by) {
        let values: Vec<Vec<f64>> =
            b.1.iter()
                .map(|bv| x.1.iter().map(|xv| mean(&rows, &metric, &[(&x.0, xv), (&b.0, bv)])).collect())
                .collect();
        heat_map(&title, &x.0, &b.0, &x.1, &b.1, &values)
    } else {
        // Numbers where every value is one, else the values in order.
        let nums: Option<Vec<f64>> = x.1.iter().map(|v| v.parse().ok()).collect();
        // Values spread over two decades or more (0.1, 1, 10) on a log axis.
        let log = nums.as_ref().is_some_and(|n| {
            let (lo, hi) = n.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
            lo > 0.0 && hi / lo >= 100.0
        });
        let at = |i: usize| nums.as_ref().map_or(i as f64, |n| if log { n[i].log10() } else { n[i] });
        let series: Vec<Series> = match by {
            Some(b) => {
                b.1.iter()
                    .enumerate()
                    .map(|(k, bv)| Series {
                        name: format!("{} {bv}", b.0),
                        points: (0..x.1.len())
                            .map(|i| (at(i), mean(&rows, &metric, &[(&x.0, &x.1[i]), (&b.0, bv)])))
                            .collect(),
                        style: Style::nth(k),
                    })
                    .collect()
            }
            None => vec![Series {
                name: metric.clone(),
                points: (0..x.1.len()).map(|i| (at(i), mean(&rows, &metric, &[(&x.0, &x.1[i])]))).collect(),
                style: Style::nth(0),
            }],
        };
        let x_label = match (&nums, log) {
            (Some(_), true) => format!("{} (log10)", x.0),
            (Some(_), false) => x.0.clone(),
            (None, _) => format!("{} ({})", x.0, x.1.join(", ")),
        };
        line_chart(&title, &x_label, &metric, &series)
    };
    let mut figures = Vec::new();
    let mut body = String::new();
    add(&mut figures, &mut body, FIGURE, svg.finish());
    let drawn = 1 + by.is_some() as usize;
    match (sw.seeds.len() > 1, sw.grid.len() > drawn) {
        (true, true) => body += "<p>Each point of the figure is the mean over seeds and the grid's other flags.</p>\n",
        (true, false) => body += "<p>Each point of the figure is the mean over seeds.</p>\n",
        (false, true) => body += "<p>Each point of the figure is the mean over the grid's other flags.</p>\n",
        (false, false) => {}
    }
    body += &markdown(&table::markdown(&sw, &rows, &left));
    let settings = vec![("command".to_string(), sw.command.name().to_string()), ("flags".into(), sw.base.join(" "))];
    Ok(Report { html: page(dir, "sweep", &body, &settings, &[]), figures })
}
