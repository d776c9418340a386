//! `webpubsub-fleet`: load a Web PubSub hub with thousands of clients, mint client access
//! URLs, run the local hub. See `webpubsub-fleet --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
