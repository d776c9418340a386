//! A scripted app server for the event handler tests: an actix-web server on its own thread
//! (plain HTTP, or HTTPS with a throwaway rcgen certificate) that reports every request it
//! gets and answers with what the test's function returns.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use tokio::sync::mpsc;

use super::within;
use super::ws::Peer;

/// Sends an `event` request with text data and an ack id; returns its ack.
pub async fn event(client: &mut Peer, name: &str, data: &str, ack_id: u64) -> serde_json::Value {
    let request = serde_json::json!({"type":"event","event":name,"dataType":"text","data":data});
    client.request(request, ack_id).await
}

/// One request the app server received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Lower-case names; repeated headers joined with `, `.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// What to answer: status, headers, body.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Answer {
        self.body = body.into();
        self.header("content-type", content_type)
    }

    /// What an app that allows every origin answers to the abuse-protection `OPTIONS`.
    pub fn allow_all() -> Answer {
        Answer::status(200).header("WebHook-Allowed-Origin", "*")
    }
}

type Script = Arc<dyn Fn(&Received) -> Answer + Send + Sync>;

/// A running app server.
pub struct AppServer {
    pub addr: SocketAddr,
    pub requests: mpsc::UnboundedReceiver<Received>,
    handle: actix_web::dev::ServerHandle,
    /// The PEM of its certificate, when it serves HTTPS (to give to `HubConfig::upstream_ca`).
    pub ca_pem: Option<String>,
}

impl AppServer {
    /// `http://127.0.0.1:PORT`, or `https://localhost:PORT` with TLS.
    pub fn base(&self) -> String {
        match self.ca_pem {
            Some(_) => format!("https://localhost:{}", self.addr.port()),
            None => format!("http://{}", self.addr),
        }
    }

    /// The next request, in time.
    pub async fn next(&mut self) -> Received {
        within("a request to the app server", self.requests.recv())
            .await
            .expect("the app server is running")
    }

    /// The next request that is not the abuse-protection `OPTIONS`.
    pub async fn next_event(&mut self) -> Received {
        loop {
            let r = self.next().await;
            if r.method != "OPTIONS" {
                return r;
            }
        }
    }

    /// The next event of this `ce-type`, skipping others.
    pub async fn next_of_type(&mut self, ce_type: &str) -> Received {
        loop {
            let r = self.next_event().await;
            if r.header("ce-type") == Some(ce_type) {
                return r;
            }
        }
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// An app server answering every request with `script`; with `tls`, over HTTPS with a
/// fresh self-signed certificate for `localhost`.
pub async fn app_server(
    tls: bool,
    script: impl Fn(&Received) -> Answer + Send + Sync + 'static,
) -> AppServer {
    let script: Script = Arc::new(script);
    let (tx, requests) = mpsc::unbounded_channel();
    let (ca_pem, tls_config) = if tls {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = rustls::pki_types::CertificateDer::from(generated.cert.der().to_vec());
        let key =
            rustls::pki_types::PrivateKeyDer::try_from(generated.key_pair.serialize_der()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        (Some(generated.cert.pem()), Some(config))
    } else {
        (None, None)
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                let script = script.clone();
                let tx = tx.clone();
                App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                    let script = script.clone();
                    let tx = tx.clone();
                    async move {
                        let mut headers: HashMap<String, String> = HashMap::new();
                        for (name, value) in req.headers() {
                            let value = value.to_str().unwrap_or("<not text>").to_owned();
                            headers
                                .entry(name.as_str().to_owned())
                                .and_modify(|v| {
                                    v.push_str(", ");
                                    v.push_str(&value);
                                })
                                .or_insert(value);
                        }
                        let received = Received {
                            method: req.method().as_str().to_owned(),
                            path: req
                                .uri()
                                .path_and_query()
                                .map(|p| p.as_str().to_owned())
                                .unwrap_or_default(),
                            headers,
                            body: body.to_vec(),
                        };
                        let answer = script(&received);
                        let _ = tx.send(received);
                        let mut response = HttpResponse::build(
                            actix_web::http::StatusCode::from_u16(answer.status).unwrap(),
                        );
                        for (name, value) in &answer.headers {
                            response.append_header((name.as_str(), value.as_str()));
                        }
                        response.body(answer.body)
                    }
                }))
            })
            .workers(1)
            .disable_signals()
            .shutdown_timeout(0);
            let server = match tls_config {
                Some(config) => server.bind_rustls_0_23("127.0.0.1:0", config),
                None => server.bind("127.0.0.1:0"),
            }
            .unwrap();
            let addr = server.addrs()[0];
            let server = server.run();
            ready_tx.send((addr, server.handle())).unwrap();
            let _ = server.await;
        });
    });
    let (addr, handle) = ready_rx.recv().unwrap();
    AppServer {
        addr,
        requests,
        handle,
        ca_pem,
    }
}
