//! The defender-token-proxy binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use defender_token_proxy::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    cli::run(Cli::parse()).await
}
