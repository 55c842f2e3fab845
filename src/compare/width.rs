//! `rarts compare --space width`: width search beside the pruning baselines,
//! all at one multiply-add target (SPEC §7, the paper's ResNet comparison).
//! For each seed:
//!
//! - `full`: the unpruned network, trained from scratch;
//! - `rarts`, `darts1`: the widths each search finds (the argmax per
//!   layer, SPEC §7), trained from scratch;
//! - `rarts expected`, `darts1 expected`: the candidates nearest each
//!   layer's expected width under the search's softmax(α), trained from
//!   scratch (where the argmax falls far from the target, these land on
//!   it: RESULTS.md);
//! - `uniform`: every searchable conv at the one fraction of its channels
//!   whose network comes closest to the target, trained from scratch;
//! - `l1-prune` (Li et al. 2017): the trained `full` network's searchable
//!   convs keep that same fraction of their filters, those of largest L1
//!   norm, then the network is fine-tuned.
//!
//! One table in `DIR/results.md`: test accuracy, weights and multiply-adds
//! of each, mean ± std over the seeds. Every job resumes and is skipped once
//! done; a network trained from scratch with widths an earlier row of the
//! same seed trained is not trained again (the table says which).

use std::fmt::Write as _;
use std::path::Path;

use super::table::flags;
use super::{Cost, Preset, mean_std, search_job, train_job};
use crate::backend::Backend;
use crate::data::DataSpec;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::rundir::{machine, today};
use crate::search::algo::Algo;
use crate::search::config::{SearchConfig, StepConfig};
use crate::space::width::{FRACTIONS, TARGET_TOLERANCE, WidthConfig, Widths};
use crate::space::{NetSpec, SpaceKind};
use crate::train::{RecipeOverrides, TrainConfig};

/// The methods, in table order.
pub const METHODS: [&str; 7] = ["full", "rarts", "darts1", "rarts expected", "darts1 expected", "uniform", "l1-prune"];

/// The searches, with their rows in [`METHODS`]: argmax widths, expected widths.
const SEARCHES: [(usize, usize, Algo); 2] = [(1, 3, Algo::Rarts), (2, 4, Algo::Darts1)];

impl Preset {
    /// The width comparison's presets. `small`: a 2-core CPU on
    /// Fashion-MNIST (ResNet-20, short schedules on part of each epoch; each
    /// choice is in the table's settings). `paper`: CIFAR-10 on a GPU
    /// (ResNet-56, He et al.'s 200-epoch recipe with the cosine schedule,
    /// 40 epochs of fine-tuning at lr 0.01 for the pruned network). `smoke`:
    /// every job in seconds on the embedded data (depth 8).
    pub fn width(name: &str, data: Option<DataSpec>) -> Result<Preset> {
        let step =
            |data: DataSpec, depth: usize| StepConfig { data, space: SpaceKind::Width, depth, ..StepConfig::default() };
        let search = |step: StepConfig| SearchConfig { step, eval_images: Some(0), ..SearchConfig::default() };
        let train =
            |data: DataSpec, depth: usize| TrainConfig { data, depth, ..TrainConfig::for_space(SpaceKind::Width) };
        // The fine-tuning of the pruned network: `train` at another rate
        // (and length).
        let finetune = |train: &TrainConfig, epochs: Option<usize>| TrainConfig {
            overrides: RecipeOverrides {
                epochs: epochs.or(train.overrides.epochs),
                lr: Some(0.01),
                ..train.overrides.clone()
            },
            ..train.clone()
        };
        match name {
            "small" => {
                let data = data.unwrap_or_else(|| DataSpec::FashionMnist("/usr/share/datasets/fashion-mnist".into()));
                // Measured on 2 cores (28×28): a ResNet-20 training step at
                // batch 64 takes 0.39 s at full width, 0.23 s at half; a
                // search step at batch 32 0.36 s. The whole comparison took
                // 57 minutes (2026-12-02), the rows that share a network
                // trained once.
                let train = TrainConfig {
                    overrides: RecipeOverrides { batch: Some(64), epochs: Some(10), ..RecipeOverrides::default() },
                    steps_per_epoch: Some(250),
                    eval_images: Some(5000),
                    ..train(data.clone(), 20)
                };
                Ok(Preset {
                    name: "small",
                    seeds: vec![0, 1],
                    search: SearchConfig {
                        epochs: 4,
                        steps_per_epoch: Some(250),
                        ..search(StepConfig { batch: 32, arch_lr: 6e-3, ..step(data, 20) })
                    },
                    finetune: Some(finetune(&train, Some(3))),
                    retrain: true,
                    train,
                })
            }
            "smoke" => {
                let data = data.unwrap_or(DataSpec::Embedded);
                let train = TrainConfig {
                    overrides: RecipeOverrides { batch: Some(16), epochs: Some(1), ..RecipeOverrides::default() },
                    steps_per_epoch: Some(2),
                    eval_images: Some(100),
                    run: TrainConfig::for_space(SpaceKind::Width).run.quiet(),
                    ..train(data.clone(), 8)
                };
                Ok(Preset {
                    name: "smoke",
                    seeds: vec![0, 1],
                    search: SearchConfig {
                        epochs: 1,
                        steps_per_epoch: Some(2),
                        run: SearchConfig::default().run.quiet(),
                        ..search(StepConfig { batch: 8, ..step(data, 8) })
                    },
                    finetune: Some(finetune(&train, None)),
                    retrain: true,
                    train,
                })
            }
            "paper" => {
                let Some(data) = data else {
                    crate::bail!("--preset paper needs --data cifar10:DIR (CIFAR-10 in its binary version)");
                };
                let train = train(data.clone(), 56);
                Ok(Preset {
                    name: "paper",
                    seeds: vec![0, 1],
                    search: search(step(data, 56)),
                    finetune: Some(finetune(&train, Some(40))),
                    retrain: true,
                    train,
                })
            }
            other => crate::bail!("--preset {other}: expected small, paper or smoke"),
        }
    }
}

