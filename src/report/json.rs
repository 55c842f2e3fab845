//! The checked reading of a run's JSON-lines files (with [`crate::json`]).

use std::path::Path;

use crate::error::Result;
pub use crate::json::Json;

pub(super) fn lines(path: &Path) -> Result<Vec<Json>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => crate::bail!("{}: cannot read it: {e}", path.display()),
    };
    // The last line may be being written as the file is read: dropped if
    // cut off. Any other line that is not JSON is an error naming it.
    let all: Vec<(usize, &str)> = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).collect();
    let mut out = Vec::with_capacity(all.len());
    for (k, &(i, l)) in all.iter().enumerate() {
        match Json::parse(l) {
            Ok(j) => out.push(j),
            Err(_) if k + 1 == all.len() && !text.ends_with('\n') => {}
            Err(e) => {
                crate::bail!("{}:{}: {e}; expected one JSON object per line, as rarts writes", path.display(), i + 1)
            }
        }
    }
    Ok(out)
}

/// Checks every softmax(α) matrix of `lines` (from `path`): `k` columns,
/// as many rows as the first line's, at most [`MAX_ALPHA_ROWS`].
pub(super) fn check_alphas(path: &Path, lines: &[Json], k: usize) -> Result<()> {
    let mut rows_of: Vec<(String, usize)> = Vec::new();
    for (n, l) in lines.iter().enumerate() {
        for (key, v) in l.fields().iter().filter(|(key, _)| key.starts_with("softmax_alpha_")) {
            let bad = |why: String| crate::error::Error(format!("{} (entry {}): {key}: {why}", path.display(), n + 1));
            let m = v.matrix().ok_or_else(|| bad("not a matrix of numbers".into()))?;
            if m.len() > MAX_ALPHA_ROWS {
                return Err(bad(format!("{} rows; expected at most {MAX_ALPHA_ROWS}", m.len())));
            }
            if let Some(r) = m.iter().find(|r| r.len() != k) {
                return Err(bad(format!("a row of {} values; expected {k}, one per op", r.len())));
            }
            match rows_of.iter().find(|(kk, _)| kk == key) {
                Some((_, r)) if *r != m.len() => {
                    return Err(bad(format!("{} rows; expected {r}, as in its first entry", m.len())));
                }
                Some(_) => {}
                None => rows_of.push((key.clone(), m.len())),
            }
        }
    }
    Ok(())
}

/// The most rows an α matrix of a report may have: DARTS' 14 edges, NB201's
/// 6 and a ResNet-56's 27 layers are far below.
const MAX_ALPHA_ROWS: usize = 1000;
