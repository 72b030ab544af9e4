//! `saas-api`: serve (default), `migrate up|down|status|fresh`, `dev seed`.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    api::commands::run(&args).await
}
