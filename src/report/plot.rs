//! Charts drawn with [`Svg`]: line charts with axes, ticks and a legend,
//! a grid of small panels (softmax(α) per edge over time) and a dot plot.

use super::svg::{Anchor, Style, Svg, tick_label, ticks};

/// One line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub style: Style,
}

/// The data range of `series` (x, y), padded where it is a point.
fn range(series: &[Series]) -> ((f64, f64), (f64, f64)) {
    let pts = series.iter().flat_map(|s| s.points.iter()).filter(|p| p.0.is_finite() && p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-12 {
        (x0, x1) = (x0 - 0.5, x1 + 0.5);
    }
    if y1 - y0 < 1e-12 {
        (y0, y1) = (y0 - 0.5, y1 + 0.5);
    } else {
        let pad = (y1 - y0) * 0.05;
        (y0, y1) = (y0 - pad, y1 + pad);
    }
    ((x0, x1), (y0, y1))
}

/// The drawing area of a chart and its data range.
struct Frame {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
    x: (f64, f64),
    y: (f64, f64),
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        self.left + (x - self.x.0) / (self.x.1 - self.x.0) * self.width
    }
    fn py(&self, y: f64) -> f64 {
        self.top + self.height - (y - self.y.0) / (self.y.1 - self.y.0) * self.height
    }

    /// The axes' box, tick marks and labels; `tick_size` the labels' font size.
    fn axes(&self, svg: &mut Svg, x_ticks: usize, y_ticks: usize, tick_size: f64) {
        for t in ticks(self.y.0, self.y.1, y_ticks) {
            let y = self.py(t);
            svg.line(self.left, y, self.left + self.width, y, "#e4e4e4", 1.0, "");
            svg.line(self.left - 4.0, y, self.left, y, "#444", 1.0, "");
            svg.text(self.left - 6.0, y + tick_size * 0.35, &tick_label(t), tick_size, Anchor::End);
        }
        for t in ticks(self.x.0, self.x.1, x_ticks) {
            let x = self.px(t);
            svg.line(x, self.top + self.height, x, self.top + self.height + 4.0, "#444", 1.0, "");
            svg.text(x, self.top + self.height + 4.0 + tick_size, &tick_label(t), tick_size, Anchor::Middle);
        }
        svg.line(self.left, self.top + self.height, self.left + self.width, self.top + self.height, "#444", 1.0, "");
        svg.line(self.left, self.top, self.left, self.top + self.height, "#444", 1.0, "");
    }

    fn series(&self, svg: &mut Svg, s: &Series, width: f64, marker: f64, class: &str) {
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|&(x, y)| (self.px(x), self.py(y)))
            .collect();
        svg.polyline(&pts, s.style, width, class);
        // Markers where the points are few enough to tell apart.
        if marker > 0.0 && pts.len() <= 40 {
            for &(x, y) in &pts {
                svg.marker(x, y, s.style, marker);
            }
        }
    }
}

/// A line chart: title, axis labels, one line per series, a legend below.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Svg {
    let (w, plot_h) = (560.0, 260.0);
    let legend_rows = series.len().div_ceil(2);
    let h = 40.0 + plot_h + 50.0 + legend_rows as f64 * 20.0 + 10.0;
    let mut svg = Svg::new(w, h);
    let (x, y) = range(series);
    let f = Frame { left: 70.0, top: 40.0, width: w - 90.0, height: plot_h, x, y };
    svg.text_styled(w / 2.0, 22.0, title, 15.0, Anchor::Middle, "#111", true);
    f.axes(&mut svg, 6, 5, 12.0);
    svg.text(f.left + f.width / 2.0, f.top + plot_h + 36.0, x_label, 13.0, Anchor::Middle);
    svg.text_vertical(18.0, f.top + plot_h / 2.0, y_label, 13.0);
    for s in series {
        f.series(&mut svg, s, 2.0, 3.5, "series");
    }
    let ly = f.top + plot_h + 56.0;
    for (i, s) in series.iter().enumerate() {
        let (lx, ly) = (f.left + (i % 2) as f64 * 240.0, ly + (i / 2) as f64 * 20.0);
        svg.polyline(&[(lx, ly - 4.0), (lx + 30.0, ly - 4.0)], s.style, 2.0, "legend");
        svg.marker(lx + 15.0, ly - 4.0, s.style, 3.5);
        svg.text(lx + 38.0, ly, &s.name, 12.0, Anchor::Start);
    }
    svg
}

/// A grid of small panels sharing one legend: `panels[i]` is a title and
/// its series (the same names and styles in every panel); y from 0 to
/// `y_max`.
pub fn panel_grid(title: &str, x_label: &str, panels: &[(String, Vec<Series>)], y_max: f64) -> Svg {
    let cols = 4usize.min(panels.len().max(1));
    let rows = panels.len().div_ceil(cols).max(1);
    let (pw, ph) = (200.0, 130.0);
    let (cell_w, cell_h) = (pw + 60.0, ph + 62.0);
    let names: Vec<&Series> = panels.first().map(|p| p.1.iter().collect()).unwrap_or_default();
    let legend_rows = names.len().div_ceil(4);
    let w = cols as f64 * cell_w + 20.0;
    let h = 36.0 + rows as f64 * cell_h + 26.0 + legend_rows as f64 * 20.0;
    let mut svg = Svg::new(w, h);
    svg.text_styled(w / 2.0, 22.0, title, 15.0, Anchor::Middle, "#111", true);
    for (i, (name, series)) in panels.iter().enumerate() {
        let (c, r) = (i % cols, i / cols);
        let (x, _) = range(series);
        let f = Frame {
            left: 20.0 + c as f64 * cell_w + 42.0,
            top: 36.0 + r as f64 * cell_h + 20.0,
            width: pw,
            height: ph,
            x,
            y: (0.0, y_max),
        };
        svg.text_styled(f.left + pw / 2.0, f.top - 6.0, name, 12.0, Anchor::Middle, "#111", true);
        f.axes(&mut svg, 4, 4, 10.0);
        for s in series {
            f.series(&mut svg, s, 1.6, 0.0, "alpha-line");
        }
        svg.text(f.left + pw / 2.0, f.top + ph + 28.0, x_label, 10.0, Anchor::Middle);
    }
    let ly = 36.0 + rows as f64 * cell_h + 16.0;
    for (i, s) in names.iter().enumerate() {
        let (lx, ly) = (30.0 + (i % 4) as f64 * 220.0, ly + (i / 4) as f64 * 20.0);
        svg.polyline(&[(lx, ly - 4.0), (lx + 30.0, ly - 4.0)], s.style, 2.0, "legend");
        svg.text(lx + 38.0, ly, &s.name, 12.0, Anchor::Start);
    }
    svg
}

