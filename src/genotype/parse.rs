//! Reading a genotype from the two forms it is written in: DARTS' Python
//! text, `Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3,
//! 4, 5], ...)` (concat also as `range(2, 6)`, as `genotypes.py` writes it),
//! and the `genotype.json` a search writes. Both are small literal languages
//! (strings, integers, lists, tuples, calls with keyword arguments, JSON
//! objects), so one recursive-descent reader turns either into a [`Lit`],
//! and [`genotype`] picks the four fields out of it.
//!
//! Every error names the input (`what`), where in it (line, column) and
//! what was expected there.

use super::{CellGenes, Genotype};
use crate::error::{Error, Result};
use crate::space::primitive::PRIMITIVES;

/// Deeper nesting than any genotype needs is refused rather than recursed
/// into, so no input can overflow the stack.
const MAX_DEPTH: usize = 16;

/// Field names of DARTS' `Genotype` namedtuple, in its positional order.
const FIELDS: [&str; 4] = ["normal", "normal_concat", "reduce", "reduce_concat"];

/// A literal and the byte offset it starts at.
#[derive(Clone, Debug)]
struct Lit {
    at: usize,
    v: Val,
}

#[derive(Clone, Debug)]
enum Val {
    Str(String),
    Int(i64),
    Float,
    /// `[...]` or `(...)`
    Seq(Vec<Lit>),
    /// A JSON object `{"key": value, ...}`
    Obj(Vec<(String, Lit)>),
    /// A Python call `name(arg, key=arg, ...)`
    Call(String, Vec<(Option<String>, Lit)>),
    /// A bare name: `true`, `None`, ...
    Word,
}

impl Val {
    fn kind(&self) -> &'static str {
        match self {
            Val::Str(_) => "a string",
            Val::Int(_) => "an integer",
            Val::Float => "a number with a fraction",
            Val::Seq(_) => "a list",
            Val::Obj(_) => "an object",
            Val::Call(..) => "a call",
            Val::Word => "a bare name",
        }
    }
}

struct Reader<'a> {
    src: &'a str,
    s: &'a [u8],
    i: usize,
    what: &'a str,
}

