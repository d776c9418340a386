//! What the examples share: the target service and logging.
#![allow(dead_code)]

use std::error::Error;

use webpubsub_fleet::credential::ConnectionString;
use webpubsub_fleet::hub::{Hub, HubConfig};

/// Logs to stderr at `RUST_LOG` (default `warn`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// The service named by `WebPubSubConnectionString` (the name the official samples use), or
/// a local hub started in this process; keep the returned hub alive while it is used.
pub async fn target() -> Result<(ConnectionString, Option<Hub>), Box<dyn Error>> {
    match std::env::var("WebPubSubConnectionString") {
        Ok(s) => Ok((ConnectionString::parse(&s)?, None)),
        Err(_) => {
            let hub = Hub::start(HubConfig::new().bind("127.0.0.1:0".parse()?)).await?;
            println!("started a local hub at {}", hub.endpoint());
            Ok((hub.connection_string(), Some(hub)))
        }
    }
}
