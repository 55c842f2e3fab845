//! The `rarts` command line: `Cli`, one file per subcommand (its flags and
//! what it does), and the one place where `--device` becomes a backend
//! (`with_backend!`).

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use rarts::Result;
use rarts::backend::{Cpu, Cuda, Device as _, cuda};

/// Evaluates `$body` with `$make`, a function that opens the backend
/// `$target` names (`Cpu<$elem>`, or CUDA device 0): the command line's one
/// backend dispatch.
macro_rules! with_backend {
    ($target:expr, $elem:ty, |$make:ident| $body:expr) => {
        match $target {
            Target::Cpu => {
                let $make = || -> rarts::Result<rarts::backend::Cpu<$elem>> { Ok(rarts::backend::Cpu::<$elem>::new()) };
                $body
            }
            Target::Cuda => {
                let $make = || rarts::backend::Cuda::new(0);
                $body
            }
        }
    };
}

mod bench;
mod bench_train;
mod compare;
mod eval;
mod export;
mod info;
mod lookup;
mod profile;
mod report;
mod search;
mod sweep;
mod toy;
mod train;

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

#[derive(Subcommand)]
enum Cmd {
    /// Searches the space --space names (DARTS' cells, NAS-Bench-201's cell
    /// or a ResNet's widths); writes genotype.txt, genotype.json, log.jsonl
    /// and a checkpoint per epoch into --out.
    Search(search::SearchRunArgs),
    /// Trains the network a genotype names from scratch (DARTS' evaluation
    /// network and recipe); writes log.jsonl and a checkpoint per epoch.
    Train(train::TrainArgs),
    /// Top-1 and per-class accuracy of a trained model on a data set's test
    /// split (its training split where it has none).
    Eval(eval::EvalArgs),
    /// The solvable model of the specification; prints the final α.
    Toy(toy::ToyArgs),
    /// Times each op family over a few search steps.
    Profile(profile::ProfileArgs),
    /// Times whole search steps (median of --steps after a warm-up step) for
    /// each algorithm and batch size; one JSON line each, then a table.
    Bench(bench::BenchArgs),
    /// Times DARTS' retraining step of a genotype for each batch size (the
    /// counterpart of `darts_torch.py --train`): one JSON line each, then a table.
    BenchTrain(bench_train::BenchTrainArgs),
    /// The paper's comparison: search with every method, retrain each
    /// genotype (and random cells), one table in --out/results.md. Every job
    /// resumes and is skipped once done.
    Compare(compare::CompareArgs),
    /// One command (toy, search or train) over a grid of flag values and
    /// seeds: a folder per point, each resumed and skipped once done, and
    /// one table (--out/results.md, results.csv). `rarts report` draws it.
    #[command(trailing_var_arg = true)]
    Sweep(sweep::SweepArgs),
    /// Writes a DARTS network as a safetensors file with quark0/darts'
    /// state_dict names and shapes, for PyTorch: a trained evaluation
    /// network (NetworkCIFAR) or one network of a search (model_search.py's
    /// Network, with alphas_normal and alphas_reduce).
    Export(export::ExportArgs),
    /// Writes DIR/report.html (one self-contained page with inline SVG) and
    /// its figures as SVG files beside it, for a search, train or compare
    /// folder: the architecture (a search: what α stands for now),
    /// softmax(α) per edge over time, losses, accuracies and the learning
    /// rate per epoch, a comparison's table and a dot plot of its test
    /// accuracies. A run that is going is read, not disturbed.
    Report(report::ReportArgs),
    /// Looks an NB201 cell up in the NAS-Bench-201 table: its 200-epoch test
    /// accuracy on CIFAR-10, CIFAR-100 and ImageNet16-120, its rank and
    /// percentile on each.
    Lookup(lookup::LookupArgs),
    /// Describes a data set.
    Info(info::InfoArgs),
}

const TABLE_HELP: &str = "The NAS-Bench-201 table in the format of NATS-Bench's nats_bench.csv \
                          (default: $RARTS_NB201_TABLE)";

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
    let target = || Target::open(cli.device);
    match cli.cmd {
        Cmd::Search(a) => search::command(a, target()?),
        Cmd::Train(a) => train::command(a, target()?),
        Cmd::Eval(a) => eval::command(a, target()?),
        Cmd::Toy(a) => toy::command(a, target()?),
        Cmd::Profile(a) => profile::command(a, target()?),
        Cmd::Bench(a) => bench::command(a, target()?),
        Cmd::BenchTrain(a) => bench_train::command(a, target()?),
        Cmd::Compare(a) => {
            let device = cli.device.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
            compare::command(a, &device, target)
        }
        Cmd::Info(a) => info::command(a, target()?),
        Cmd::Sweep(a) => {
            let device = cli.device.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
            sweep::command(a, &device)
        }
        Cmd::Export(a) => export::command(a),
        Cmd::Report(a) => report::command(a),
        Cmd::Lookup(a) => lookup::command(a),
    }
}

/// The command line, with `--lr -0.1` read as a value (and refused as
/// negative by the flag's own check), not as an unknown flag `-0`.
fn command_line() -> clap::Command {
    Cli::command()
        .mut_subcommands(|sc| sc.mut_args(|a| if a.is_positional() { a } else { a.allow_negative_numbers(true) }))
}

/// `rarts ARGS` parsed; clap's own message for a bad flag as the error.
fn parse_args(args: &[String]) -> Result<Cli> {
    let argv = std::iter::once("rarts".to_string()).chain(args.iter().cloned());
    let matches =
        command_line().try_get_matches_from(argv).map_err(|e| rarts::Error(e.to_string().trim().to_string()))?;
    Cli::from_arg_matches(&matches).map_err(|e| rarts::Error(e.to_string()))
}

/// Runs `rarts ARGS` in this process (a sweep's point).
fn run_args(args: &[String]) -> Result<()> {
    run(parse_args(args)?)
}

pub fn main() -> ExitCode {
    rarts::signals::default_sigpipe();
    let matches = command_line().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // `bench` times the lists --algos and --batches; a single --algo or
    // --batch given instead (clap rejects both at once) narrows its list.
    if let (Cmd::Bench(b), Some(m)) = (&mut cli.cmd, matches.subcommand_matches("bench")) {
        let given = |id: &str| m.value_source(id) == Some(ValueSource::CommandLine);
        if given("algo") {
            b.algos = vec![b.step.algo];
        }
        if given("batch") {
            b.batches = vec![b.step.batch];
        }
    }
    // A run stops on SIGTERM, SIGINT or SIGUSR1 after the step under way,
    // with its checkpoint written (see `rarts::signals`).
    if matches!(cli.cmd, Cmd::Search(_) | Cmd::Train(_) | Cmd::Compare(_) | Cmd::Sweep(_)) {
        rarts::signals::catch();
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if rarts::signals::checkpointed() => {
            eprintln!("\n{}", rarts::error::printable(&e.0));
            ExitCode::from(rarts::signals::EXIT_CHECKPOINTED as u8)
        }
        Err(e) => {
            eprintln!("error: {}", rarts::error::printable(&e.0));
            ExitCode::FAILURE
        }
    }
}
