//! The `hongfan` binary: parses the command line and hands over to the library.

use std::io::Write;
use std::sync::Arc;

use clap::Parser;
use hongfan::cli::{Cli, Command, LogFormat};
use hongfan::server::{Server, base_url};
use hongfan::SystemClock;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr; stdout carries only what the operator asked for.
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.serve.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    match &cli.command {
        None | Some(Command::Serve) => serve(&cli).await,
        Some(command) => hongfan::cli::manage(&cli.data, command, &mut std::io::stdout()).await,
    }
}

async fn serve(cli: &Cli) -> anyhow::Result<()> {
    let settings = cli.settings();
    let listener = tokio::net::TcpListener::bind(cli.serve.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cli.serve.addr))?;
    let server = Server::open(settings.clone(), Arc::new(SystemClock)).await?;
    let url = base_url(listener.local_addr()?);
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {url}")?;
    writeln!(out, "红帆 hongfan {} · {}", env!("CARGO_PKG_VERSION"), server.app().hub.store().community().name)?;
    writeln!(out, "  数据目录 data folder   {}", settings.data_dir.display())?;
    writeln!(out, "  首页     home          {url}/")?;
    writeln!(out, "  自助机   kiosk         {url}/kiosk")?;
    writeln!(out, "  工作台   board         {url}/board")?;
    writeln!(out, "  督办     audit         {url}/audit")?;
    if let Some(first) = &server.first_start {
        writeln!(out, "\n首次启动：以下账号只显示这一次，请记下。First start: shown only this once.")?;
        writeln!(out, "  书记账号 supervisor    {} / {}", first.supervisor_login, first.supervisor_password)?;
        for (kiosk, credential) in &first.kiosks {
            writeln!(out, "  {} 自助机 kiosk {}: {url}/kiosk#pair={credential}", kiosk.name, kiosk.id)?;
        }
    }
    out.flush()?;
    drop(out);
    server.run(listener, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received");
}
