//! What every command's settings share: the checks of a flag's value (the
//! error names the flag and what was expected), how a value is shown, how
//! two runs' settings differ, and the defaults of a config whose flags are
//! declared on it (`#[derive(clap::Args)]`): the flags' own defaults, so
//! that each default is written once.

use crate::error::{Error, Result};
use crate::space::darts::MIN_LAYERS;

/// Checks a flag's value; the error names the flag and what was expected.
pub fn need(ok: bool, flag: &str, value: impl std::fmt::Display, expected: &str) -> Result<()> {
    if ok { Ok(()) } else { Err(Error(format!("{flag} {value}: expected {expected}"))) }
}

/// A rate, decay or weight: finite, and positive or non-negative.
pub fn rate(flag: &str, v: f32, positive: bool) -> Result<()> {
    let ok = v.is_finite() && if positive { v > 0.0 } else { v >= 0.0 };
    need(ok, flag, v, if positive { "a finite positive number" } else { "a finite non-negative number" })
}

/// `--momentum` in [0, 1).
pub fn momentum(m: f32) -> Result<()> {
    need(m.is_finite() && (0.0..1.0).contains(&m), "--momentum", m, "a number in [0, 1)")
}

/// The sizes a search and a training run share: `--c`, `--layers`,
/// `--batch`, `--epochs`, `--steps-per-epoch`.
pub fn sizes(c: usize, layers: usize, batch: usize, epochs: usize, steps_per_epoch: Option<usize>) -> Result<()> {
    need(c >= 2 && c.is_multiple_of(2), "--c", c, "an even channel count of at least 2")?;
    need(layers >= MIN_LAYERS, "--layers", layers, "at least 3 cells (the two reduction cells and a normal cell)")?;
    need(batch >= 1, "--batch", batch, "at least 1")?;
    need(epochs >= 1, "--epochs", epochs, "at least 1")?;
    if let Some(s) = steps_per_epoch {
        need(s >= 1, "--steps-per-epoch", s, "at least 1")?;
    }
    Ok(())
}

/// A flag value as a person would write it: `0.025`, `3e-4`, `1e30`.
pub fn show(v: f32) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-2..1e6).contains(&a) { format!("{v:e}") } else { v.to_string() }
}

/// The settings of `now` that differ from those recorded in `then`
/// (`flag=value` pairs), one line each: `--lambda: 1 in the checkpoint, 2 now`.
pub fn differences(then: &[(String, String)], now: &[(&'static str, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (flag, v) in now {
        match then.iter().find(|(f, _)| f == flag) {
            Some((_, old)) if old == v => {}
            Some((_, old)) => out.push(format!("{flag}: {old} in the checkpoint, {v} now")),
            None => out.push(format!("{flag}: not in the checkpoint, {v} now")),
        }
    }
    for (flag, old) in then {
        if !now.iter().any(|(f, _)| f == flag) {
            out.push(format!("{flag}: {old} in the checkpoint, not a setting now"));
        }
    }
    out
}

/// A config as its flags make it when only `args` are given (none, or the
/// ones without a default): the config's `Default`, written once, in its
/// flags' `default_value_t`.
///
/// # Panics
/// If `args` leave a required flag out or are refused: a mistake in the
/// config's declaration, which every config's own default test catches.
pub fn flag_defaults<T: clap::Args + clap::FromArgMatches>(args: &[&str]) -> T {
    let cmd = T::augment_args(clap::Command::new("defaults").no_binary_name(true));
    let m = cmd.try_get_matches_from(args).unwrap_or_else(|e| panic!("the flags' defaults: {e}"));
    T::from_arg_matches(&m).unwrap_or_else(|e| panic!("the flags' defaults: {e}"))
}

#[cfg(test)]
mod tests {
    use super::show;

    #[test]
    fn values_are_shown_as_written() {
        assert_eq!(
            [show(0.025), show(3e-4), show(1e30), show(0.0), show(-5e-4)],
            ["0.025", "3e-4", "1e30", "0", "-5e-4"]
        );
    }
}