/// One method on one seed.
#[derive(Clone, Debug)]
struct Outcome {
    test_acc: f64,
    widths: Widths,
    params: usize,
    macs: usize,
    /// The search, for the searched methods.
    search: Option<(Cost, f64)>,
}

/// The trained network in `dir`: its configuration and widths.
fn trained(dir: &Path) -> Result<(WidthConfig, Widths)> {
    match Model::load(dir)?.info.net {
        NetSpec::Width(cfg, w) => Ok((cfg, w)),
        other => crate::bail!("{}: a {} network, expected a width network", dir.display(), other.space().name()),
    }
}

/// Trains (or finds trained) `widths` into `out/DIR` and reads what it scored.
fn outcome<B: Backend<Elem = f32>>(
    make: &impl Fn() -> Result<B>,
    base: &TrainConfig,
    widths: &str,
    seed: u64,
    dir: &Path,
    init_from: Option<&Path>,
) -> Result<Outcome> {
    let test_acc = train_job(make, base, widths, seed, dir, init_from)?;
    let (cfg, widths) = trained(dir)?;
    let (params, macs) = cfg.cost(&widths.0);
    Ok(Outcome { test_acc, widths, params, macs, search: None })
}

/// Runs (or continues) every job of `preset` into `out`, then writes
/// `out/results.md` and returns its text.
pub fn compare_widths<B: Backend<Elem = f32>>(
    make: impl Fn() -> Result<B>,
    preset: &Preset,
    out: &Path,
) -> Result<String> {
    use crate::error::Context;
    std::fs::create_dir_all(out).ctx(|| format!("--out {}: cannot create the folder", out.display()))?;
    let finetune =
        preset.finetune.as_ref().ok_or_else(|| Error("compare: the width preset has no fine-tuning".into()))?;
    let mut rows: Vec<Vec<Outcome>> = vec![Vec::new(); METHODS.len()];
    let mut shared = Vec::new();
    let mut fraction = 1.0;
    for &seed in &preset.seeds {
        let dir = |m: &str| out.join(format!("train-{m}-s{seed}"));
        let full = dir("full");
        let full_trained = outcome(&make, &preset.train, "full", seed, &full, None)?;
        rows[0].push(full_trained.clone());
        // The network as trained gives the exact multiply-adds (the data's
        // image size and channels).
        let (cfg, _) = trained(&full)?;
        fraction = cfg.uniform_fraction(preset.search.step.macs_target);
        let uniform = format!("uniform:{fraction}");
        // Every network trained from scratch: its row, widths and where they
        // come from, and its folder's name.
        let mut jobs = Vec::new();
        for (row, expected_row, algo) in SEARCHES {
            let s = search_job(&make, preset, out, algo, seed, None)?;
            let search = Some((s.cost, s.alpha_spread));
            jobs.push((row, s.dir.display().to_string(), algo.name().to_string(), search));
            jobs.push((
                expected_row,
                format!("expected:{}", s.dir.display()),
                format!("{}-expected", algo.name()),
                search,
            ));
        }
        jobs.push((5, uniform.clone(), "uniform".to_string(), None));
        // On one machine training is deterministic given the widths, the
        // seed and the settings (across thread counts the sums' order, and
        // so the last bits, differ): a network already trained in this seed
        // is not trained again (e.g. both searches' argmax widths, or
        // expected widths that are uniform scaling's).
        let mut done: Vec<(usize, Outcome)> = vec![(0, full_trained)];
        for (row, widths, name, search) in jobs {
            let w = Widths::from_source(&cfg, &widths)?;
            let o = match done.iter().find(|(_, o)| o.widths == w) {
                Some((first, o)) => {
                    shared.push((row, *first, seed));
                    o.clone()
                }
                None => outcome(&make, &preset.train, &widths, seed, &dir(&name), None)?,
            };
            done.push((row, o.clone()));
            rows[row].push(Outcome { search, ..o });
        }
        let pruned = out.join(format!("finetune-l1-prune-s{seed}"));
        rows[6].push(outcome(&make, finetune, &uniform, seed, &pruned, Some(&full))?);
    }
    let (cfg, _) = trained(&out.join(format!("train-full-s{}", preset.seeds[0])))?;
    let text = report(preset, &cfg, fraction, &rows, &shared);
    crate::rundir::write_atomic(&out.join("results.md"), text.as_bytes())?;
    crate::report::write_during_run(out);
    Ok(text)
}

