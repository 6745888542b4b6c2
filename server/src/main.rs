//! The `hongfan` binary. Everything it does is in the library (`hongfan::cli::main`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    hongfan::cli::main().await
}
