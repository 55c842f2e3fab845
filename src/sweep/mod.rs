//! `rarts sweep`: one command (`toy`, `search` or `train`) over a grid of
//! flag values and seeds. Each point of the grid runs in a folder of its
//! own, named by its values (`lambda=0.5,beta=2,seed=0`), resumes from its
//! checkpoint and is skipped once done; the sweep's folder records the
//! plan (`sweep.tsv`: the command, its fixed flags, the grid, the seeds),
//! so that a rerun with other settings is refused, one point can be run by
//! name (`--job`, what a Slurm task runs) and the table written from the
//! folder alone. [`table`] reads every finished point into `results.md`
//! and `results.csv`.

use std::path::Path;

use crate::error::{Context, Error, Result};

pub mod table;

/// The sweep's plan, in its folder.
pub const PLAN_FILE: &str = "sweep.tsv";
const HEADER: &str = "rarts-sweep v1";
/// Written into a point's folder once its command has finished.
pub const DONE_FILE: &str = "sweep-done";
/// What `rarts toy --json` writes into a point's folder.
pub const TOY_RESULT: &str = "result.json";

/// The command a sweep runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Toy,
    Search,
    Train,
}

impl Command {
    pub fn name(self) -> &'static str {
        match self {
            Command::Toy => "toy",
            Command::Search => "search",
            Command::Train => "train",
        }
    }

    pub fn parse(s: &str) -> Result<Command> {
        match s {
            "toy" => Ok(Command::Toy),
            "search" => Ok(Command::Search),
            "train" => Ok(Command::Train),
            other => crate::bail!("sweep: COMMAND '{other}'; expected toy, search or train"),
        }
    }
}

/// A sweep: the command, its flags fixed for every point, the grid (each
/// flag with its values, in the order given) and the seeds (none: the
/// command's own default, and no `--seed` given).
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    pub command: Command,
    pub base: Vec<String>,
    pub grid: Vec<(String, Vec<String>)>,
    pub seeds: Vec<u64>,
}

/// One point of the grid on one seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Its name and its folder's: `lambda=0.5,beta=2,seed=0`.
    pub id: String,
    /// Each grid flag's value here, in the grid's order.
    pub values: Vec<(String, String)>,
    pub seed: Option<u64>,
}

/// The flags a sweep sets for each point itself.
const SET_PER_POINT: [&str; 5] = ["--out", "--seed", "--json", "--resume", "--force"];

/// `--flag` of `flag` or `--flag` (the sweep's `--grid lambda=…` or
/// `--grid --lambda=…`).
fn flag_name(f: &str) -> String {
    format!("--{}", f.trim_start_matches('-'))
}

/// Whether `tokens` give `flag` (as `--flag V` or `--flag=V`).
fn gives(tokens: &[String], flag: &str) -> bool {
    tokens.iter().any(|t| t == flag || t.starts_with(&format!("{flag}=")))
}

/// A value as a folder name can hold it: characters other than letters,
/// digits and `.+-` become `_`.
fn safe(v: &str) -> String {
    v.chars().map(|c| if c.is_ascii_alphanumeric() || ".+-".contains(c) { c } else { '_' }).collect()
}