/// 1-based line and column of byte `at` in `src`.
fn locate(src: &str, at: usize) -> (usize, usize) {
    let before = &src.as_bytes()[..at.min(src.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, col)
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
}

impl<'a> Reader<'a> {
    fn err(&self, at: usize, msg: impl std::fmt::Display) -> Error {
        let (line, col) = locate(self.src, at);
        Error(format!("{}: line {line}, column {col}: {msg}", self.what))
    }

    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    /// The next non-space byte, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }

    /// A short quote of the text at the cursor, for error messages.
    fn found(&self) -> String {
        match self.src.get(self.i..) {
            None | Some("") => "the end of the input".into(),
            Some(rest) => {
                let q: String = rest.chars().take(12).collect();
                let more = if rest.chars().count() > 12 { "…" } else { "" };
                format!("`{q}{more}`")
            }
        }
    }

    fn expect(&mut self, b: u8, expected: &str) -> Result<()> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(self.i, format!("expected {expected}, found {}", self.found())))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Lit> {
        if depth > MAX_DEPTH {
            return Err(self.err(self.i, format!("nested more than {MAX_DEPTH} deep; a genotype is not")));
        }
        self.skip_ws();
        let at = self.i;
        let v = match self.peek() {
            Some(b'[') => Val::Seq(self.seq(b']', depth)?),
            Some(b'(') => Val::Seq(self.seq(b')', depth)?),
            Some(b'{') => Val::Obj(self.obj(depth)?),
            Some(q @ (b'\'' | b'"')) => Val::Str(self.string(q)?),
            Some(b) if b.is_ascii_digit() || b == b'-' || b == b'+' => self.number()?,
            Some(b) if is_ident_start(b) => {
                let name = self.ident();
                if self.peek() == Some(b'(') { Val::Call(name, self.args(depth)?) } else { Val::Word }
            }
            _ => return Err(self.err(self.i, format!("expected a value, found {}", self.found()))),
        };
        Ok(Lit { at, v })
    }

    /// Comma-separated items up to `close` (the opener is at the cursor);
    /// a trailing comma is allowed, as in Python and DARTS' files.
    fn seq(&mut self, close: u8, depth: usize) -> Result<Vec<Lit>> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            if self.peek() == Some(close) {
                self.i += 1;
                return Ok(items);
            }
            items.push(self.value(depth + 1)?);
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b) if b == close => {}
                _ => {
                    let msg = format!("expected `,` or `{}`, found {}", close as char, self.found());
                    return Err(self.err(self.i, msg));
                }
            }
        }
    }

    fn obj(&mut self, depth: usize) -> Result<Vec<(String, Lit)>> {
        self.i += 1;
        let mut fields = Vec::new();
        loop {
            match self.peek() {
                Some(b'}') => {
                    self.i += 1;
                    return Ok(fields);
                }
                Some(b'"') => {}
                _ => return Err(self.err(self.i, format!("expected a quoted key or `}}`, found {}", self.found()))),
            }
            let key = self.string(b'"')?;
            self.expect(b':', "`:` after a key")?;
            fields.push((key, self.value(depth + 1)?));
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {}
                _ => return Err(self.err(self.i, format!("expected `,` or `}}`, found {}", self.found()))),
            }
        }
    }

    /// `(arg, name=arg, ...)` after a called name.
    fn args(&mut self, depth: usize) -> Result<Vec<(Option<String>, Lit)>> {
        self.i += 1;
        let mut args = Vec::new();
        loop {
            if self.peek() == Some(b')') {
                self.i += 1;
                return Ok(args);
            }
            // `name=value` (not `name==`), else a positional value.
            let save = self.i;
            let mut key = None;
            if self.peek().is_some_and(is_ident_start) {
                let name = self.ident();
                if self.peek() == Some(b'=') && self.s.get(self.i + 1) != Some(&b'=') {
                    self.i += 1;
                    key = Some(name);
                } else {
                    self.i = save;
                }
            }
            args.push((key, self.value(depth + 1)?));
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b')') => {}
                _ => return Err(self.err(self.i, format!("expected `,` or `)`, found {}", self.found()))),
            }
        }
    }

    fn ident(&mut self) -> String {
        let start = self.i;
        while self.i < self.s.len() && is_ident(self.s[self.i]) {
            self.i += 1;
        }
        self.src[start..self.i].to_string()
    }

    /// A quoted string; the quote byte `q` is at the cursor.
    fn string(&mut self, q: u8) -> Result<String> {
        let open = self.i;
        self.i += 1;
        let mut out = Vec::new();
        while let Some(&b) = self.s.get(self.i) {
            self.i += 1;
            match b {
                _ if b == q => return String::from_utf8(out).map_err(|_| self.err(open, "string is not UTF-8")),
                b'\\' => {
                    let e = self.s.get(self.i).copied();
                    self.i += 1;
                    out.push(match e {
                        Some(c @ (b'\\' | b'\'' | b'"' | b'/')) => c,
                        Some(b'n') => b'\n',
                        Some(b't') => b'\t',
                        _ => return Err(self.err(self.i - 2, "unsupported escape in a string (an op name needs none)")),
                    });
                }
                b'\n' => break,
                _ => out.push(b),
            }
        }
        Err(self.err(open, "string is not closed on its line"))
    }

    fn number(&mut self) -> Result<Val> {
        let start = self.i;
        if matches!(self.s[self.i], b'-' | b'+') {
            self.i += 1;
        }
        let mut float = false;
        while let Some(&b) = self.s.get(self.i) {
            match b {
                b'0'..=b'9' => {}
                b'.' | b'e' | b'E' => float = true,
                b'-' | b'+' if matches!(self.s[self.i - 1], b'e' | b'E') => {}
                _ => break,
            }
            self.i += 1;
        }
        let text = &self.src[start..self.i];
        if float {
            text.parse::<f64>().map(|_| Val::Float).map_err(|_| self.err(start, format!("`{text}` is not a number")))
        } else {
            text.parse::<i64>().map(Val::Int).map_err(|_| self.err(start, format!("`{text}` is not an integer")))
        }
    }
}

/// Reads `src` (DARTS' text or our JSON) into a genotype; `what` names the
/// input in errors. The result is checked with [`Genotype::check`].
pub(super) fn genotype(src: &str, what: &str) -> Result<Genotype> {
    let mut r = Reader { src, s: src.as_bytes(), i: 0, what };
    let top = r.value(0)?;
    if r.peek().is_some() {
        return Err(r.err(r.i, format!("unexpected {} after the genotype", r.found())));
    }
    let fields = fields(&r, &top)?;
    let mut slots: [Option<&Lit>; 4] = [None; 4];
    for (key, lit) in &fields {
        slots[*key] = Some(lit);
    }
    let get = |k: usize| slots[k].ok_or_else(|| r.err(top.at, format!("the genotype has no `{}`", FIELDS[k])));
    let g = Genotype {
        normal: genes(&r, get(0)?, FIELDS[0])?,
        normal_concat: concat(&r, get(1)?, FIELDS[1])?,
        reduce: genes(&r, get(2)?, FIELDS[2])?,
        reduce_concat: concat(&r, get(3)?, FIELDS[3])?,
    };
    g.check(super::STEPS).map_err(|e| Error(format!("{what}: {e}")))?;
    Ok(g)
}

