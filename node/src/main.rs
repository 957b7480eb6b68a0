//! The `colonymesh` binary: parse the command line, set up logging on stderr (human, or JSON
//! with `COLONYMESH_LOG_FORMAT=json`; levels from `COLONYMESH_LOG`), run.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = node::cli::Cli::parse();
    let filter = EnvFilter::try_from_env("COLONYMESH_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,openraft=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match std::env::var("COLONYMESH_LOG_FORMAT").as_deref() {
        // One JSON object per line, with the fields of the current span and its parents
        // (node, request, peer, process) for log pipelines.
        Ok("json") => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
        _ => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            builder.with_ansi(ansi).init()
        }
    }
    let vars = std::env::vars().collect();
    match node::cli::run(cli, vars).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
