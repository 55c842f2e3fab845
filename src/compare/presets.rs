//! The comparisons' presets for DARTS' cells and NB201's: each a data set,
//! seeds, and the search and retraining settings every method shares (the
//! width space's are in `width.rs`).

use super::Preset;
use crate::data::DataSpec;
use crate::error::Result;
use crate::search::config::{SearchConfig, StepConfig};
use crate::space::SpaceKind;
use crate::train::{RecipeOverrides, TrainConfig};

impl Preset {
    /// A preset of `space`: [`Preset::darts`] for DARTS' cells,
    /// [`Preset::nb201`] for NB201's.
    pub fn of(space: SpaceKind, name: &str, data: Option<DataSpec>) -> Result<Preset> {
        match space {
            SpaceKind::Darts => Preset::darts(name, data),
            SpaceKind::Nb201 => Preset::nb201(name, data),
            SpaceKind::Width => Preset::width(name, data),
        }
    }

    /// NB201's presets. `small`: a 2-core CPU on Fashion-MNIST (one cell
    /// per stage, searched at C = 8 and trained at C = 16, short schedules;
    /// each choice is in the table's settings). `paper`: NATS-Bench's protocol for a GPU (CIFAR-10, 5
    /// cells per stage, the 200-epoch recipe). `smoke`: every job in about a
    /// minute on the embedded data.
    pub fn nb201(name: &str, data: Option<DataSpec>) -> Result<Preset> {
        let step = |data: DataSpec| StepConfig { data, space: SpaceKind::Nb201, ..StepConfig::default() };
        let search = |step: StepConfig| SearchConfig { step, eval_images: Some(0), ..SearchConfig::default() };
        let train = |data: DataSpec| TrainConfig { data, ..TrainConfig::for_space(SpaceKind::Nb201) };
        // The 2-core CPU presets' search: C = 8, one cell per stage, batch
        // 64, 8 epochs of `steps`, α's rate raised so that α moves.
        let cpu_search = |data: DataSpec, steps: usize| SearchConfig {
            epochs: 8,
            steps_per_epoch: Some(steps),
            ..search(StepConfig { c: 8, cells_per_stage: 1, batch: 64, arch_lr: 6e-3, ..step(data) })
        };
        match name {
            "small" => {
                let data = data.unwrap_or_else(|| DataSpec::FashionMnist("/usr/share/datasets/fashion-mnist".into()));
                Ok(Preset {
                    name: "small",
                    seeds: vec![0, 1],
                    // Measured on 2 cores (28×28): a search step at batch 64
                    // takes 0.46-1.04 s, a training step of the all-3×3 cell
                    // at C = 16 0.47 s; about 2.3 hours in all.
                    search: cpu_search(data.clone(), 100),
                    train: TrainConfig {
                        cells_per_stage: 1,
                        overrides: RecipeOverrides {
                            c: Some(16),
                            batch: Some(64),
                            lr: Some(0.05),
                            epochs: Some(6),
                            ..RecipeOverrides::default()
                        },
                        steps_per_epoch: Some(200),
                        eval_images: Some(5000),
                        ..train(data)
                    },
                    finetune: None,
                    retrain: true,
                })
            }
            "smoke" => {
                let data = data.unwrap_or(DataSpec::Embedded);
                Ok(Preset {
                    name: "smoke",
                    seeds: vec![0, 1],
                    search: SearchConfig {
                        epochs: 1,
                        steps_per_epoch: Some(2),
                        run: SearchConfig::default().run.quiet(),
                        ..search(StepConfig { c: 4, cells_per_stage: 1, batch: 8, ..step(data.clone()) })
                    },
                    train: TrainConfig {
                        cells_per_stage: 1,
                        overrides: RecipeOverrides {
                            c: Some(4),
                            batch: Some(16),
                            epochs: Some(1),
                            ..RecipeOverrides::default()
                        },
                        steps_per_epoch: Some(2),
                        eval_images: Some(100),
                        run: TrainConfig::for_space(SpaceKind::Nb201).run.quiet(),
                        ..train(data)
                    },
                    finetune: None,
                    retrain: true,
                })
            }
            "cifar-cpu" => {
                let Some(data) = data else {
                    crate::bail!(
                        "--preset cifar-cpu needs --data folder:DIR or cifar10:DIR (CIFAR-10 as an image folder or \
                         in its binary version)"
                    );
                };
                Ok(Preset {
                    name: "cifar-cpu",
                    seeds: vec![0, 1, 2],
                    // Measured on 2 idle cores (CIFAR-10, 32×32, C = 8, one
                    // cell per stage, batch 64): a step of DARTS 1st order
                    // 0.30 s, RARTS 0.39 s, DARTS 2nd order 0.77 s, so the
                    // 1,000 steps of a search take 5, 6.5 and 13 minutes.
                    // The α rate is raised from NATS-Bench's 3e-4 (for about
                    // 19,500 steps) so that α moves in 1,000; the same for
                    // every method.
                    search: cpu_search(data.clone(), 125),
                    train: train(data),
                    finetune: None,
                    retrain: false,
                })
            }
            "paper" => {
                let Some(data) = data else {
                    crate::bail!("--preset paper needs --data cifar10:DIR or folder:DIR (CIFAR-10)");
                };
                // NAS-Bench-201's own protocol (SPEC §6): C = 16, 5 cells per
                // stage, 50 epochs at batch 64 on a 25,000 / 25,000 split,
                // the table as the judge, nothing retrained.
                Ok(Preset {
                    name: "paper",
                    seeds: vec![0, 1, 2],
                    search: SearchConfig {
                        epochs: 50,
                        ..search(StepConfig { c: 16, cells_per_stage: 5, batch: 64, ..step(data.clone()) })
                    },
                    train: train(data),
                    finetune: None,
                    retrain: false,
                })
            }
            other => crate::bail!("--preset {other}: expected small, cifar-cpu, paper or smoke"),
        }
    }

