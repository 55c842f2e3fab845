//! Architecture figures: a DARTS cell and an NB201 cell as graphs laid out
//! left to right (as DARTS' `visualize.py` draws them), and chosen widths
//! as bars against the full widths.

use super::svg::{Anchor, Style, Svg, tick_label, ticks};
use crate::genotype::CellGenes;
use crate::space::darts::PRIMITIVES;
use crate::space::nb201::{self, Nb201Cell};

const NODE_W: f64 = 74.0;
const NODE_H: f64 = 34.0;

/// The colour and dash of an op, the same in every figure.
pub fn op_style(op: &str) -> Style {
    Style::nth(match op {
        // NB201's convolutions share the styles of DARTS' separable ones.
        "nor_conv_3x3" => 4,
        "nor_conv_1x1" => 6,
        op => PRIMITIVES.iter().position(|p| *p == op).unwrap_or(7),
    })
}

/// A node box with its name centred.
fn node(svg: &mut Svg, (x, y): (f64, f64), name: &str, fill: &str) {
    svg.round_rect(x - NODE_W / 2.0, y - NODE_H / 2.0, NODE_W, NODE_H, fill, "#333", "node");
    svg.text(x, y + 5.0, name, 14.0, Anchor::Middle);
}

/// Edge labels placed so that none overlaps another or a node: each takes
/// the first free spot of a few along its edge.
struct Labels {
    /// Occupied boxes `(x0, y0, x1, y1)`.
    taken: Vec<(f64, f64, f64, f64)>,
    /// Labels to draw: position and text.
    todo: Vec<(f64, f64, String)>,
}

impl Labels {
    fn new(nodes: &[(f64, f64)]) -> Labels {
        let taken = nodes
            .iter()
            .map(|&(x, y)| {
                (x - NODE_W / 2.0 - 2.0, y - NODE_H / 2.0 - 2.0, x + NODE_W / 2.0 + 2.0, y + NODE_H / 2.0 + 2.0)
            })
            .collect();
        Labels { taken, todo: Vec::new() }
    }

    /// Places `text` on the curve `at(t)`, preferring its middle.
    fn place(&mut self, at: impl Fn(f64) -> (f64, f64), text: String) {
        let w = text.chars().count() as f64 * 6.7 + 8.0;
        let h = 15.0;
        let boxed = |(x, y): (f64, f64)| (x - w / 2.0, y - h / 2.0, x + w / 2.0, y + h / 2.0);
        let free = |b: (f64, f64, f64, f64), taken: &[(f64, f64, f64, f64)]| {
            taken.iter().all(|t| b.2 <= t.0 || b.0 >= t.2 || b.3 <= t.1 || b.1 >= t.3)
        };
        let spots = [0.5, 0.4, 0.6, 0.3, 0.7, 0.22, 0.78, 0.15, 0.85];
        let mut chosen = None;
        'search: for lift in [0.0, -12.0, 12.0, -24.0, 24.0] {
            for &t in &spots {
                let (x, y) = at(t);
                let b = boxed((x, y + lift));
                if free(b, &self.taken) {
                    chosen = Some((x, y + lift));
                    break 'search;
                }
            }
        }
        let (x, y) = chosen.unwrap_or_else(|| at(0.5));
        self.taken.push(boxed((x, y)));
        self.todo.push((x, y, text));
    }

    fn draw(self, svg: &mut Svg) {
        for (x, y, text) in self.todo {
            let w = text.chars().count() as f64 * 6.7 + 8.0;
            svg.rect(x - w / 2.0, y - 8.0, w, 15.0, "white", "#bbb");
            svg.text_styled(x, y + 4.0, &text, 11.5, Anchor::Middle, "#222", false);
        }
    }
}