impl Sweep {
    /// `--grid FLAG=V1,V2,…`: the flag and its values.
    pub fn parse_grid(s: &str) -> Result<(String, Vec<String>)> {
        let bad = |why: &str| Error(format!("--grid {s}: {why}; expected FLAG=V1,V2,… (e.g. --grid lambda=0.5,1,2)"));
        let (flag, values) = s.split_once('=').ok_or_else(|| bad("no '='"))?;
        let flag = flag_name(flag.trim());
        if flag.len() < 3 || !flag[2..].chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(bad("not a flag name"));
        }
        let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
        if values.iter().any(String::is_empty) {
            return Err(bad("an empty value"));
        }
        Ok((flag, values))
    }

    /// Checks the sweep: a grid, no flag twice, none the sweep sets itself,
    /// seeds only where the command takes them.
    pub fn validate(&self) -> Result<()> {
        if self.grid.is_empty() {
            crate::bail!("sweep: no --grid; expected at least one --grid FLAG=V1,V2,…");
        }
        for (i, (flag, values)) in self.grid.iter().enumerate() {
            if self.grid[..i].iter().any(|(f, _)| f == flag) {
                crate::bail!("--grid {flag}: given twice; expected each flag once");
            }
            if gives(&self.base, flag) {
                crate::bail!("--grid {flag}: also among the command's flags; expected it in one place");
            }
            if SET_PER_POINT.contains(&flag.as_str()) || flag == "--seed" {
                crate::bail!("--grid {flag}: set by the sweep for each point (use --seeds for seeds)");
            }
            let names: Vec<String> = values.iter().map(|v| safe(v)).collect();
            if let Some(d) = (0..names.len()).find(|&j| names[..j].contains(&names[j])) {
                crate::bail!("--grid {flag}: values '{}' repeat or name the same folder", values[d]);
            }
        }
        for f in SET_PER_POINT {
            if gives(&self.base, f) {
                crate::bail!(
                    "sweep {} {f}: set by the sweep for each point; expected it left out",
                    self.command.name()
                );
            }
        }
        if gives(&self.base, "--seed") && !self.seeds.is_empty() {
            crate::bail!("sweep: --seed among the command's flags and --seeds; expected one of them");
        }
        if self.command == Command::Toy && !self.seeds.is_empty() {
            crate::bail!("sweep --seeds: the toy model has no seed (it is deterministic)");
        }
        Ok(())
    }

    /// Every point, the first grid flag varying slowest, seeds fastest.
    pub fn points(&self) -> Vec<Point> {
        let mut combos: Vec<Vec<(String, String)>> = vec![vec![]];
        for (flag, values) in &self.grid {
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.push((flag.clone(), v.clone()));
                        c
                    })
                })
                .collect();
        }
        let seeds: Vec<Option<u64>> =
            if self.seeds.is_empty() { vec![None] } else { self.seeds.iter().copied().map(Some).collect() };
        let mut out = Vec::new();
        for values in combos {
            for &seed in &seeds {
                let mut parts: Vec<String> =
                    values.iter().map(|(f, v)| format!("{}={}", f.trim_start_matches('-'), safe(v))).collect();
                if let Some(s) = seed {
                    parts.push(format!("seed={s}"));
                }
                out.push(Point { id: parts.join(","), values: values.clone(), seed });
            }
        }
        out
    }

    /// The command line of point `p` of the sweep in `out` (after `rarts
    /// [--device D]`): the command, its flags, the point's values and
    /// seed, and where it writes.
    pub fn argv(&self, out: &Path, p: &Point) -> Vec<String> {
        let mut v = vec![self.command.name().to_string()];
        v.extend(self.base.iter().cloned());
        for (f, x) in &p.values {
            v.push(f.clone());
            v.push(x.clone());
        }
        if let Some(s) = p.seed {
            v.extend(["--seed".to_string(), s.to_string()]);
        }
        let dir = out.join(&p.id).display().to_string();
        match self.command {
            Command::Toy => v.extend(["--json".to_string(), format!("{dir}/{TOY_RESULT}")]),
            Command::Search | Command::Train => {
                v.extend(["--out".to_string(), dir, "--resume".into(), "--quiet".into()]);
            }
        }
        v
    }

    fn to_text(&self) -> String {
        let mut s = format!("{HEADER}\ncommand\t{}\nflags", self.command.name());
        for t in &self.base {
            s += &format!("\t{t}");
        }
        s += "\n";
        for (f, vs) in &self.grid {
            s += &format!("grid\t{f}\t{}\n", vs.join("\t"));
        }
        s += "seeds";
        for x in &self.seeds {
            s += &format!("\t{x}");
        }
        s + "\n"
    }

    fn from_text(text: &str, path: &Path) -> Result<Sweep> {
        let bad = |what: String| Error(format!("{}: {what}", path.display()));
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(bad(format!("expected '{HEADER}' on its first line")));
        }
        let mut sw = Sweep { command: Command::Toy, base: vec![], grid: vec![], seeds: vec![] };
        for line in lines {
            let mut f = line.split('\t');
            match f.next() {
                Some("command") => sw.command = Command::parse(f.next().unwrap_or("")).map_err(|e| bad(e.0))?,
                Some("flags") => sw.base = f.map(String::from).collect(),
                Some("grid") => {
                    let flag = f.next().ok_or_else(|| bad("a grid line without a flag".into()))?.to_string();
                    sw.grid.push((flag, f.map(String::from).collect()));
                }
                Some("seeds") => {
                    sw.seeds = f.map(|x| x.parse().map_err(|_| bad(format!("seed '{x}'")))).collect::<Result<_>>()?
                }
                _ => return Err(bad(format!("unexpected line '{line}'"))),
            }
        }
        Ok(sw)
    }

    /// The sweep recorded in `out`.
    pub fn load(out: &Path) -> Result<Sweep> {
        let path = out.join(PLAN_FILE);
        let text = std::fs::read_to_string(&path).ctx(|| {
            format!(
                "--out {}: no sweep there ({} could not be read; `rarts sweep` writes it)",
                out.display(),
                path.display()
            )
        })?;
        Sweep::from_text(&text, &path)
    }

    /// Records the sweep in `out`, or checks it against the one recorded
    /// there: a sweep with other settings is refused, saying what differs,
    /// so that finished points are never reported under new settings.
    pub fn record(&self, out: &Path) -> Result<()> {
        let path = out.join(PLAN_FILE);
        if path.exists() {
            let then = Sweep::load(out)?;
            if &then != self {
                let mut diff = Vec::new();
                if then.command != self.command {
                    diff.push(format!("command: {} then, {} now", then.command.name(), self.command.name()));
                }
                if then.base != self.base {
                    diff.push(format!("flags: '{}' then, '{}' now", then.base.join(" "), self.base.join(" ")));
                }
                if then.grid != self.grid {
                    let g = |s: &Sweep| s.grid.iter().map(|(f, v)| format!("{f}={}", v.join(","))).collect::<Vec<_>>();
                    diff.push(format!("grid: {:?} then, {:?} now", g(&then), g(self)));
                }
                if then.seeds != self.seeds {
                    diff.push(format!("seeds: {:?} then, {:?} now", then.seeds, self.seeds));
                }
                crate::bail!(
                    "--out {}: this sweep was started with other settings:\n  {}\nexpected the same settings \
                     (or only --out, which reads them from the folder), or another --out",
                    out.display(),
                    diff.join("\n  ")
                );
            }
            return Ok(());
        }
        if out.exists() && std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(false) {
            crate::bail!(
                "--out {}: holds files but no {PLAN_FILE}; expected an empty folder or a sweep's",
                out.display()
            );
        }
        std::fs::create_dir_all(out).ctx(|| format!("--out {}: cannot create the folder", out.display()))?;
        crate::rundir::write_atomic(&path, self.to_text().as_bytes())
    }
}