    /// `small`: a 2-core CPU on the full Fashion-MNIST, about 3 hours of
    /// compute. `paper`: the published protocol for a GPU (CIFAR-10, which
    /// `data` must name). `smoke`: every job in about a minute on the
    /// embedded data. `data` replaces the preset's data set.
    pub fn darts(name: &str, data: Option<DataSpec>) -> Result<Preset> {
        match name {
            "small" => {
                let data = data.unwrap_or_else(|| DataSpec::FashionMnist("/usr/share/datasets/fashion-mnist".into()));
                Ok(Preset {
                    name: "small",
                    seeds: vec![0, 1],
                    search: SearchConfig {
                        step: StepConfig {
                            data: data.clone(),
                            c: 8,
                            layers: 5,
                            batch: 32,
                            // DARTS' 3e-4 barely moves α in 400 steps; the same
                            // raised rate for every method (see RESULTS.md).
                            arch_lr: 6e-3,
                            ..StepConfig::default()
                        },
                        epochs: 4,
                        steps_per_epoch: Some(100),
                        eval_images: Some(0),
                        ..SearchConfig::default()
                    },
                    train: TrainConfig {
                        data,
                        layers: 5,
                        overrides: RecipeOverrides { c: Some(8), epochs: Some(2), ..RecipeOverrides::default() },
                        ..TrainConfig::default()
                    },
                    finetune: None,
                    retrain: true,
                })
            }
            // The whole pipeline in about a minute on the embedded data: a
            // check that every job runs and resumes, not a comparison.
            "smoke" => {
                let data = data.unwrap_or(DataSpec::Embedded);
                Ok(Preset {
                    name: "smoke",
                    seeds: vec![0, 1],
                    search: SearchConfig {
                        step: StepConfig { data: data.clone(), c: 4, layers: 3, batch: 8, ..StepConfig::default() },
                        epochs: 1,
                        steps_per_epoch: Some(2),
                        eval_images: Some(0),
                        run: SearchConfig::default().run.quiet(),
                        ..SearchConfig::default()
                    },
                    train: TrainConfig {
                        data,
                        layers: 3,
                        overrides: RecipeOverrides {
                            c: Some(4),
                            batch: Some(16),
                            epochs: Some(1),
                            ..RecipeOverrides::default()
                        },
                        steps_per_epoch: Some(2),
                        eval_images: Some(100),
                        run: TrainConfig::for_space(SpaceKind::Darts).run.quiet(),
                        ..TrainConfig::default()
                    },
                    finetune: None,
                    retrain: true,
                })
            }
            "paper" => {
                let Some(data) = data else {
                    crate::bail!("--preset paper needs --data cifar10:DIR (CIFAR-10 in its binary version)");
                };
                Ok(Preset {
                    name: "paper",
                    seeds: vec![0, 1, 2, 3],
                    search: SearchConfig {
                        step: StepConfig { data: data.clone(), ..StepConfig::default() },
                        eval_images: Some(0),
                        ..SearchConfig::default()
                    },
                    train: TrainConfig { data, auxiliary: true, cutout: 16, ..TrainConfig::default() },
                    finetune: None,
                    retrain: true,
                })
            }
            other => crate::bail!("--preset {other}: expected small, paper or smoke"),
        }
    }
}
