//! `harness profiles`: the catalog, each profile with the seed it comes from.

use super::args::CatalogArgs;
use crate::errors::Error;
use crate::profile::Catalog;
use crate::run::Verdict;

pub fn run(args: &CatalogArgs) -> Result<Verdict, Error> {
    let catalog = Catalog::with_dir(args.profiles_dir.as_deref())?;
    for p in catalog.profiles() {
        let opt = if p.opt_in { " (opt-in)" } else { "" };
        println!(
            "{}{opt}\n  seed: {} ({})\n  {}",
            p.name, p.source.seed, p.source.section, p.description
        );
    }
    Ok(Verdict::Passed)
}
