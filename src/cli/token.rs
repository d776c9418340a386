//! `webpubsub-fleet token`: mint a client access URL, as a server SDK's
//! `getClientAccessUrl` does.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Args;
use webpubsub_fleet::credential::{ConnectionString, TokenOptions};

use super::args::{CONNECTION_STRING_ENV, connection_string};

/// Mint a client access URL (printed on stdout, token included).
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The resource's connection string (`Endpoint=...;AccessKey=...;Version=1.0;`).
    #[arg(long, env = CONNECTION_STRING_ENV, value_parser = connection_string, hide_env_values = true)]
    connection_string: ConnectionString,
    /// The hub.
    #[arg(long)]
    hub: String,
    /// The user id (`sub` claim).
    #[arg(long)]
    user: Option<String>,
    /// A role, such as `webpubsub.joinLeaveGroup` (repeatable).
    #[arg(long = "role")]
    roles: Vec<String>,
    /// A group joined on connect (repeatable).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// Token lifetime in minutes.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=525_600))]
    minutes: u64,
}

pub fn run(args: TokenArgs) -> ExitCode {
    let mut options = TokenOptions::new()
        .roles(args.roles)
        .groups(args.groups)
        .lifetime(Duration::from_secs(args.minutes * 60));
    options.user_id = args.user;
    match args
        .connection_string
        .client_access_url(&args.hub, &options, SystemTime::now())
    {
        Ok(url) => {
            // The one place the token is meant to be shown.
            println!("{}", url.expose());
            ExitCode::SUCCESS
        }
        Err(e) => super::fail(e),
    }
}
