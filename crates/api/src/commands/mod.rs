//! The `saas-api` command line: `serve` (default), `migrate …`, `dev seed`,
//! `healthcheck`, `openapi`, `generate resource`.

pub mod dev_seed;
pub mod generate;
pub mod healthcheck;
pub mod migrate;

use std::process::ExitCode;

use crate::settings::Settings;
use crate::startup::Application;

const USAGE: &str = "usage: saas-api [serve | migrate up|down|status|fresh | dev seed | healthcheck | openapi | generate resource NAME field:type… | --version]";

/// Whether `words` name a command that needs the configuration. Checked
/// before the configuration is read, so a typo is a usage line (exit 2),
/// not a configuration report.
fn known(words: &[&str]) -> bool {
    matches!(
        words,
        [] | ["serve"] | ["migrate", "up" | "down" | "status" | "fresh"] | ["dev", "seed"]
    )
}

/// Runs the command named by `args` (without the program name).
pub async fn run(args: &[String]) -> ExitCode {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    if matches!(words.as_slice(), ["help" | "--help" | "-h"]) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if matches!(words.as_slice(), ["--version" | "-V" | "version"]) {
        println!("saas-api {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if matches!(words.as_slice(), ["openapi"]) {
        // The document is generated from the code: no settings, no database.
        return match crate::docs::openapi_json() {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("could not render the OpenAPI document: {error}");
                ExitCode::FAILURE
            }
        };
    }
    if let ["generate", rest @ ..] = words.as_slice() {
        // Writes source files: no settings, no database.
        return generate::run(rest);
    }
    if matches!(words.as_slice(), ["healthcheck"]) {
        // Needs only the port, and must stay quiet and quick.
        let _ = dotenvy::dotenv();
        let port = std::env::var("PORT")
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(8000);
        return match healthcheck::check(port) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("unhealthy: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    if !known(&words) {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    // `_log` lives until the command returns; dropping it writes out queued lines.
    let (settings, mut log) = match Settings::from_env() {
        Ok((settings, report)) => {
            // Traces are exported only while serving.
            let otel = settings
                .telemetry
                .otel
                .as_ref()
                .filter(|_| matches!(words.as_slice(), [] | ["serve"]));
            let log = crate::telemetry::init(settings.telemetry.log_format, otel);
            for warning in &report.warnings {
                tracing::warn!("configuration: {warning}");
            }
            (settings, log)
        }
        Err(report) => {
            eprintln!("refusing to start: the configuration is unsafe or malformed");
            for error in &report.errors {
                eprintln!("  {error}");
            }
            return ExitCode::from(2);
        }
    };
    let result = match words.as_slice() {
        [] | ["serve"] => serve(settings).await,
        ["migrate", action] => migrate::run(&settings, action).await,
        ["dev", "seed"] => dev_seed::run(&settings).await,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    log.flush_traces().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Serving logs it (operators read the log); a command says it once, on stderr.
            if matches!(words.as_slice(), [] | ["serve"]) {
                tracing::error!("{error:#}");
            }
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    Ok(())
}
