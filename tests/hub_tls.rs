//! The hub over TLS (`HubConfig::tls`): a throwaway rcgen certificate, a blocking rustls
//! client that trusts exactly that certificate, a WebSocket and a REST call over it.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use support::DEADLINE;
use support::hub::*;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};
use webpubsub_fleet::hub::{Hub, HubConfig, HubError};

fn tls_stream(
    hub: &Hub,
    cert: &CertificateDer<'static>,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(hub.addr()).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    rustls::StreamOwned::new(connection, tcp)
}

#[tokio::test]
async fn websocket_and_rest_over_tls() {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = generated.cert.pem();
    let key_pem = generated.key_pair.serialize_pem();
    let cert_der = CertificateDer::from(generated.cert.der().to_vec());
    let hub = start_hub_with(|c| c.tls(cert_pem.clone(), key_pem.clone())).await;
    assert!(hub.endpoint().starts_with("https://"));

    let port = hub.addr().port();
    // Tokens name the host the client uses: localhost, which the certificate is for.
    let token = {
        let claims = serde_json::json!({
            "aud": format!("https://localhost:{port}/client/hubs/{HUB}"),
            "exp": 4_102_444_800u64,
            "sub": "tls-user",
        });
        sign(hub.access_key().expose(), &claims)
    };
    let hub2 = hub.clone();
    let cert = cert_der.clone();
    let connected: Value = tokio::task::spawn_blocking(move || {
        let stream = tls_stream(&hub2, &cert);
        let url = format!("wss://localhost:{port}/client/hubs/{HUB}?access_token={token}");
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", RELIABLE.parse().unwrap());
        let (mut ws, _) =
            tungstenite::client::client(request, stream).expect("TLS WebSocket handshake");
        match ws.read().unwrap() {
            Message::Text(t) => serde_json::from_str(&t).unwrap(),
            other => panic!("expected connected, got {other:?}"),
        }
    })
    .await
    .unwrap();
    assert_eq!(connected["event"], "connected");
    assert_eq!(connected["userId"], "tls-user");

    let hub3 = hub.clone();
    let status = tokio::task::spawn_blocking(move || {
        let mut stream = tls_stream(&hub3, &cert_der);
        write!(
            stream,
            "HEAD /api/health HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        stream.flush().unwrap();
        let mut response = Vec::new();
        // A peer closing TLS without close_notify is an error for rustls; the bytes still count.
        let _ = stream.read_to_end(&mut response);
        String::from_utf8_lossy(&response).into_owned()
    })
    .await
    .unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    hub.stop().await;
}

#[tokio::test]
async fn unusable_certificates_are_refused_at_start() {
    let config = HubConfig::new()
        .bind("127.0.0.1:0".parse().unwrap())
        .tls("not a pem", "not a key");
    assert!(matches!(Hub::start(config).await, Err(HubError::Tls(_))));
}
