//! `rarts compare`: the paper's comparison of the methods.

use std::path::PathBuf;

use rarts::Result;
use rarts::data::DataSpec;
use rarts::space::SpaceKind;
use rarts::space::nb201::table;

use super::Target;

#[derive(clap::Args)]
pub(super) struct CompareArgs {
    /// The search space: DARTS' cells, NAS-Bench-201's, or a ResNet's
    /// channel widths (searches beside uniform scaling and L1 pruning).
    #[arg(long, value_enum, default_value_t = SpaceKind::Darts)]
    space: SpaceKind,
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
}

pub(super) fn command(a: CompareArgs, target: Target) -> Result<()> {
    let CompareArgs { space, preset, data, out, nb201_table, no_retrain } = a;
    let mut p = rarts::compare::Preset::of(space, &preset, data)?;
    let nb201 = space == SpaceKind::Nb201;
    if !nb201 && (nb201_table.is_some() || no_retrain) {
        let flag = if no_retrain { "--no-retrain" } else { "--nb201-table" };
        return Err(rarts::Error(format!("{flag}: applies to --space nb201 only")));
    }
    p.retrain &= !no_retrain;
    let table = if nb201 { table::from_flag(nb201_table.as_deref())? } else { None };
    let out = out.unwrap_or_else(|| rarts::compare::default_out(space, p.name));
    let text = with_backend!(target, f32, |make| rarts::compare::compare(make, &p, &out, table.as_ref())?);
    print!("{text}");
    Ok(())
}
