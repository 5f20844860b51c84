use clap::Parser;

/// Requests are parsed on the HTTP workers and committed on the store writer, so most memory is
/// freed on another thread than the one that allocated it: glibc's malloc made both wait on its
/// arena locks (a fifth of the inbound path's CPU), mimalloc frees across threads without them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    exit_quietly_when_the_reader_goes_away();
    allhands::cli::run(allhands::cli::Cli::parse())
}

/// `allhands db verify | head -3`: Rust ignores SIGPIPE, so `println!` to a closed pipe panics.
/// A command whose reader left ends as if SIGPIPE had ended it (status 141), without the panic
/// message; every other panic is reported as before.
fn exit_quietly_when_the_reader_goes_away() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        report(info);
    }));
}
