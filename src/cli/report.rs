//! `rarts report`: DIR/report.html and its figures for a run folder.

use std::path::PathBuf;

use rarts::Result;

#[derive(clap::Args)]
pub(super) struct ReportArgs {
    /// A search, train or compare --out folder.
    dir: PathBuf,
}

pub(super) fn command(a: ReportArgs) -> Result<()> {
    let ReportArgs { dir } = a;
    let path = rarts::report::write(&dir)?;
    println!("{}", path.display());
    Ok(())
}
