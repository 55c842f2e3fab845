//! A comparison's plan: what shapes its jobs, recorded in its folder so that
//! a rerun with other settings is refused rather than relabelling finished
//! jobs; and the data check of the presets that follow CIFAR-10's protocol.

use std::path::Path;

use super::{METHODS, Preset, method_name};
use crate::data::DataSpec;
use crate::error::{Context, Result};

/// Refuses data that are not CIFAR-10's size (3×32×32 images, 10 classes)
/// for a preset whose protocol is CIFAR-10's, in whatever format they come.
pub(super) fn cifar_sized(data: &DataSpec, preset: &str) -> Result<()> {
    let split = data.load()?;
    let [_, c, h, w] = split.train.shape().0;
    let k = split.train.num_classes();
    if (c, h, w, k) != (3, 32, 32, 10) {
        crate::bail!(
            "--preset {preset}: --data {data} holds {k} classes of {c}×{h}×{w} images; expected CIFAR-10's 10 classes \
             of 3×32×32 (the protocol this preset follows)"
        );
    }
    if split.test.is_none() && preset == "paper" {
        crate::bail!("--preset {preset}: --data {data} has no test split; expected CIFAR-10 with its test set");
    }
    Ok(())
}

/// The file in which a comparison records the settings that shape its jobs.
pub const PLAN_FILE: &str = "compare.txt";
const PLAN_HEADER: &str = "rarts-compare v1";

/// What shapes a comparison's jobs, as `key value` pairs: the space, the
/// preset, the seeds, the methods, every search setting and (where cells are
/// retrained) every retraining setting. What only judges or presents (a
/// NAS-Bench-201 table, whether to retrain, the report) is not part of it.
fn plan(p: &Preset) -> Vec<(String, String)> {
    let mut v = vec![
        ("space".to_string(), p.search.step.space.name().to_string()),
        ("preset".to_string(), p.name.to_string()),
        ("seeds".to_string(), p.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(",")),
        ("methods".to_string(), METHODS.map(method_name).join(",")),
    ];
    let skip = |f: &str| matches!(f, "--algo" | "--seed" | "--genotype" | "--init-from" | "--out");
    v.extend(p.search.identity().into_iter().filter(|(f, _)| !skip(f)).map(|(f, x)| (format!("search {f}"), x)));
    v.extend(p.train.identity().into_iter().filter(|(f, _)| !skip(f)).map(|(f, x)| (format!("train {f}"), x)));
    if let Some(ft) = &p.finetune {
        v.extend(ft.identity().into_iter().filter(|(f, _)| !skip(f)).map(|(f, x)| (format!("finetune {f}"), x)));
    }
    v
}

/// Refuses an `out` that holds another kind of run, or a comparison made
/// with other settings (listing what differs); records the plan of a new one.
pub(super) fn check_plan(out: &Path, p: &Preset) -> Result<()> {
    let now = plan(p);
    let path = out.join(PLAN_FILE);
    let text = format!("{PLAN_HEADER}\n{}", now.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect::<String>());
    match std::fs::read_to_string(&path) {
        Ok(old) => {
            let mut lines = old.lines();
            if lines.next() != Some(PLAN_HEADER) {
                crate::bail!(
                    "--out {}: {} is not a rarts comparison's plan; expected a line '{PLAN_HEADER}' first",
                    out.display(),
                    path.display()
                );
            }
            let then: Vec<(String, String)> =
                lines.filter_map(|l| l.split_once('\t')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let mut diff = Vec::new();
            for (k, v) in &now {
                match then.iter().find(|(f, _)| f == k) {
                    Some((_, o)) if o == v => {}
                    Some((_, o)) => diff.push(format!("{k}: {o} then, {v} now")),
                    None => diff.push(format!("{k}: not set then, {v} now")),
                }
            }
            for (k, o) in &then {
                if !now.iter().any(|(f, _)| f == k) {
                    diff.push(format!("{k}: {o} then, not a setting now"));
                }
            }
            if !diff.is_empty() {
                crate::bail!(
                    "--out {}: this comparison was started with other settings, so its finished jobs would be \
                     reported under the new ones:\n  {}\nexpected the same settings, or another --out",
                    out.display(),
                    diff.join("\n  ")
                );
            }
            Ok(())
        }
        Err(_) => {
            for f in ["checkpoint.bin", "log.jsonl", "model.safetensors"] {
                if out.join(f).exists() {
                    crate::bail!(
                        "--out {}: holds {f}, a search's or a training's; expected an empty folder or a comparison's",
                        out.display()
                    );
                }
            }
            std::fs::create_dir_all(out).ctx(|| format!("--out {}: cannot create the folder", out.display()))?;
            crate::rundir::write_atomic(&path, text.as_bytes())
        }
    }
}
