//! `hongfan backup`, `restore` and `verify`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use super::DataArgs;
use super::operator::Operator;
use crate::clock::SystemClock;
use crate::store::{Store, StoreOptions};

/// Backs up the data folder: through the running server when there is one (sled lets only one
/// process open the folder), else directly. Only a complete backup takes the file's name.
pub async fn backup(data: &DataArgs, file: &Path) -> anyhow::Result<()> {
    let partial = file.with_extension("partial");
    let carried = match Operator::find(&data.data_dir).await? {
        Some(server) => {
            server.backup(&partial).await?;
            None
        }
        None => {
            let community = crate::config::load(data.config.as_deref())?.into();
            let store = Store::open(
                &data.data_dir,
                community,
                Arc::new(SystemClock),
                StoreOptions::default(),
            )?;
            let mut out = std::io::BufWriter::new(std::fs::File::create(&partial)?);
            let carried = store.backup(&mut out)?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            store.close().await?;
            Some(carried)
        }
    };
    crate::durable::rename(&partial, file)?;
    let mut out = std::io::stdout();
    match carried {
        Some(c) => writeln!(
            out,
            "backed up {} events, {} changes to the office, {} session records and {} attachments to {}",
            c.events,
            c.office,
            c.records,
            c.attachments,
            file.display()
        )?,
        None => writeln!(out, "backed up the running server to {}", file.display())?,
    }
    Ok(())
}

/// Restores a backup file into a new, empty data folder.
pub fn restore(data: &DataArgs, file: &Path) -> anyhow::Result<()> {
    let input = std::io::BufReader::new(std::fs::File::open(file)?);
    let carried = crate::store::backup::restore(input, &data.data_dir)?;
    writeln!(
        std::io::stdout(),
        "restored {} events ({} incidents), {} changes to the office, {} session records and {} attachments into {}",
        carried.events,
        carried.incidents,
        carried.office,
        carried.records,
        carried.attachments,
        data.data_dir.display()
    )?;
    Ok(())
}

/// Checks a stopped server's data folder; fails on any problem.
pub fn verify(data: &DataArgs) -> anyhow::Result<()> {
    let report = crate::store::backup::verify(&data.data_dir)?;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "checked {} events, {} incident states, {} changes to the office and {} attachments in {}",
        report.events,
        report.incidents,
        report.office,
        report.attachments,
        data.data_dir.display()
    )?;
    if let Some(reason) = &report.rebuilt {
        writeln!(
            out,
            "note: sled's files cannot be read as they are ({reason}); checked as rebuilt from the event log, which the server does at its start (or `hongfan repair`)"
        )?;
    }
    if report.problems.is_empty() {
        writeln!(
            out,
            "ok: the logs have no gap, every state matches the log and every attachment is whole"
        )?;
        return Ok(());
    }
    for problem in &report.problems {
        writeln!(out, "problem: {problem}")?;
    }
    anyhow::bail!(
        "{} problem(s) found in {}; if only sled's files are wrong, `hongfan repair` rebuilds them from the event log",
        report.problems.len(),
        data.data_dir.display()
    )
}

/// Rebuilds a stopped server's sled files from the event log.
pub async fn repair(data: &DataArgs) -> anyhow::Result<()> {
    if Operator::find(&data.data_dir).await?.is_some() {
        anyhow::bail!(
            "a server is running on {}: stop it first (it rebuilds a damaged store by itself at start)",
            data.data_dir.display()
        );
    }
    let repaired = crate::store::backup::repair(&data.data_dir)?;
    writeln!(
        std::io::stdout(),
        "rebuilt the store of {} from its event log: {} events, {} incidents; the old files are in {}",
        data.data_dir.display(),
        repaired.events,
        repaired.incidents,
        repaired.aside.display()
    )?;
    Ok(())
}