/// `shared`: (row, the row whose training it reuses, seed).
fn report(
    p: &Preset,
    cfg: &WidthConfig,
    fraction: f64,
    rows: &[Vec<Outcome>],
    shared: &[(usize, usize, u64)],
) -> String {
    let mut s = String::new();
    let (full_params, full_macs) = cfg.cost(&cfg.full_widths());
    let target = p.search.step.macs_target;
    let _ = writeln!(s, "# rarts compare --space width --preset {}\n", p.name);
    let _ = writeln!(s, "Date {}; machine: {}; seeds {:?}.\n", today(), machine(), p.seeds);
    let _ = writeln!(
        s,
        "ResNet-{} on {}×{} inputs: {full_params} weights, {full_macs} multiply-adds at full width. Target: {:.0} % \
         of the multiply-adds; uniform scaling and L1 pruning keep {fraction} of each searchable conv's channels.\n",
        cfg.depth,
        cfg.image.0,
        cfg.image.1,
        target * 100.0
    );
    let k = FRACTIONS.len();
    let _ = writeln!(
        s,
        "| method | test accuracy (mean ± std) | per seed | weights | multiply-adds | of full | max \\|softmax(α) − 1/{k}\\| | search time (s) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for (method, outs) in METHODS.iter().zip(rows) {
        let accs: Vec<f64> = outs.iter().map(|o| o.test_acc * 100.0).collect();
        let (m, sd) = mean_std(&accs);
        let per = accs.iter().map(|a| format!("{a:.2}")).collect::<Vec<_>>().join(", ");
        let mean = |f: fn(&Outcome) -> f64| mean_std(&outs.iter().map(f).collect::<Vec<_>>()).0;
        let fractions: Vec<String> = outs.iter().map(|o| format!("{:.3}", o.macs as f64 / full_macs as f64)).collect();
        let searched: Vec<&(Cost, f64)> = outs.iter().filter_map(|o| o.search.as_ref()).collect();
        let spread = searched.iter().map(|x| format!("{:.3}", x.1)).collect::<Vec<_>>().join(", ");
        let time = searched.iter().map(|x| format!("{:.0}", x.0.total_s)).collect::<Vec<_>>().join(", ");
        let dash = |v: String| if v.is_empty() { "—".to_string() } else { v };
        let _ = writeln!(
            s,
            "| {method} | {m:.2} ± {sd:.2} % | {per} | {:.0} | {:.0} | {} | {} | {} |",
            mean(|o| o.params as f64),
            mean(|o| o.macs as f64),
            fractions.join(", "),
            dash(spread),
            dash(time)
        );
    }
    let _ = writeln!(s, "\nSearched widths against the target ({:.0} % of the multiply-adds):\n", target * 100.0);
    for row in SEARCHES.iter().flat_map(|&(argmax, expected, _)| [argmax, expected]) {
        for (o, seed) in rows[row].iter().zip(&p.seeds) {
            let off = o.macs as f64 / full_macs as f64 / target - 1.0;
            let _ = writeln!(
                s,
                "- {} widths, seed {seed}: {:.3} of full, {:+.1} % from the target{}",
                METHODS[row],
                o.macs as f64 / full_macs as f64,
                off * 100.0,
                if off.abs() <= TARGET_TOLERANCE {
                    String::new()
                } else {
                    format!(" (more than {:.0} % off)", TARGET_TOLERANCE * 100.0)
                }
            );
        }
    }
    if !shared.is_empty() {
        let _ = writeln!(
            s,
            "\nTrained once (on one machine the same widths, seed and settings give the same run, so the row \
             repeats the first one's result):\n"
        );
        for &(row, first, seed) in shared {
            let _ = writeln!(s, "- {}, seed {seed}: the widths of {}", METHODS[row], METHODS[first]);
        }
    }
    let _ = writeln!(s, "\n## Widths (channels of each block's first conv)\n");
    for (method, outs) in METHODS.iter().zip(rows) {
        for (o, seed) in outs.iter().zip(&p.seeds) {
            let w: Vec<String> = o.widths.0.iter().map(usize::to_string).collect();
            let _ = writeln!(s, "- {method}, seed {seed}: `[{}]`", w.join(", "));
        }
    }
    let _ = writeln!(s, "\n## Settings\n");
    let _ = writeln!(s, "Search (rarts, darts1): {}", flags(&p.search.identity()));
    let _ = writeln!(s, "\nTraining from scratch (full, searched, expected, uniform): {}", flags(&p.train.identity()));
    if let Some(f) = &p.finetune {
        let _ = writeln!(s, "\nFine-tuning after L1 pruning (from the trained full network): {}", flags(&f.identity()));
    }
    s
}