/// The four fields of `Genotype(...)`, of `{"genotype": {...}}` or of a bare
/// `{...}`, as (index into [`FIELDS`], value); unknown or repeated fields are errors.
fn fields<'l>(r: &Reader, top: &'l Lit) -> Result<Vec<(usize, &'l Lit)>> {
    let named: Vec<(Option<&str>, &Lit)> = match &top.v {
        Val::Call(name, args) if name == "Genotype" || name.ends_with(".Genotype") => {
            args.iter().map(|(k, v)| (k.as_deref(), v)).collect()
        }
        Val::Call(name, _) => return Err(r.err(top.at, format!("expected Genotype(...), found {name}(...)"))),
        Val::Obj(kv) => match kv.iter().find(|(k, _)| k == "genotype") {
            Some((_, inner)) => match &inner.v {
                Val::Obj(kv) => kv.iter().map(|(k, v)| (Some(k.as_str()), v)).collect(),
                other => {
                    return Err(r.err(inner.at, format!("\"genotype\" should be an object, found {}", other.kind())));
                }
            },
            None => kv.iter().map(|(k, v)| (Some(k.as_str()), v)).collect(),
        },
        other => {
            let msg = format!("expected Genotype(normal=..., ...) or a genotype.json object, found {}", other.kind());
            return Err(r.err(top.at, msg));
        }
    };
    let mut out: Vec<(usize, &Lit)> = Vec::new();
    for (pos, (key, lit)) in named.into_iter().enumerate() {
        let k = match key {
            Some(key) => FIELDS
                .iter()
                .position(|f| *f == key)
                .ok_or_else(|| r.err(lit.at, format!("unknown field `{key}` (expected {})", FIELDS.join(", "))))?,
            None if pos < FIELDS.len() => pos,
            None => return Err(r.err(lit.at, "Genotype takes 4 fields")),
        };
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(r.err(lit.at, format!("field `{}` is given twice", FIELDS[k])));
        }
        out.push((k, lit));
    }
    Ok(out)
}

fn int(r: &Reader, lit: &Lit, field: &str, role: &str) -> Result<usize> {
    match lit.v {
        Val::Int(i) if i >= 0 => Ok(i as usize),
        Val::Int(i) => Err(r.err(lit.at, format!("{field}: {role} {i} is negative"))),
        ref other => Err(r.err(lit.at, format!("{field}: expected {role} (an integer), found {}", other.kind()))),
    }
}

/// `[('op', input), ...]` (tuples or two-element lists).
fn genes(r: &Reader, lit: &Lit, field: &str) -> Result<CellGenes> {
    let Val::Seq(items) = &lit.v else {
        return Err(r.err(lit.at, format!("{field}: expected a list of (op, input) pairs, found {}", lit.v.kind())));
    };
    let mut out = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        let pair = match &item.v {
            Val::Seq(p) if p.len() == 2 => p,
            other => {
                let msg = format!("{field} gene {n}: expected an (op, input) pair, found {}", other.kind());
                return Err(r.err(item.at, msg));
            }
        };
        let op = match &pair[0].v {
            Val::Str(s) => *PRIMITIVES.iter().find(|p| **p == s).ok_or_else(|| {
                let msg =
                    format!("{field} gene {n}: unknown op '{s}' (expected one of {})", PRIMITIVES[1..].join(", "));
                r.err(pair[0].at, msg)
            })?,
            other => {
                let msg = format!("{field} gene {n}: expected an op name in quotes, found {}", other.kind());
                return Err(r.err(pair[0].at, msg));
            }
        };
        out.push((op, int(r, &pair[1], &format!("{field} gene {n}"), "an input state")?));
    }
    Ok(out)
}

/// `[2, 3, 4, 5]`, `range(2, 6)` or `range(6)`.
fn concat(r: &Reader, lit: &Lit, field: &str) -> Result<Vec<usize>> {
    match &lit.v {
        Val::Seq(items) => items.iter().map(|i| int(r, i, field, "a state")).collect(),
        Val::Call(name, args)
            if name == "range" && (1..=2).contains(&args.len()) && args.iter().all(|a| a.0.is_none()) =>
        {
            let b: Vec<usize> = args.iter().map(|a| int(r, &a.1, field, "a range bound")).collect::<Result<_>>()?;
            let (lo, hi) = if b.len() == 1 { (0, b[0]) } else { (b[0], b[1]) };
            Ok((lo..hi).collect())
        }
        other => {
            let msg = format!("{field}: expected a list of states or range(a, b), found {}", other.kind());
            Err(r.err(lit.at, msg))
        }
    }
}
