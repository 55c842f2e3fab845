//! `rarts report`: DIR/report.html and its figures for a run folder.

use std::path::PathBuf;

use rarts::Result;

#[derive(clap::Args)]
pub(super) struct ReportArgs {
    /// A search, train, compare or sweep --out folder.
    dir: PathBuf,
    /// A sweep: the number drawn (default: the toy's alpha, a search's
    /// alpha_spread, a training's acc_test; any column of its results.csv).
    #[arg(long)]
    metric: Option<String>,
    /// A sweep: the grid flag along x (default: the first).
    #[arg(long, value_name = "FLAG")]
    x: Option<String>,
    /// A sweep: a line per value of this grid flag (default: the second).
    #[arg(long, value_name = "FLAG")]
    by: Option<String>,
    /// A sweep: a heat map of --x and --by instead of lines.
    #[arg(long)]
    heat_map: bool,
}

pub(super) fn command(a: ReportArgs) -> Result<()> {
    let ReportArgs { dir, metric, x, by, heat_map } = a;
    let path = rarts::report::write_with(&dir, &rarts::report::SweepView { metric, x, by, heat_map })?;
    println!("{}", path.display());
    Ok(())
}