/// An edge from node centre `a` to `b`, its label placed by `labels`.
fn edge(svg: &mut Svg, labels: &mut Labels, a: (f64, f64), b: (f64, f64), label: String, style: Style) {
    let start = (a.0 + NODE_W / 2.0, a.1);
    let end = (b.0 - NODE_W / 2.0 - 2.0, b.1);
    let dx = (end.0 - start.0).abs().max(40.0) * 0.5;
    let (c1, c2) = ((start.0 + dx, start.1), (end.0 - dx, end.1));
    svg.curve(start, c1, c2, end, style, "edge");
    let bez = move |t: f64| {
        let u = 1.0 - t;
        let f = |p0: f64, p1: f64, p2: f64, p3: f64| {
            u * u * u * p0 + 3.0 * u * u * t * p1 + 3.0 * u * t * t * p2 + t * t * t * p3
        };
        (f(start.0, c1.0, c2.0, end.0), f(start.1, c1.1, c2.1, end.1))
    };
    labels.place(bez, label);
}

/// A DARTS cell (`genes`: two `(op, input)` per intermediate node; input
/// 0 is `c_{k-2}`, 1 `c_{k-1}`, i + 2 node i) with, when given, each
/// chosen edge's softmax weight (`weights[g]` for gene g); `concat` the
/// nodes the output concatenates.
pub fn darts_cell(title: &str, genes: &CellGenes, concat: &[usize], weights: Option<&[f64]>) -> Svg {
    let steps = genes.len() / 2;
    let col = 210.0;
    let w = 60.0 + col * (steps as f64 + 1.0) + 60.0;
    let h = 330.0;
    let mut svg = Svg::new(w, h);
    svg.text_styled(w / 2.0, 24.0, title, 15.0, Anchor::Middle, "#111", true);
    let mid = h / 2.0 + 12.0;
    // Inputs on the left, node i in column i + 1 alternating above and
    // below the middle, the output on the right.
    let mut pos = vec![(60.0, mid - 105.0), (60.0, mid + 105.0)];
    for i in 0..steps {
        let dy = if i % 2 == 0 { -55.0 } else { 55.0 };
        pos.push((60.0 + col * (i as f64 + 1.0), mid + dy));
    }
    let out = (60.0 + col * (steps as f64 + 1.0), mid);
    let mut labels = Labels::new(&[pos.clone(), vec![out]].concat());
    for &c in concat {
        let a = pos[c];
        svg.curve(
            (a.0 + NODE_W / 2.0, a.1),
            (a.0 + NODE_W / 2.0 + 40.0, a.1),
            (out.0 - NODE_W / 2.0 - 40.0, out.1),
            (out.0 - NODE_W / 2.0 - 2.0, out.1),
            Style { color: "#999", dash: "", marker: super::svg::Marker::Circle },
            "concat",
        );
    }
    for (g, (op, from)) in genes.iter().enumerate() {
        let label = match weights {
            Some(wt) => format!("{op} {:.2}", wt[g]),
            None => op.to_string(),
        };
        edge(&mut svg, &mut labels, pos[*from], pos[g / 2 + 2], label, op_style(op));
    }
    labels.draw(&mut svg);
    node(&mut svg, pos[0], "c_{k-2}", "#d9ecf7");
    node(&mut svg, pos[1], "c_{k-1}", "#d9ecf7");
    for i in 0..steps {
        node(&mut svg, pos[i + 2], &i.to_string(), "#f2f2f2");
    }
    node(&mut svg, out, "c_{k}", "#fde9d0");
    svg
}

/// An NB201 cell: nodes 0 (input) to 3 (output), an edge per op that is not
/// `none`, labelled with the op and, when given, its softmax weight.
pub fn nb201_cell(title: &str, cell: &Nb201Cell, weights: Option<&[f64]>) -> Svg {
    let col = 200.0;
    let (w, h) = (60.0 + col * 3.0 + 80.0, 330.0);
    let mut svg = Svg::new(w, h);
    svg.text_styled(w / 2.0, 24.0, title, 15.0, Anchor::Middle, "#111", true);
    svg.text(w / 2.0, 44.0, &cell.to_arch_str(), 12.0, Anchor::Middle);
    let mid = h / 2.0 + 20.0;
    let pos: Vec<(f64, f64)> =
        (0..nb201::NODES).map(|i| (60.0 + col * i as f64, mid + if i % 2 == 1 { -60.0 } else { 40.0 })).collect();
    let mut labels = Labels::new(&pos);
    let mut e = 0;
    for to in 1..nb201::NODES {
        for from in 0..to {
            let op = nb201::OPS[cell.ops[e]];
            if op != "none" {
                let label = match weights {
                    Some(wt) => format!("{op} {:.2}", wt[e]),
                    None => op.to_string(),
                };
                edge(&mut svg, &mut labels, pos[from], pos[to], label, op_style(op));
            }
            e += 1;
        }
    }
    labels.draw(&mut svg);
    for (i, &p) in pos.iter().enumerate() {
        let fill = if i == 0 {
            "#d9ecf7"
        } else if i == nb201::NODES - 1 {
            "#fde9d0"
        } else {
            "#f2f2f2"
        };
        node(&mut svg, p, &i.to_string(), fill);
    }
    svg
}

