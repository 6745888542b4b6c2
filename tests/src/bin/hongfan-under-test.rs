//! The `hongfan` binary, built inside this package so the tests can start it as a process.
//! Both binaries are the one line calling `hongfan::cli::main`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    hongfan::cli::main().await
}
