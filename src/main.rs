//! The `rarts` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use rarts::Result;
use rarts::backend::{Cpu, Cuda, Device as _, cuda};
use rarts::data::{DataSpec, describe, spec::FORMS};
use rarts::genotype::Genotype;
use rarts::rundir::Existing;
use rarts::search::algo::{Algo, Schedule};
use rarts::search::config::{SearchConfig, need};
use rarts::search::toy::{self, ToyConfig};
use rarts::search::{bench, driver};
use rarts::shape::Shape;
use rarts::space::SpaceKind;
use rarts::space::eval::EvalNetConfig;
use rarts::space::nb201::{Nb201Cell, table};
use rarts::train::{self, TrainConfig};

#[global_allocator]
static ALLOC: rarts::hugealloc::HugeAlloc = rarts::hugealloc::HugeAlloc;

#[derive(Parser)]
#[command(name = "rarts", version, about = "Differentiable architecture search: RARTS and DARTS")]
struct Cli {
    /// Where to run: `auto` uses a CUDA GPU when one is usable, else the CPU.
    #[arg(long, value_enum, default_value_t = Device::Auto, global = true)]
    device: Device,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Device {
    Auto,
    Cpu,
    Cuda,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SpaceArg {
    Darts,
    Nb201,
    Width,
}

impl From<SpaceArg> for SpaceKind {
    fn from(a: SpaceArg) -> SpaceKind {
        match a {
            SpaceArg::Darts => SpaceKind::Darts,
            SpaceArg::Nb201 => SpaceKind::Nb201,
            SpaceArg::Width => SpaceKind::Width,
        }
    }
}

/// `rarts export --net`: a RARTS search's two networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum NetArg {
    W,
    Y,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum AlgoArg {
    Rarts,
    Darts1,
    Darts2,
}

impl From<AlgoArg> for Algo {
    fn from(a: AlgoArg) -> Algo {
        match a {
            AlgoArg::Rarts => Algo::Rarts,
            AlgoArg::Darts1 => Algo::Darts1,
            AlgoArg::Darts2 => Algo::Darts2,
        }
    }
}

impl From<Algo> for AlgoArg {
    fn from(a: Algo) -> AlgoArg {
        match a {
            Algo::Rarts => AlgoArg::Rarts,
            Algo::Darts1 => AlgoArg::Darts1,
            Algo::Darts2 => AlgoArg::Darts2,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ScheduleArg {
    Fused,
    Exact,
}

impl From<ScheduleArg> for Schedule {
    fn from(s: ScheduleArg) -> Schedule {
        match s {
            ScheduleArg::Fused => Schedule::Fused,
            ScheduleArg::Exact => Schedule::Exact,
        }
    }
}

impl From<Schedule> for ScheduleArg {
    fn from(s: Schedule) -> ScheduleArg {
        match s {
            Schedule::Fused => ScheduleArg::Fused,
            Schedule::Exact => ScheduleArg::Exact,
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Search the DARTS space; writes genotype.txt, genotype.json, log.jsonl
    /// and a checkpoint per epoch into --out.
    Search(SearchRunArgs),
    /// Trains the network a genotype names from scratch (DARTS' evaluation
    /// network and recipe); writes log.jsonl and a checkpoint per epoch.
    Train(TrainArgs),
    /// Top-1 and per-class accuracy of a trained model on a data set's test
    /// split (its training split where it has none).
    Eval {
        /// A `rarts train` folder or its model.safetensors, or a file in
        /// DARTS' layout (from `rarts export`, or from PyTorch: NetworkCIFAR's
        /// or the search Network's state_dict names, the latter with
        /// alphas_normal and alphas_reduce; its sizes are read from the
        /// tensors' shapes).
        #[arg(long)]
        model: PathBuf,
        /// For a file in DARTS' layout without a genotype in its metadata
        /// (any form `rarts train --genotype` takes).
        #[arg(long)]
        genotype: Option<String>,
        /// Also write each image's logits to this file, a JSON array per line.
        #[arg(long)]
        logits: Option<PathBuf>,
        #[arg(long, default_value = "embedded", help = data_help())]
        data: DataSpec,
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// A search network's file only: write the training-mode loss of
        /// the first --batch images (`loss`) and its gradient with respect
        /// to α and every weight, under DARTS' names, to this safetensors file.
        #[arg(long)]
        grads: Option<PathBuf>,
    },
    /// The solvable model of the specification; prints the final α.
    Toy(ToyArgs),
    /// Times each op family over a few search steps.
    Profile {
        #[command(flatten)]
        search: SearchArgs,
        /// Steps to time.
        #[arg(long, default_value_t = 3)]
        steps: usize,
    },
    /// Times whole search steps (median of --steps after a warm-up step) for
    /// each algorithm and batch size; one JSON line each, then a table.
    Bench {
        #[command(flatten)]
        search: SearchArgs,
        /// Algorithms to time (comma-separated); `--algo A` alone times A only.
        #[arg(long, value_enum, value_delimiter = ',', conflicts_with = "algo",
              default_values_t = [AlgoArg::Darts1, AlgoArg::Darts2, AlgoArg::Rarts])]
        algos: Vec<AlgoArg>,
        /// Batch sizes to time (comma-separated); `--batch B` alone times B only.
        #[arg(long, value_delimiter = ',', conflicts_with = "batch",
              default_values_t = [SearchConfig::default().batch])]
        batches: Vec<usize>,
        /// Timed steps per configuration.
        #[arg(long, default_value_t = 5)]
        steps: usize,
    },
    /// Times DARTS' retraining step of a genotype for each batch size (the
    /// counterpart of `darts_torch.py --train`): one JSON line each, then a table.
    BenchTrain {
        /// DARTS_V1, DARTS_V2, random:SEED, a search folder, …
        #[arg(long, default_value = "DARTS_V2")]
        genotype: String,
        #[arg(long, default_value_t = 16)]
        c: usize,
        #[arg(long, default_value_t = 8)]
        layers: usize,
        /// Image side.
        #[arg(long, default_value_t = 32)]
        hw: usize,
        /// Image channels.
        #[arg(long, default_value_t = 3)]
        in_ch: usize,
        #[arg(long, default_value_t = 10)]
        classes: usize,
        #[arg(long, value_delimiter = ',', default_values_t = [32, 96])]
        batches: Vec<usize>,
        /// Timed steps per batch size (after 3 warm-up steps).
        #[arg(long, default_value_t = 3)]
        steps: usize,
        /// DARTS' auxiliary head (needs --hw 32).
        #[arg(long)]
        auxiliary: bool,
        /// Also print the time per op family.
        #[arg(long)]
        profile: bool,
    },
    /// The paper's comparison: search with every method, retrain each
    /// genotype (and random cells), one table in --out/results.md. Every job
    /// resumes and is skipped once done.
    Compare {
        /// The search space: DARTS' cells, NAS-Bench-201's, or a ResNet's
        /// channel widths (searches beside uniform scaling and L1 pruning).
        #[arg(long, value_enum, default_value_t = SpaceArg::Darts)]
        space: SpaceArg,
        /// small: a 2-core CPU on Fashion-MNIST (darts ~3 h, nb201 ~2 h, width
        /// ~1 h); cifar-cpu (nb201): CIFAR-10 (--data) judged by the
        /// NAS-Bench-201 table, 3 seeds in about 75 min on 2 idle cores;
        /// paper: the published protocol on CIFAR-10 (a GPU); smoke: the
        /// whole pipeline in a minute on the embedded data.
        #[arg(long)]
        preset: String,
        /// Data set (small: Debian's Fashion-MNIST by default; paper: cifar10:DIR, required).
        #[arg(long)]
        data: Option<DataSpec>,
        #[arg(long)]
        out: Option<PathBuf>,
        /// NB201: judge every cell by this NAS-Bench-201 table (NATS-Bench's
        /// nats_bench.csv format; default: $RARTS_NB201_TABLE): its three
        /// accuracies per method, beside random cells, the table's best,
        /// median and mean, and DARTS' published result.
        #[arg(long)]
        nb201_table: Option<PathBuf>,
        /// NB201: retrain no cell; the table is the judge (the cifar-cpu and
        /// paper presets retrain none anyway).
        #[arg(long)]
        no_retrain: bool,
    },
    /// Writes a DARTS network as a safetensors file with quark0/darts'
    /// state_dict names and shapes, for PyTorch: a trained evaluation
    /// network (NetworkCIFAR) or one network of a search (model_search.py's
    /// Network, with alphas_normal and alphas_reduce).
    Export {
        /// A `rarts train` folder or its model.safetensors; a DARTS search
        /// folder or its checkpoint.bin; or a file in DARTS' layout, read into
        /// the network it describes and written again.
        #[arg(long)]
        model: PathBuf,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// A RARTS search: `w` (trained on the training half) or `y` (on the
        /// validation half). Default: w, a DARTS search's only network.
        #[arg(long, value_enum)]
        net: Option<NetArg>,
        /// For a file in DARTS' layout without a genotype in its metadata.
        #[arg(long)]
        genotype: Option<String>,
    },
    /// Writes DIR/report.html (one self-contained page with inline SVG) and
    /// its figures as SVG files beside it, for a search, train or compare
    /// folder: the architecture (a search: what α stands for now),
    /// softmax(α) per edge over time, losses, accuracies and the learning
    /// rate per epoch, a comparison's table and a dot plot of its test
    /// accuracies. A run that is going is read, not disturbed.
    Report {
        /// A search, train or compare --out folder.
        dir: PathBuf,
    },
    /// Looks an NB201 cell up in the NAS-Bench-201 table: its 200-epoch test
    /// accuracy on CIFAR-10, CIFAR-100 and ImageNet16-120, its rank and
    /// percentile on each.
    Lookup {
        /// An arch string `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`, an NB201
        /// search's --out folder (its cell; while it runs, the cell of its last
        /// epoch) or its genotype file, or random:SEED.
        cell: String,
        #[arg(long, help = TABLE_HELP)]
        nb201_table: Option<PathBuf>,
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Describes a data set.
    Info {
        #[arg(long, default_value = "embedded", help = data_help())]
        data: DataSpec,
    },
}

const TABLE_HELP: &str = "The NAS-Bench-201 table in the format of NATS-Bench's nats_bench.csv \
                          (default: $RARTS_NB201_TABLE)";

fn data_help() -> String {
    format!("Data set: {FORMS}")
}

#[derive(clap::Args, Clone)]
struct SearchArgs {
    #[arg(long, default_value_t = SearchConfig::default().data, help = data_help())]
    data: DataSpec,
    /// The search space: DARTS' cells; NAS-Bench-201's (`nb201`: --c is the
    /// first stage's channels, --cells-per-stage the cells of each of its
    /// three stages; --layers does not apply); or the channel widths of a
    /// CIFAR ResNet (`width`: --depth, --macs-target, --macs-weight).
    #[arg(long, value_enum, default_value_t = SpaceArg::Darts)]
    space: SpaceArg,
    /// NB201: cells per stage (5 in NATS-Bench).
    #[arg(long, default_value_t = SearchConfig::default().cells_per_stage)]
    cells_per_stage: usize,
    /// Width: the CIFAR ResNet's depth, 6n + 2 (20 or 56).
    #[arg(long, default_value_t = SearchConfig::default().depth)]
    depth: usize,
    /// Width: the multiply-add target as a fraction of the full network's.
    #[arg(long, default_value_t = SearchConfig::default().macs_target)]
    macs_target: f64,
    /// Width: μ, the weight of max(0, E[MACs]/target − 1) in α's loss.
    #[arg(long, default_value_t = SearchConfig::default().macs_weight)]
    macs_weight: f32,
    #[arg(long, value_enum, default_value_t = SearchConfig::default().algo.into())]
    algo: AlgoArg,
    /// RARTS: `fused` takes α's gradient from the weight passes (2 passes a
    /// step); `exact` recomputes it at the new weights (4).
    #[arg(long, value_enum, default_value_t = SearchConfig::default().schedule.into())]
    schedule: ScheduleArg,
    /// RARTS weight λ of the training loss.
    #[arg(long, default_value_t = SearchConfig::default().lambda)]
    lambda: f32,
    /// RARTS coupling β between the two networks.
    #[arg(long, default_value_t = SearchConfig::default().beta)]
    beta: f32,
    /// DARTS second order unrolling step ξ (default: the current weight lr).
    #[arg(long)]
    xi: Option<f32>,
    /// Initial channels C.
    #[arg(long, default_value_t = SearchConfig::default().c)]
    c: usize,
    /// Cells.
    #[arg(long, default_value_t = SearchConfig::default().layers)]
    layers: usize,
    #[arg(long, default_value_t = SearchConfig::default().batch)]
    batch: usize,
    /// Fraction of the training set that trains the weights; the rest trains α.
    #[arg(long, default_value_t = SearchConfig::default().train_portion)]
    train_portion: f64,
    #[arg(long, default_value_t = SearchConfig::default().lr)]
    lr: f32,
    #[arg(long, default_value_t = SearchConfig::default().momentum)]
    momentum: f32,
    #[arg(long, default_value_t = SearchConfig::default().weight_decay)]
    weight_decay: f32,
    /// Gradient-norm clip of the weights.
    #[arg(long, default_value_t = SearchConfig::default().clip)]
    clip: f32,
    #[arg(long, default_value_t = SearchConfig::default().arch_lr)]
    arch_lr: f32,
    #[arg(long, default_value_t = SearchConfig::default().arch_weight_decay)]
    arch_weight_decay: f32,
    #[arg(long, default_value_t = SearchConfig::default().seed)]
    seed: u64,
    /// CUDA only: replay each step's kernels as a CUDA graph (the first step
    /// runs as it comes, the second is captured). Off by default until it
    /// has run on a GPU.
    #[arg(long)]
    cuda_graph: bool,
}

/// What `rarts search` takes beyond a step's settings: the schedule of
/// epochs, what each epoch evaluates and logs, and its output folder.
#[derive(clap::Args, Clone)]
struct SearchRunArgs {
    #[command(flatten)]
    search: SearchArgs,
    #[arg(long, default_value_t = SearchConfig::default().epochs)]
    epochs: usize,
    /// Caps the steps of each epoch (short runs).
    #[arg(long)]
    steps_per_epoch: Option<usize>,
    /// The weights' learning rate at the end of the cosine schedule.
    #[arg(long, default_value_t = SearchConfig::default().lr_min)]
    lr_min: f32,
    /// Test images evaluated after each epoch (0: none; default 1000 where
    /// the data have a test split, else none).
    #[arg(long)]
    eval_images: Option<usize>,
    /// Steps between two samples of softmax(α) in alpha.jsonl (default:
    /// about 24 per epoch).
    #[arg(long)]
    alpha_every: Option<usize>,
    /// NB201: look the cell up after every epoch in this NAS-Bench-201 table
    /// (NATS-Bench's nats_bench.csv format; default: $RARTS_NB201_TABLE) and
    /// log its three accuracies. A judge, not a setting: it may be added
    /// when resuming.
    #[arg(long)]
    nb201_table: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

/// The output folder and what to do with one that holds a run.
#[derive(clap::Args, Clone)]
struct RunArgs {
    /// Output folder (default runs/search or runs/train).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue from --out/checkpoint.bin (a new run if --out has none yet).
    #[arg(long, conflicts_with = "force")]
    resume: bool,
    /// Remove the files an earlier run wrote into --out (and only those),
    /// then start anew.
    #[arg(long)]
    force: bool,
    /// No progress line on stderr.
    #[arg(long)]
    quiet: bool,
    /// Do not write --out/report.html and its figures after every epoch.
    #[arg(long)]
    no_report: bool,
}

impl RunArgs {
    fn out(&self, default: PathBuf) -> PathBuf {
        self.out.clone().unwrap_or(default)
    }

    fn existing(&self) -> Existing {
        match (self.resume, self.force) {
            (true, _) => Existing::Resume,
            (_, true) => Existing::Force,
            _ => Existing::Refuse,
        }
    }
}

#[derive(clap::Args)]
struct TrainArgs {
    #[arg(long, default_value_t = TrainConfig::default().data, help = data_help())]
    data: DataSpec,
    /// The space the architecture comes from; it picks the recipe that the
    /// flags below default to (darts: DARTS' CIFAR-10 recipe; nb201:
    /// NATS-Bench's; width: He et al.'s with a cosine schedule).
    #[arg(long, value_enum, default_value_t = SpaceArg::Darts)]
    space: SpaceArg,
    /// darts: a search's --out folder, its genotype.txt or genotype.json, an
    /// inline `Genotype(...)`, DARTS_V1, DARTS_V2, or random:SEED; nb201: an
    /// arch string `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`, a search's --out
    /// folder or its genotype file, or random:SEED; width (as --widths): a
    /// width search's --out folder or its genotype file, `full`,
    /// `uniform:FRACTION`, or `expected:DIR` (the widths nearest the
    /// expected ones, `widths_expected` of its genotype.json).
    #[arg(long, visible_alias = "widths")]
    genotype: String,
    /// width: the ResNet's depth, 6n + 2 [default: 20].
    #[arg(long)]
    depth: Option<usize>,
    /// Initial channels C [default: 36 (darts), 16 (nb201)].
    #[arg(long)]
    c: Option<usize>,
    /// darts: cells [default: 20].
    #[arg(long)]
    layers: Option<usize>,
    /// nb201: cells per stage [default: 5].
    #[arg(long)]
    cells_per_stage: Option<usize>,
    /// [default: 96 (darts), 256 (nb201)]
    #[arg(long)]
    batch: Option<usize>,
    /// [default: 600 (darts), 200 (nb201)]
    #[arg(long)]
    epochs: Option<usize>,
    /// Caps the steps of each epoch (short runs).
    #[arg(long)]
    steps_per_epoch: Option<usize>,
    /// Initial learning rate, cosine-annealed to 0 [default: 0.025 (darts), 0.1 (nb201)].
    #[arg(long)]
    lr: Option<f32>,
    /// [default: 0.9]
    #[arg(long)]
    momentum: Option<f32>,
    /// Nesterov momentum [default: false (darts), true (nb201)].
    #[arg(long)]
    nesterov: Option<bool>,
    /// [default: 3e-4 (darts), 5e-4 (nb201)]
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Gradient-norm clip, 0 for none [default: 5 (darts), 0 (nb201)].
    #[arg(long)]
    clip: Option<f32>,
    /// Side of the cutout square, 0 for none (DARTS uses 16 on CIFAR-10) [default: 0].
    #[arg(long)]
    cutout: Option<usize>,
    /// darts: drop-path probability at the last epoch (grows as p·epoch/epochs; 0: off) [default: 0.2].
    #[arg(long)]
    drop_path: Option<f32>,
    /// darts: DARTS' auxiliary head after cell 2L/3 (needs 32×32 inputs), loss weight 0.4.
    #[arg(long)]
    auxiliary: bool,
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    seed: u64,
    /// Test images evaluated after each epoch (default: all).
    #[arg(long)]
    eval_images: Option<usize>,
    /// Start from a trained model's weights (a `rarts train` folder or its
    /// model.safetensors) instead of random ones: the same network, or for
    /// width a wider one of the same depth, whose searchable convs keep the
    /// filters of largest L1 norm (Li et al. 2017's pruning; fine-tune it
    /// with a lower --lr); or for darts a file in DARTS' layout of the same
    /// genotype (from `rarts export`, or PyTorch's NetworkCIFAR state_dict).
    #[arg(long, visible_alias = "init")]
    init_from: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args)]
struct ToyArgs {
    #[arg(long, value_enum, default_value_t = AlgoArg::Rarts)]
    algo: AlgoArg,
    /// Weight c of the α² term of the validation loss.
    #[arg(long, default_value_t = 1.0)]
    c: f64,
    #[arg(long, default_value_t = 1.0)]
    lambda: f32,
    #[arg(long, default_value_t = 1.0)]
    beta: f32,
    /// DARTS second order unrolling step ξ.
    #[arg(long, default_value_t = 0.5)]
    xi: f32,
    /// RARTS: `fused` or `exact` (both reach the same fixed point).
    #[arg(long, value_enum, default_value_t = ScheduleArg::Fused)]
    schedule: ScheduleArg,
    /// Step size of every block.
    #[arg(long, default_value_t = 0.05)]
    lr: f32,
    #[arg(long, default_value_t = 20_000)]
    steps: usize,
}

/// A whole search's settings from the flags (the library checks them).
fn search_run_config(a: SearchRunArgs) -> SearchConfig {
    SearchConfig {
        epochs: a.epochs,
        steps_per_epoch: a.steps_per_epoch,
        lr_min: a.lr_min,
        eval_images: a.eval_images,
        alpha_every: a.alpha_every,
        out: a.run.out(SearchConfig::default().out),
        existing: a.run.existing(),
        progress: !a.run.quiet,
        report: !a.run.no_report,
        nb201_table: a.nb201_table,
        ..search_config(a.search)
    }
}

/// A step's settings from the flags (`profile`, `bench`: no epochs, no
/// output folder); the rest at their defaults.
fn search_config(a: SearchArgs) -> SearchConfig {
    SearchConfig {
        data: a.data,
        space: a.space.into(),
        cells_per_stage: a.cells_per_stage,
        depth: a.depth,
        macs_target: a.macs_target,
        macs_weight: a.macs_weight,
        algo: a.algo.into(),
        schedule: a.schedule.into(),
        lambda: a.lambda,
        beta: a.beta,
        xi: a.xi,
        c: a.c,
        layers: a.layers,
        batch: a.batch,
        train_portion: a.train_portion,
        lr: a.lr,
        momentum: a.momentum,
        weight_decay: a.weight_decay,
        clip: a.clip,
        arch_lr: a.arch_lr,
        arch_weight_decay: a.arch_weight_decay,
        seed: a.seed,
        cuda_graph: a.cuda_graph,
        side_by_side: true,
        ..SearchConfig::default()
    }
}

/// The backend `--device` names, resolved against what this machine has.
enum Target {
    Cpu,
    /// Device 0, known to be usable; each run opens it with `Cuda::new`.
    Cuda,
}

impl Target {
    fn open(d: Device) -> Result<Target> {
        match d {
            Device::Cpu => Ok(Target::Cpu),
            Device::Cuda => match cuda::unavailable_reason() {
                Some(why) => Err(rarts::Error(format!("--device cuda: no usable CUDA device: {why}"))),
                None => Ok(Target::Cuda),
            },
            Device::Auto => match cuda::unavailable_reason() {
                None => Ok(Target::Cuda),
                Some(why) => {
                    eprintln!("note: running on the CPU ({why}); --device cpu silences this");
                    Ok(Target::Cpu)
                }
            },
        }
    }

    fn name(&self) -> Result<String> {
        match self {
            Target::Cpu => Ok(Cpu::<f32>::new().name()),
            Target::Cuda => Ok(Cuda::new(0)?.name()),
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Export { model, out, net, genotype } => {
            let file = rarts::model::model_path(&model);
            rarts::rundir::check_output("--out", &out, &[("--model", &model), ("--model's file", &file)], &[])?;
            let net = net.map(|n| match n {
                NetArg::W => rarts::export::Net::W,
                NetArg::Y => rarts::export::Net::Y,
            });
            let n = rarts::export::export(&model, &out, net, genotype.as_deref())?;
            println!("{}: {n} tensors", out.display());
            Ok(())
        }
        Cmd::Lookup { cell, nb201_table, json } => {
            let Some(t) = table::from_flag(nb201_table.as_deref())? else {
                return Err(rarts::Error(format!(
                    "lookup: no table; expected --nb201-table FILE or {} naming NATS-Bench's nats_bench.csv",
                    table::ENV
                )));
            };
            let cell = Nb201Cell::from_source(&cell)?;
            print!("{}", table::lookup(&t, &cell, json));
            Ok(())
        }
        Cmd::Report { dir } => {
            let path = rarts::report::write(&dir)?;
            println!("{}", path.display());
            Ok(())
        }
        Cmd::Info { data } => {
            println!("device: {}", Target::open(cli.device)?.name()?);
            let split = data.load()?;
            println!("train: {}", describe(&split.train));
            if let Some(t) = split.test {
                println!("test: {}", describe(&t));
            }
            if let DataSpec::Folder(_) = data {
                println!(
                    "order: each split shuffled by a fixed permutation (seed {:#x}; the files are read sorted by class)",
                    rarts::data::folder::SHUFFLE_SEED
                );
                if let Some(dir) = rarts::data::folder::cache_dir() {
                    println!("decoded images cached in {} (RARTS_CACHE_DIR=none: no cache)", dir.display());
                }
            }
            Ok(())
        }
        Cmd::Toy(a) => {
            let cfg = ToyConfig {
                algo: a.algo.into(),
                schedule: a.schedule.into(),
                c: a.c,
                lambda: a.lambda,
                beta: a.beta,
                xi: a.xi,
                lr: a.lr,
                max_steps: a.steps,
                tol: 1e-12,
            };
            // The CPU runs the model in f64 (fixed point to 1e-9); the GPU
            // kernels are f32, which stops at the fixed point to about 1e-6.
            let (alpha, steps) = match Target::open(cli.device)? {
                Target::Cpu => toy::run(Cpu::<f64>::new(), &cfg)?,
                Target::Cuda => toy::run(Cuda::new(0)?, &cfg)?,
            };
            println!("algo={} steps={steps} closed_form={:.9}", cfg.algo.name(), toy::closed_form(&cfg));
            println!("alpha={alpha:.9}");
            if steps == cfg.max_steps {
                eprintln!(
                    "warning: no fixed point within --steps {steps} (the parameters still moved by more than {:e} a \
                     step); alpha is where the run stopped, not a limit",
                    cfg.tol
                );
            }
            Ok(())
        }
        Cmd::Bench { search, algos, batches, steps } => {
            let list = batches.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(",");
            need(
                !batches.is_empty() && batches.iter().all(|&b| b >= 1),
                "--batches",
                list,
                "batch sizes of at least 1",
            )?;
            let target = Target::open(cli.device)?;
            let device = target.name()?;
            let mut rows = Vec::new();
            for &batch in &batches {
                for &algo in &algos {
                    let cfg = search_config(SearchArgs { algo, batch, ..search.clone() });
                    let t = match &target {
                        Target::Cpu => bench::bench(Cpu::<f32>::new(), &cfg, steps)?,
                        Target::Cuda => bench::bench(Cuda::new(0)?, &cfg, steps)?,
                    };
                    let name = Algo::from(algo).name();
                    println!(
                        "{{\"algo\":\"{name}\",\"batch\":{batch},\"ms_per_step\":{:.2},\"min_ms\":{:.2},\"img_per_s\":{:.1},\"weights\":{},\"device\":\"{device}\"}}",
                        t.median_s * 1e3,
                        t.min_s * 1e3,
                        t.images as f64 / t.median_s,
                        t.weights
                    );
                    rows.push((name, batch, t));
                }
            }
            println!("device: {device}");
            println!("{:<8} {:>6} {:>12} {:>10}", "algo", "batch", "ms/step", "images/s");
            for (name, batch, t) in rows {
                println!("{name:<8} {batch:>6} {:>12.2} {:>10.1}", t.median_s * 1e3, t.images as f64 / t.median_s);
            }
            Ok(())
        }
        Cmd::Profile { search, steps } => {
            let cfg = search_config(search);
            let (prof, cuda) = match Target::open(cli.device)? {
                Target::Cpu => (bench::profile(Cpu::<f32>::new(), &cfg, steps)?, false),
                Target::Cuda => (bench::profile(Cuda::new(0)?, &cfg, steps)?, true),
            };
            print!("{}", bench::profile_table(&prof.ops, steps, prof.step_s));
            print!("{}", bench::counts_line(&prof, steps, cuda));
            Ok(())
        }
        Cmd::Train(a) => {
            let r = TrainConfig::recipe(a.space.into());
            let cfg = TrainConfig {
                data: a.data,
                genotype: a.genotype,
                c: a.c.unwrap_or(r.c),
                layers: a.layers.unwrap_or(r.layers),
                cells_per_stage: a.cells_per_stage.unwrap_or(r.cells_per_stage),
                depth: a.depth.unwrap_or(r.depth),
                batch: a.batch.unwrap_or(r.batch),
                epochs: a.epochs.unwrap_or(r.epochs),
                lr: a.lr.unwrap_or(r.lr),
                momentum: a.momentum.unwrap_or(r.momentum),
                nesterov: a.nesterov.unwrap_or(r.nesterov),
                weight_decay: a.weight_decay.unwrap_or(r.weight_decay),
                clip: a.clip.unwrap_or(r.clip),
                cutout: a.cutout.unwrap_or(r.cutout),
                drop_path: a.drop_path.unwrap_or(r.drop_path),
                auxiliary: a.auxiliary,
                seed: a.seed,
                steps_per_epoch: a.steps_per_epoch,
                eval_images: a.eval_images,
                init_from: a.init_from,
                out: a.run.out(r.out.clone()),
                existing: a.run.existing(),
                progress: !a.run.quiet,
                report: !a.run.no_report,
                ..r
            };
            let res = match Target::open(cli.device)? {
                Target::Cpu => train::run(Cpu::<f32>::new(), &cfg)?,
                Target::Cuda => train::run(Cuda::new(0)?, &cfg)?,
            };
            if let Some(last) = res.epochs.last().and_then(|e| e.test.as_ref()) {
                println!("test accuracy: {:.4} ({} images)", last.accuracy(), last.seen());
            }
            Ok(())
        }
        Cmd::BenchTrain { genotype, c, layers, hw, in_ch, classes, batches, steps, auxiliary, profile } => {
            need(batches.iter().all(|&b| b >= 1), "--batches", format!("{batches:?}"), "batch sizes of at least 1")?;
            let genotype = Genotype::from_source(&genotype).map_err(|e| rarts::Error(format!("--genotype: {e}")))?;
            let net =
                EvalNetConfig { drop_path: true, auxiliary, ..EvalNetConfig::new(c, layers, classes, in_ch, genotype) };
            let target = Target::open(cli.device)?;
            let device = target.name()?;
            let image = Shape::nchw(1, in_ch, hw, hw);
            let mut rows = Vec::new();
            for &batch in &batches {
                let t = match &target {
                    Target::Cpu => train::bench(Cpu::<f32>::new(), &net, batch, image, steps, profile)?,
                    Target::Cuda => train::bench(Cuda::new(0)?, &net, batch, image, steps, profile)?,
                };
                println!(
                    "{{\"batch\":{batch},\"ms_per_step\":{:.2},\"img_per_s\":{:.1},\"weights\":{},\"device\":\"{device}\"}}",
                    t.median_s * 1e3,
                    batch as f64 / t.median_s,
                    t.weights
                );
                if let Some(p) = &t.profile {
                    print!("{}", bench::profile_table(p, steps, t.median_s));
                }
                rows.push((batch, t.median_s));
            }
            println!("device: {device}");
            println!("{:>6} {:>12} {:>10}", "batch", "ms/step", "images/s");
            for (batch, s) in rows {
                println!("{batch:>6} {:>12.2} {:>10.1}", s * 1e3, batch as f64 / s);
            }
            Ok(())
        }
        Cmd::Compare { space, preset, data, out, nb201_table, no_retrain } => {
            let mut p = rarts::compare::Preset::of(space.into(), &preset, data)?;
            let nb201 = space == SpaceArg::Nb201;
            if !nb201 && (nb201_table.is_some() || no_retrain) {
                let flag = if no_retrain { "--no-retrain" } else { "--nb201-table" };
                return Err(rarts::Error(format!("{flag}: applies to --space nb201 only")));
            }
            p.retrain &= !no_retrain;
            let table = if nb201 { table::from_flag(nb201_table.as_deref())? } else { None };
            let out = out.unwrap_or_else(|| rarts::compare::default_out(space.into(), p.name));
            let text = match Target::open(cli.device)? {
                Target::Cpu => rarts::compare::run(|| Ok(Cpu::<f32>::new()), &p, &out, table.as_ref())?,
                Target::Cuda => rarts::compare::run(|| Cuda::new(0), &p, &out, table.as_ref())?,
            };
            print!("{text}");
            Ok(())
        }
        Cmd::Eval { model, genotype, logits, data, batch, grads } => {
            for (flag, out) in [("--logits", &logits), ("--grads", &grads)] {
                if let Some(out) = out {
                    let file = rarts::model::model_path(&model);
                    let inputs = [("the model", model.as_path()), ("--model's file", file.as_path())];
                    let data: Vec<(&str, &std::path::Path)> =
                        data.path().map(|p| ("the --data", p)).into_iter().collect();
                    rarts::rundir::check_output(flag, out, &inputs, &data)?;
                }
            }
            let (g, gr) = (genotype.as_deref(), grads.as_deref());
            let e = match Target::open(cli.device)? {
                Target::Cpu => train::evaluate(Cpu::<f32>::new(), &model, g, &data, batch, gr)?,
                Target::Cuda => train::evaluate(Cuda::new(0)?, &model, g, &data, batch, gr)?,
            };
            let (split, classes, scores) = (e.split, e.classes, e.scores);
            println!("model: {} ({}, {} epochs)", model.display(), e.size, e.epochs.as_deref().unwrap_or("?"));
            println!("genotype: {}", rarts::error::printable(&e.arch));
            println!("data: {data} ({split} split, {} images)", scores.seen());
            println!("{:<14} {:>8} {:>8} {:>9}", "class", "correct", "images", "accuracy");
            for (name, (hit, n)) in classes.iter().zip(&scores.per_class) {
                let name = rarts::error::printable(name);
                println!("{name:<14} {hit:>8} {n:>8} {:>9.4}", *hit as f64 / (*n).max(1) as f64);
            }
            println!("loss: {:.4}", scores.loss);
            println!("top-1: {:.4}", scores.accuracy());
            if let Some(path) = logits {
                let text: String = scores
                    .logits
                    .iter()
                    .map(|r| format!("[{}]\n", r.iter().map(|v| format!("{v:e}")).collect::<Vec<_>>().join(",")))
                    .collect();
                rarts::rundir::write_atomic(&path, text.as_bytes())
                    .map_err(|e| rarts::Error(format!("--logits {}: {}", path.display(), e.0)))?;
            }
            Ok(())
        }
        Cmd::Search(a) => {
            let cfg = search_run_config(a);
            let res = match Target::open(cli.device)? {
                Target::Cpu => driver::run(Cpu::<f32>::new(), &cfg)?,
                Target::Cuda => driver::run(Cuda::new(0)?, &cfg)?,
            };
            println!("genotype: {}", res.found.text);
            if let Some(w) = &res.found.warning {
                eprintln!("warning: {w}");
            }
            print!("{}", res.closing(&cfg));
            if let Some(w) = res.alpha_warning(&cfg) {
                eprintln!("warning: {w}");
            }
            Ok(())
        }
    }
}

/// Restores the default action of SIGPIPE, which the Rust runtime ignores:
/// `rarts info | head` then ends quietly instead of panicking in `println!`.
#[cfg(unix)]
fn default_sigpipe() {
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    unsafe extern "C" {
        fn signal(sig: i32, handler: usize) -> usize;
    }
    // SAFETY: `signal` from libc with a valid signal number and SIG_DFL,
    // called before any other thread exists.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

#[cfg(not(unix))]
fn default_sigpipe() {}

fn main() -> ExitCode {
    default_sigpipe();
    // `--lr -0.1` reads -0.1 as the value (and is refused as negative by the
    // flag's own check), not as an unknown flag `-0`.
    let matches = Cli::command()
        .mut_subcommands(|sc| sc.mut_args(|a| if a.is_positional() { a } else { a.allow_negative_numbers(true) }))
        .get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // `bench` times the lists --algos and --batches; a single --algo or
    // --batch given instead (clap rejects both at once) narrows its list.
    if let (Cmd::Bench { search, algos, batches, .. }, Some(m)) = (&mut cli.cmd, matches.subcommand_matches("bench")) {
        let given = |id: &str| m.value_source(id) == Some(ValueSource::CommandLine);
        if given("algo") {
            *algos = vec![search.algo];
        }
        if given("batch") {
            *batches = vec![search.batch];
        }
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", rarts::error::printable(&e.0));
            ExitCode::FAILURE
        }
    }
}