/// Bars of the chosen width of each searchable layer against its full width;
/// with `expected`, a mark per layer at its expected width under softmax(α).
pub fn width_bars(title: &str, names: &[String], widths: &[usize], full: &[usize], expected: Option<&[f64]>) -> Svg {
    let bar = 26.0;
    let (left, top) = (70.0, 44.0);
    let plot_w = (names.len() as f64 * bar * 1.6).max(300.0);
    let (w, plot_h) = (left + plot_w + 30.0, 220.0);
    // A second legend row for the expected widths.
    let legend2 = if expected.is_some() { 20.0 } else { 0.0 };
    let h = top + plot_h + 100.0 + legend2;
    let mut svg = Svg::new(w, h);
    svg.text_styled(w / 2.0, 24.0, title, 15.0, Anchor::Middle, "#111", true);
    let max = full.iter().copied().max().unwrap_or(1).max(1) as f64;
    let py = |v: f64| top + plot_h - v / max * plot_h;
    for t in ticks(0.0, max, 4) {
        svg.line(left, py(t), left + plot_w, py(t), "#e4e4e4", 1.0, "");
        svg.text(left - 6.0, py(t) + 4.0, &tick_label(t), 12.0, Anchor::End);
    }
    let step = plot_w / names.len().max(1) as f64;
    for (i, name) in names.iter().enumerate() {
        let x = left + step * (i as f64 + 0.5);
        svg.rect(x - bar / 2.0, py(full[i] as f64), bar, plot_h - (py(full[i] as f64) - top), "white", "#555");
        let chosen = Style::nth(0);
        svg.rect(
            x - bar / 2.0 + 3.0,
            py(widths[i] as f64),
            bar - 6.0,
            top + plot_h - py(widths[i] as f64),
            chosen.color,
            "none",
        );
        svg.text(x, py(widths[i] as f64) - 4.0, &widths[i].to_string(), 11.0, Anchor::Middle);
        if let Some(e) = expected {
            let y = py(e[i]);
            svg.polyline(&[(x - bar / 2.0 - 4.0, y), (x + bar / 2.0 + 4.0, y)], EXPECTED, 2.5, "expected");
        }
        svg.text_vertical(x, top + plot_h + 34.0, name, 11.0);
    }
    svg.line(left, top + plot_h, left + plot_w, top + plot_h, "#444", 1.0, "");
    svg.line(left, top, left, top + plot_h, "#444", 1.0, "");
    svg.text_vertical(18.0, top + plot_h / 2.0, "channels", 13.0);
    let ly = h - 14.0 - legend2;
    svg.rect(left, ly - 10.0, 14.0, 12.0, Style::nth(0).color, "none");
    svg.text(left + 20.0, ly, "chosen width", 12.0, Anchor::Start);
    svg.rect(left + 140.0, ly - 10.0, 14.0, 12.0, "white", "#555");
    svg.text(left + 160.0, ly, "full width", 12.0, Anchor::Start);
    if expected.is_some() {
        let ly = ly + legend2;
        svg.polyline(&[(left - 2.0, ly - 4.0), (left + 16.0, ly - 4.0)], EXPECTED, 2.5, "");
        svg.text(left + 20.0, ly, "expected width under softmax(α)", 12.0, Anchor::Start);
    }
    svg
}

/// The mark of an expected width.
const EXPECTED: Style = Style { color: "#111", dash: "", marker: super::svg::Marker::Diamond };
