//! `rarts lookup`: an NB201 cell in the NAS-Bench-201 table.

use std::path::PathBuf;

use rarts::Result;
use rarts::space::nb201::{Nb201Cell, table};

use super::TABLE_HELP;

#[derive(clap::Args)]
pub(super) struct LookupArgs {
    /// An arch string `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`, an NB201
    /// search's --out folder (its cell; while it runs, the cell of its last
    /// epoch) or its genotype file, or random:SEED.
    cell: String,
    #[arg(long, help = TABLE_HELP)]
    nb201_table: Option<PathBuf>,
    /// One JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

pub(super) fn command(a: LookupArgs) -> Result<()> {
    let LookupArgs { cell, nb201_table, json } = a;
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
