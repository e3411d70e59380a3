//! The command line: `fanfare serve`, `fanfare bench`, `fanfare plan`,
//! `fanfare config check`.

mod bench;
mod plan;
mod serve;

use clap::{Parser, Subcommand};

use crate::config::ServeArgs;

#[derive(Parser)]
#[command(name = "fanfare", version, about = "Fanfare: a real-time messaging server")]
pub struct Cli {
    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Subcommand)]
enum CliCommand {
    /// Run the server.
    Serve(ServeArgs),
    /// Load a server and measure it.
    Bench(Box<bench::BenchArgs>),
    /// Size a fleet: nodes, memory, CPU, network and storage for a workload.
    Plan(Box<plan::PlanArgs>),
    /// Work with the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Validate the configuration and print it resolved (secrets redacted).
    Check(ServeArgs),
}

impl Cli {
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            CliCommand::Serve(args) => serve::serve(&args),
            CliCommand::Bench(args) => bench::run(*args),
            CliCommand::Plan(args) => plan::run(&args),
            CliCommand::Config { action: ConfigAction::Check(args) } => {
                let settings = crate::config::load(&args)?;
                print!("{}", settings.to_toml());
                Ok(())
            }
        }
    }
}
