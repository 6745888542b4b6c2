//! `hongfan` (or `hongfan serve`): listen, print where each page is, serve until a signal.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::Arc;

use super::Cli;
use crate::clock::SystemClock;
use crate::server::{Server, Settings, base_url};

pub async fn serve(cli: &Cli) -> anyhow::Result<()> {
    let settings = cli.settings();
    let listener = tokio::net::TcpListener::bind(cli.serve.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cli.serve.addr))?;
    let server = Server::open(settings.clone(), Arc::new(SystemClock)).await?;
    let url = base_url(listener.local_addr()?);
    let banner = banner(&url, &settings, &server);
    let metrics = match cli.serve.metrics_addr {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for metrics: {e}"))?,
        ),
        None => None,
    };
    if let Some(metrics) = &metrics {
        tracing::info!(url = %format!("{}/metrics", base_url(metrics.local_addr()?)), "metrics");
    }
    server
        .run(listener, metrics, shutdown_signal(), || {
            // For a person at a terminal; if nobody reads stdout, the server still serves.
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(banner.as_bytes()).and_then(|()| out.flush()) {
                tracing::warn!(error = %e, "cannot print the start banner");
            }
        })
        .await
}

/// What the server prints once it answers: the first line is `listening on <url>`.
fn banner(url: &str, settings: &Settings, server: &Server) -> String {
    let mut out = String::new();
    write_banner(&mut out, url, settings, server).expect("writing to a String cannot fail");
    out
}

fn write_banner(
    out: &mut String,
    url: &str,
    settings: &Settings,
    server: &Server,
) -> std::fmt::Result {
    writeln!(out, "listening on {url}")?;
    let office = server.app().hub.store().office();
    let names: Vec<&str> = office.office.communities.values().map(|c| c.name.as_str()).collect();
    let community = names.join("、");
    writeln!(out, "红帆 hongfan {} · {community}", env!("CARGO_PKG_VERSION"))?;
    writeln!(out, "  数据目录 data folder   {}", settings.data_dir.display())?;
    writeln!(out, "  首页     home          {url}/")?;
    writeln!(out, "  自助机   kiosk         {url}/kiosk")?;
    writeln!(out, "  工作台   board         {url}/board")?;
    writeln!(out, "  督办     audit         {url}/audit")?;
    writeln!(out, "  管理     admin         {url}/admin")?;
    if let Some(first) = &server.first_start {
        writeln!(
            out,
            "\n首次启动：以下账号只显示这一次，请记下。First start: shown only this once."
        )?;
        writeln!(
            out,
            "  书记账号 supervisor    {} / {}",
            first.supervisor_login, first.supervisor_password
        )?;
        for (kiosk, credential) in &first.kiosks {
            writeln!(
                out,
                "  {} 自助机 kiosk {}: {url}/kiosk#pair={credential}",
                kiosk.name, kiosk.id
            )?;
        }
    }
    Ok(())
}

/// Resolves at SIGINT or SIGTERM. The handlers are installed now, before the server says it
/// listens: a signal sent on that line stops the server in order instead of killing it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        let received = |kind: std::io::Result<tokio::signal::unix::Signal>| async move {
            match kind {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            () = received(interrupt) => {}
            () = received(terminate) => {}
        }
        tracing::info!("shutdown signal received");
    }
}
