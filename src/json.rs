//! The one JSON reader, for rarts' own files (`log.jsonl`, `alpha.jsonl`,
//! `genotype.json`): values, arrays, objects; strings without escapes
//! beyond `\"` and `\\`; nesting at most [`MAX_DEPTH`] deep.

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub fn parse(text: &str) -> Result<Json> {
        let b = text.as_bytes();
        let mut i = 0;
        let v = value(b, &mut i, 0)?;
        skip_ws(b, &mut i);
        if i != b.len() {
            crate::bail!("JSON: unexpected text at byte {i}");
        }
        Ok(v)
    }

    /// The field `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(f) => f.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The number, `None` for null or anything else.
    pub fn num(&self) -> Option<f64> {
        match self {
            Json::Num(v) => Some(*v),
            _ => None,
        }
    }

    pub fn str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn arr(&self) -> Option<&[Json]> {
        match self {
            Json::Arr(v) => Some(v),
            _ => None,
        }
    }

    /// An array of arrays of numbers, as rows.
    pub fn matrix(&self) -> Option<Vec<Vec<f64>>> {
        self.arr()?.iter().map(|r| r.arr()?.iter().map(Json::num).collect()).collect()
    }

    /// The fields of an object, in order.
    pub fn fields(&self) -> &[(String, Json)] {
        match self {
            Json::Obj(f) => f,
            _ => &[],
        }
    }
}

fn skip_ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && b[*i].is_ascii_whitespace() {
        *i += 1;
    }
}

/// Arrays and objects nested deeper than this are refused: rarts' own files
/// nest three deep, and the reader recurses once per level.
pub const MAX_DEPTH: usize = 32;

fn value(b: &[u8], i: &mut usize, depth: usize) -> Result<Json> {
    skip_ws(b, i);
    let err = |what: &str, at: usize| Error(format!("JSON: {what} at byte {at}"));
    if depth > MAX_DEPTH && matches!(b.get(*i), Some(b'{' | b'[')) {
        return Err(err(&format!("arrays or objects nested more than {MAX_DEPTH} deep"), *i));
    }
    match b.get(*i) {
        None => Err(err("unexpected end", *i)),
        Some(b'{') => {
            *i += 1;
            let mut fields = Vec::new();
            skip_ws(b, i);
            if b.get(*i) == Some(&b'}') {
                *i += 1;
                return Ok(Json::Obj(fields));
            }
            loop {
                skip_ws(b, i);
                let Json::Str(k) = value(b, i, depth + 1)? else { return Err(err("expected a key", *i)) };
                skip_ws(b, i);
                if b.get(*i) != Some(&b':') {
                    return Err(err("expected ':'", *i));
                }
                *i += 1;
                fields.push((k, value(b, i, depth + 1)?));
                skip_ws(b, i);
                match b.get(*i) {
                    Some(b',') => *i += 1,
                    Some(b'}') => {
                        *i += 1;
                        return Ok(Json::Obj(fields));
                    }
                    _ => return Err(err("expected ',' or '}'", *i)),
                }
            }
        }
        Some(b'[') => {
            *i += 1;
            let mut items = Vec::new();
            skip_ws(b, i);
            if b.get(*i) == Some(&b']') {
                *i += 1;
                return Ok(Json::Arr(items));
            }
            loop {
                items.push(value(b, i, depth + 1)?);
                skip_ws(b, i);
                match b.get(*i) {
                    Some(b',') => *i += 1,
                    Some(b']') => {
                        *i += 1;
                        return Ok(Json::Arr(items));
                    }
                    _ => return Err(err("expected ',' or ']'", *i)),
                }
            }
        }
        Some(b'"') => {
            *i += 1;
            let mut s = Vec::new();
            while let Some(&c) = b.get(*i) {
                *i += 1;
                match c {
                    b'"' => return String::from_utf8(s).map(Json::Str).map_err(|_| err("bad UTF-8", *i)),
                    b'\\' => {
                        let e = *b.get(*i).ok_or_else(|| err("unexpected end", *i))?;
                        *i += 1;
                        s.push(match e {
                            b'n' => b'\n',
                            b't' => b'\t',
                            other => other,
                        });
                    }
                    c => s.push(c),
                }
            }
            Err(err("unterminated string", *i))
        }
        Some(_) => {
            let start = *i;
            while *i < b.len() && !matches!(b[*i], b',' | b']' | b'}') && !b[*i].is_ascii_whitespace() {
                *i += 1;
            }
            let word = std::str::from_utf8(&b[start..*i]).map_err(|_| err("bad UTF-8", start))?;
            match word {
                "null" => Ok(Json::Null),
                "true" => Ok(Json::Bool(true)),
                "false" => Ok(Json::Bool(false)),
                w => w.parse().map(Json::Num).map_err(|_| err(&format!("'{w}' is not a value"), start)),
            }
        }
    }
}
