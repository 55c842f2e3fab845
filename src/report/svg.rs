//! A small SVG writer: shapes and text into one `<svg>` element, every
//! attribute escaped, coordinates rounded to a tenth of a pixel.

use std::fmt::Write as _;

/// Colours of the Okabe–Ito palette (distinguishable by colour-blind
/// readers), with a dash pattern and a marker per index so that series stay
/// apart in greyscale too.
pub const PALETTE: [&str; 8] = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999933"];
const DASHES: [&str; 8] = ["", "6 3", "2 2", "8 3 2 3", "1 3", "10 4", "4 2 1 2", "3 5"];

/// How series `i` is drawn: its colour, dash pattern and marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    pub color: &'static str,
    pub dash: &'static str,
    pub marker: Marker,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
}

impl Style {
    pub fn nth(i: usize) -> Style {
        const MARKERS: [Marker; 4] = [Marker::Circle, Marker::Square, Marker::Triangle, Marker::Diamond];
        Style { color: PALETTE[i % PALETTE.len()], dash: DASHES[i % DASHES.len()], marker: MARKERS[i % MARKERS.len()] }
    }
}

/// `s` with `&`, `<`, `>` and quotes escaped for XML text and attributes.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

/// A number as an SVG coordinate: a tenth of a pixel is enough.
fn n(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r == r.trunc() { format!("{}", r as i64) } else { format!("{r:.1}") }
}

/// Horizontal text alignment.
#[derive(Clone, Copy, Debug)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

/// An SVG document being drawn.
pub struct Svg {
    pub width: f64,
    pub height: f64,
    body: String,
}

impl Svg {
    pub fn new(width: f64, height: f64) -> Svg {
        Svg { width, height, body: String::new() }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, color: &str, width: f64, dash: &str) {
        let _ = writeln!(
            self.body,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="{}"{}/>"#,
            n(x1),
            n(y1),
            n(x2),
            n(y2),
            escape(color),
            n(width),
            dash_attr(dash)
        );
    }

    /// A polyline through `pts`; `class` names it for tests and styling.
    pub fn polyline(&mut self, pts: &[(f64, f64)], style: Style, width: f64, class: &str) {
        let p: Vec<String> = pts.iter().map(|&(x, y)| format!("{},{}", n(x), n(y))).collect();
        let _ = writeln!(
            self.body,
            r#"<polyline class="{}" points="{}" fill="none" stroke="{}" stroke-width="{}"{}/>"#,
            escape(class),
            p.join(" "),
            style.color,
            n(width),
            dash_attr(style.dash)
        );
    }

    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, stroke: &str) {
        let _ = writeln!(
            self.body,
            r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{}" stroke="{}"/>"#,
            n(x),
            n(y),
            n(w.max(0.0)),
            n(h.max(0.0)),
            escape(fill),
            escape(stroke)
        );
    }

    /// A rectangle with rounded corners (graph nodes).
    #[allow(clippy::too_many_arguments)]
    pub fn round_rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, stroke: &str, class: &str) {
        let _ = writeln!(
            self.body,
            r#"<rect class="{}" x="{}" y="{}" width="{}" height="{}" rx="6" fill="{}" stroke="{}" stroke-width="1.5"/>"#,
            escape(class),
            n(x),
            n(y),
            n(w),
            n(h),
            escape(fill),
            escape(stroke)
        );
    }

    /// A marker of `style` centred at `(x, y)`.
    pub fn marker(&mut self, x: f64, y: f64, style: Style, r: f64) {
        let c = style.color;
        let _ = match style.marker {
            Marker::Circle => writeln!(self.body, r#"<circle cx="{}" cy="{}" r="{}" fill="{c}"/>"#, n(x), n(y), n(r)),
            Marker::Square => writeln!(
                self.body,
                r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{c}"/>"#,
                n(x - r),
                n(y - r),
                n(2.0 * r),
                n(2.0 * r)
            ),
            Marker::Triangle => writeln!(
                self.body,
                r#"<polygon points="{},{} {},{} {},{}" fill="{c}"/>"#,
                n(x),
                n(y - r * 1.2),
                n(x - r * 1.1),
                n(y + r * 0.8),
                n(x + r * 1.1),
                n(y + r * 0.8)
            ),
            Marker::Diamond => writeln!(
                self.body,
                r#"<polygon points="{},{} {},{} {},{} {},{}" fill="{c}"/>"#,
                n(x),
                n(y - r * 1.3),
                n(x + r * 1.1),
                n(y),
                n(x),
                n(y + r * 1.3),
                n(x - r * 1.1),
                n(y)
            ),
        };
    }

    /// A cubic Bézier from `a` to `b` with control points `c1`, `c2`, ending
    /// in an arrowhead.
    pub fn curve(&mut self, a: (f64, f64), c1: (f64, f64), c2: (f64, f64), b: (f64, f64), style: Style, class: &str) {
        let _ = writeln!(
            self.body,
            r#"<path class="{}" d="M{},{} C{},{} {},{} {},{}" fill="none" stroke="{}" stroke-width="1.6"{} marker-end="url(#arrow)"/>"#,
            escape(class),
            n(a.0),
            n(a.1),
            n(c1.0),
            n(c1.1),
            n(c2.0),
            n(c2.1),
            n(b.0),
            n(b.1),
            style.color,
            dash_attr(style.dash)
        );
    }

    /// Text at `(x, y)` (its baseline), `size` pixels.
    pub fn text(&mut self, x: f64, y: f64, s: &str, size: f64, anchor: Anchor) {
        self.text_styled(x, y, s, size, anchor, "#222", false);
    }

    #[allow(clippy::too_many_arguments)]
    pub fn text_styled(&mut self, x: f64, y: f64, s: &str, size: f64, anchor: Anchor, fill: &str, bold: bool) {
        let a = match anchor {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        };
        let _ = writeln!(
            self.body,
            r#"<text x="{}" y="{}" font-size="{}" text-anchor="{a}" fill="{}"{}>{}</text>"#,
            n(x),
            n(y),
            n(size),
            escape(fill),
            if bold { r#" font-weight="bold""# } else { "" },
            escape(s)
        );
    }

    /// Text turned 90° counter-clockwise about `(x, y)` (a y-axis label).
    pub fn text_vertical(&mut self, x: f64, y: f64, s: &str, size: f64) {
        let _ = writeln!(
            self.body,
            r##"<text x="{}" y="{}" font-size="{}" text-anchor="middle" fill="#222" transform="rotate(-90 {} {})">{}</text>"##,
            n(x),
            n(y),
            n(size),
            n(x),
            n(y),
            escape(s)
        );
    }

    /// The whole document, with the arrowhead definition the curves use.
    pub fn finish(&self) -> String {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
             font-family=\"DejaVu Sans, Arial, Helvetica, sans-serif\">\n\
             <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" \
             orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#444\"/></marker></defs>\n\
             <rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n{}</svg>\n",
            self.body,
            w = n(self.width),
            h = n(self.height)
        )
    }
}

fn dash_attr(dash: &str) -> String {
    if dash.is_empty() { String::new() } else { format!(r#" stroke-dasharray="{dash}""#) }
}

/// About `count` round tick values covering `[lo, hi]`.
pub fn ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / count.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() * step;
    let mut v = Vec::new();
    let mut t = first;
    while t <= hi + step * 1e-9 {
        v.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    v
}

/// A tick value as short text: `0.25`, `1e-3`, `120`.
pub fn tick_label(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.0e}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}
