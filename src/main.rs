use clap::Parser;

fn main() -> std::process::ExitCode {
    allhands::cli::run(allhands::cli::Cli::parse())
}