/// A dot plot: one row per group, a dot per value (its label beside it).
pub fn dot_plot(title: &str, x_label: &str, rows: &[(String, Vec<(String, f64)>)]) -> Svg {
    let (w, row_h) = (560.0, 44.0);
    let h = 50.0 + rows.len() as f64 * row_h + 50.0;
    let mut svg = Svg::new(w, h);
    svg.text_styled(w / 2.0, 22.0, title, 15.0, Anchor::Middle, "#111", true);
    let vals: Vec<f64> = rows.iter().flat_map(|r| r.1.iter().map(|v| v.1)).filter(|v| v.is_finite()).collect();
    let (lo, hi) = vals.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let (lo, hi) = if lo > hi {
        (0.0, 1.0)
    } else if hi - lo < 1e-9 {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    let pad = (hi - lo) * 0.1;
    let f = Frame {
        left: 110.0,
        top: 40.0,
        width: w - 140.0,
        height: rows.len() as f64 * row_h,
        x: (lo - pad, hi + pad),
        y: (0.0, rows.len() as f64),
    };
    for t in ticks(f.x.0, f.x.1, 6) {
        let x = f.px(t);
        svg.line(x, f.top, x, f.top + f.height, "#e4e4e4", 1.0, "");
        svg.line(x, f.top + f.height, x, f.top + f.height + 4.0, "#444", 1.0, "");
        svg.text(x, f.top + f.height + 16.0, &tick_label(t), 12.0, Anchor::Middle);
    }
    svg.line(f.left, f.top + f.height, f.left + f.width, f.top + f.height, "#444", 1.0, "");
    for (i, (name, vals)) in rows.iter().enumerate() {
        let y = f.top + (i as f64 + 0.5) * row_h;
        svg.text(f.left - 10.0, y + 4.0, name, 12.0, Anchor::End);
        let style = Style::nth(i);
        for (j, (label, v)) in vals.iter().enumerate() {
            let x = f.px(*v);
            svg.marker(x, y, style, 5.0);
            let dy = if j % 2 == 0 { -9.0 } else { 18.0 };
            svg.text(x, y + dy, label, 10.0, Anchor::Middle);
        }
    }
    svg.text(f.left + f.width / 2.0, f.top + f.height + 36.0, x_label, 13.0, Anchor::Middle);
    svg
}

/// A heat map: `values[r][c]` at column `xs[c]`, row `ys[r]`, each cell
/// shaded from light (the smallest value) to dark blue (the largest) and
/// labelled with its value; NaN cells are left grey.
pub fn heat_map(title: &str, x_label: &str, y_label: &str, xs: &[String], ys: &[String], values: &[Vec<f64>]) -> Svg {
    let (cell_w, cell_h, left, top) = (84.0, 34.0, 90.0, 44.0);
    let w = (left + cell_w * xs.len() as f64 + 20.0).max(320.0);
    let h = top + cell_h * ys.len() as f64 + 56.0;
    let mut svg = Svg::new(w, h);
    svg.text_styled(w / 2.0, 22.0, title, 15.0, Anchor::Middle, "#111", true);
    let finite: Vec<f64> = values.iter().flatten().copied().filter(|v| v.is_finite()).collect();
    let (lo, hi) = finite.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    for (r, row) in values.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            let (x, y) = (left + c as f64 * cell_w, top + r as f64 * cell_h);
            let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
            // From #eef4fb to #08306b.
            let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
            let fill = if v.is_finite() {
                format!("#{:02x}{:02x}{:02x}", mix(238.0, 8.0), mix(244.0, 48.0), mix(251.0, 107.0))
            } else {
                "#dddddd".into()
            };
            svg.rect(x, y, cell_w, cell_h, &fill, "#ffffff");
            let ink = if v.is_finite() && t > 0.55 { "#ffffff" } else { "#111111" };
            let label = if v.is_finite() { tick_label(v) } else { "—".into() };
            svg.text_styled(x + cell_w / 2.0, y + cell_h / 2.0 + 4.0, &label, 12.0, Anchor::Middle, ink, false);
        }
    }
    for (c, x) in xs.iter().enumerate() {
        svg.text(left + (c as f64 + 0.5) * cell_w, top + cell_h * ys.len() as f64 + 18.0, x, 12.0, Anchor::Middle);
    }
    for (r, y) in ys.iter().enumerate() {
        svg.text(left - 8.0, top + (r as f64 + 0.5) * cell_h + 4.0, y, 12.0, Anchor::End);
    }
    svg.text(left + cell_w * xs.len() as f64 / 2.0, h - 10.0, x_label, 13.0, Anchor::Middle);
    svg.text_vertical(16.0, top + cell_h * ys.len() as f64 / 2.0, y_label, 13.0);
    svg
}
