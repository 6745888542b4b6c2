//! A child process for the crash test: writes reports from many tasks at once and prints
//! `ack <request id> <incident id>` for each one the store acknowledged, until it is killed.

use std::io::Write;
use std::sync::Arc;

use hongfan::store::StoreOptions;
use hongfan::{Store, SystemClock};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or_else(|| anyhow::anyhow!("usage: crash_writer <data dir> <tag>"))?;
    let tag = args.next().unwrap_or_default();
    let store = Store::open(
        std::path::Path::new(&dir),
        hongfan_tests::seed(),
        Arc::new(SystemClock),
        StoreOptions::default(),
    )?;
    let stdout = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let writers = (0..16).map(|w| {
        let (store, stdout, tag) = (store.clone(), stdout.clone(), tag.clone());
        tokio::spawn(async move {
            for n in 0.. {
                let request = format!("{tag}-{w}-{n}");
                let compound = ["c1", "c2", "c3"][n % 3];
                let report = hongfan_tests::report(compound, &request);
                let reported =
                    store.report(&hongfan_tests::kiosk(compound), &request, report).await?;
                let mut out = stdout.lock().map_err(|_| anyhow::anyhow!("stdout lock"))?;
                writeln!(out, "ack {request} {}", reported.incident.id.0)?;
                out.flush()?;
            }
            anyhow::Ok(())
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer.await??;
    }
    Ok(())
}
