//! The outbound-HTTP seam of the service layer: the only file of `service/` that names awc.
//! One request in, one bounded answer out; retries, tokens and errors live above it.

use std::time::Duration;

use bytes::Bytes;

/// An HTTP method the data-plane API uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
}

impl Method {
    fn awc(self) -> awc::http::Method {
        match self {
            Method::Get => awc::http::Method::GET,
            Method::Head => awc::http::Method::HEAD,
            Method::Post => awc::http::Method::POST,
            Method::Put => awc::http::Method::PUT,
            Method::Delete => awc::http::Method::DELETE,
        }
    }
}

/// One request, ready to send: the token is already minted for this attempt.
pub(crate) struct Request<'a> {
    pub method: Method,
    pub url: &'a str,
    pub bearer: &'a str,
    pub content_type: Option<&'static str>,
    pub body: Bytes,
    pub timeout: Duration,
    pub max_body: usize,
    pub user_agent: &'a str,
}

/// An answer, with its body read up to the bound.
pub(crate) struct Answer {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Answer {
    /// A header's value by its lower-case name.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
}

/// Why no answer came.
pub(crate) enum Failure {
    /// No answer within the timeout.
    Timeout,
    /// Connecting, sending or reading failed.
    Transport(String),
}

/// The HTTP client: awc with redirects off (a redirect would carry the bearer token to
/// wherever it points) and no client-wide timeout (each request sets its own).
#[derive(Clone)]
pub(crate) struct Http(awc::Client);

impl Http {
    pub(crate) fn new() -> Http {
        Http(
            awc::Client::builder()
                .disable_redirects()
                .disable_timeout()
                .finish(),
        )
    }

    /// Sends one request and reads the answer, at most `max_body` bytes of it.
    pub(crate) async fn send(&self, request: Request<'_>) -> Result<Answer, Failure> {
        let mut builder = self
            .0
            .request(request.method.awc(), request.url)
            .timeout(request.timeout)
            .insert_header(("authorization", format!("Bearer {}", request.bearer)))
            .insert_header(("user-agent", request.user_agent));
        if let Some(content_type) = request.content_type {
            builder = builder.insert_header(("content-type", content_type));
        }
        let deadline = tokio::time::Instant::now() + request.timeout;
        let mut response = builder.send_body(request.body).await.map_err(|e| match e {
            awc::error::SendRequestError::Timeout => Failure::Timeout,
            // awc's messages name the URL at most, never a header.
            other => Failure::Transport(other.to_string()),
        })?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let body = if request.method == Method::Head {
            Bytes::new()
        } else {
            match tokio::time::timeout_at(deadline, response.body().limit(request.max_body)).await {
                Err(_) => return Err(Failure::Timeout),
                Ok(Err(e)) => return Err(Failure::Transport(format!("reading the answer: {e}"))),
                Ok(Ok(body)) => body,
            }
        };
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}
