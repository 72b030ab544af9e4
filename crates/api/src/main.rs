//! `saas-api`: serve (default), `migrate …`, `dev seed`, `healthcheck`.

use std::process::ExitCode;

/// mimalloc instead of the system allocator: a request allocates and frees
/// many small buffers on two worker threads, which glibc's malloc serves
/// measurably slower (see docs/performance.md). Built with `no_thp`, so it
/// does not ask for transparent huge pages, which would add megabytes of
/// resident memory to an idle server.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    api::commands::run(&args).await
}