/// Whether point `p` of the sweep in `out` has finished.
pub fn done(out: &Path, p: &Point) -> bool {
    out.join(&p.id).join(DONE_FILE).exists()
}

/// Notes that point `p` has finished.
pub fn mark_done(out: &Path, p: &Point) -> Result<()> {
    crate::rundir::write_atomic(&out.join(&p.id).join(DONE_FILE), b"done\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep() -> Sweep {
        Sweep {
            command: Command::Search,
            base: vec!["--epochs".into(), "2".into()],
            grid: vec![
                Sweep::parse_grid("lambda=0.5,1").unwrap(),
                Sweep::parse_grid("--data=synthetic:64,folder:/a b").unwrap(),
            ],
            seeds: vec![0, 1],
        }
    }

    #[test]
    fn points_are_named_by_their_values_and_read_back() {
        let s = sweep();
        s.validate().unwrap();
        let p = s.points();
        assert_eq!(p.len(), 8);
        assert_eq!(p[0].id, "lambda=0.5,data=synthetic_64,seed=0");
        assert_eq!(p[3].id, "lambda=0.5,data=folder__a_b,seed=1");
        let argv = s.argv(Path::new("/o"), &p[3]);
        assert_eq!(argv[..7], ["search", "--epochs", "2", "--lambda", "0.5", "--data", "folder:/a b"]);
        assert!(argv.ends_with(&["--resume".to_string(), "--quiet".into()]), "{argv:?}");
        assert_eq!(Sweep::from_text(&s.to_text(), Path::new("x")).unwrap(), s);
    }

    #[test]
    fn a_sweep_that_cannot_be_run_is_named() {
        let err = |s: Sweep| s.validate().unwrap_err().0;
        assert!(err(Sweep { grid: vec![], ..sweep() }).contains("no --grid"));
        assert!(err(Sweep { base: vec!["--lambda".into(), "2".into()], ..sweep() }).contains("also among"));
        assert!(err(Sweep { base: vec!["--out".into(), "x".into()], ..sweep() }).contains("set by the sweep"));
        assert!(err(Sweep { command: Command::Toy, ..sweep() }).contains("no seed"));
        let twice = Sweep { grid: vec![Sweep::parse_grid("a=1/2,1_2").unwrap()], ..sweep() };
        assert!(err(twice).contains("same folder"));
        assert!(Sweep::parse_grid("lambda").unwrap_err().0.contains("no '='"));
        assert!(Sweep::parse_grid("lambda=1,,2").unwrap_err().0.contains("empty value"));
    }
}
