//! HTTP, both ways: the server behind tidings' own endpoint ([`crate::api`]: gateway reports,
//! IVR answers, operations) with its connection limits ([`conn`]), and the small client the
//! Kannel and call-centre gateways send with ([`client`]).
//!
//! Why a hand-routed `hyper` server and not a web framework: a handful of routes, all of them
//! synchronous answers from memory, and every dependency costs build time on small machines.
//! Handlers are plain functions from a [`Request`] to a [`Response`]; the server owns the
//! protocol (HTTP/1.1, keep-alive, size limits).

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

pub mod conn;

pub use conn::Limits;

/// Request bodies larger than this are refused (413).
pub const MAX_BODY: usize = 64 * 1024;

/// A request as handlers see it: the body already read (and size-limited).
#[derive(Debug)]
pub struct Request {
    pub method: hyper::Method,
    pub path: String,
    pub query: HashMap<String, String>,
    /// The query as it came (percent-encoded), for a parameter that is octets rather than
    /// UTF-8 text ([`Request::param_bytes`]).
    pub query_string: String,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
    /// The client's address (rate limits are per client).
    pub peer: Option<SocketAddr>,
}

impl Request {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }
    /// A parameter's octets, percent-decoded but not read as UTF-8 (Kannel's `%b` holds a
    /// message as the SMSC sent it, UCS-2 or GBK).
    pub fn param_bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.query_string.split('&').find_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode_bytes(k) == name.as_bytes()).then(|| percent_decode_bytes(v))
        })
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
}

impl Response {
    pub fn json(status: u16, v: &serde_json::Value) -> Response {
        Response { status, content_type: "application/json", body: Bytes::from(v.to_string()) }
    }
    pub fn text(status: u16, s: impl Into<String>) -> Response {
        Response { status, content_type: "text/plain; charset=utf-8", body: Bytes::from(s.into()) }
    }
    /// `{"error": message}` with the status.
    pub fn error(status: u16, message: &str) -> Response {
        Response::json(status, &serde_json::json!({ "error": message }))
    }
}

/// An answer that may take a while (a report is answered once it is on disk).
pub type Reply = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

/// Anything that answers requests. One method; `Send + Sync` because connections are served on
/// the runtime's threads. Plain functions from a request to a response are handlers.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: Request) -> Reply;

    /// The largest body taken for a request with this head (method, path, headers), read before
    /// [`Handler::handle`]; [`MAX_BODY`] unless the handler knows better (an authenticated
    /// upload, say).
    fn max_body(&self, _head: &hyper::http::request::Parts) -> usize {
        MAX_BODY
    }
}

impl<F: Fn(Request) -> Response + Send + Sync + 'static> Handler for F {
    fn handle(&self, req: Request) -> Reply {
        Box::pin(std::future::ready(self(req)))
    }
}

/// Decodes `application/x-www-form-urlencoded` (a query string or a form body).
pub fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    String::from_utf8_lossy(&percent_decode_bytes(s)).into_owned()
}

fn percent_decode_bytes(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Percent-encodes everything but the unreserved characters of RFC 3986.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~') {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// Serves `handler` on `listener` until `shutdown` resolves, within `limits` (see [`conn`]).
/// Bind to port 0 and read the listener's `local_addr` for tests.
pub async fn serve(
    listener: TcpListener,
    handler: Arc<dyn Handler>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let conns = conn::Conns::new(limits);
    let mut backoff = conn::Backoff::default();
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    let wait = backoff.failed(&e, &conns);
                    if !wait.is_zero() {
                        tokio::select! {
                            _ = &mut shutdown => return,
                            _ = tokio::time::sleep(wait) => {}
                        }
                    }
                    continue;
                }
            },
        };
        backoff.accepted();
        // At the cap: the connection idle the longest is closed for this one (or, when every
        // connection is answering a request, this one is refused).
        let Some((id, track)) = conns.admit() else { continue };
        let handler = handler.clone();
        let (c, t) = (conns.clone(), track.clone());
        let conns = conns.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let handler = handler.clone();
                let busy = conn::Busy::new(&t, &c);
                async move {
                    let resp = answer(&*handler, req, peer).await;
                    drop(busy);
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let io = TokioIo::new(conn::Watched::new(stream, track.clone(), conns.clone()));
            let served = http1::Builder::new().max_buf_size(64 * 1024).serve_connection(io, svc);
            conns.watch(id, track, served).await;
        });
    }
}

async fn answer(
    handler: &dyn Handler,
    req: hyper::Request<hyper::body::Incoming>,
    peer: SocketAddr,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let limit = handler.max_body(&parts);
    let resp = match Limited::new(body, limit).collect().await {
        Err(_) => Response::error(413, &format!("request body too large (limit {} KiB)", limit / 1024)),
        Ok(body) => {
            let req = Request {
                method: parts.method,
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().map(parse_query).unwrap_or_default(),
                query_string: parts.uri.query().unwrap_or_default().to_owned(),
                headers: parts.headers,
                body: body.to_bytes(),
                peer: Some(peer),
            };
            handler.handle(req).await
        }
    };
    hyper::Response::builder()
        .status(resp.status)
        .header("content-type", resp.content_type)
        .body(Full::new(resp.body))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::from_static(b"internal error"))))
}

/// Binds `addr` (e.g. `127.0.0.1:8380`, or port 0 for any) and returns the listener with the
/// address it got.
pub async fn bind(addr: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let l = TcpListener::bind(addr).await?;
    let a = l.local_addr()?;
    Ok((l, a))
}

/// A minimal HTTP/1.1 client for the gateways: one request on a fresh connection, with a
/// timeout. Gateways here take a few hundred requests a second at most; a connection each keeps
/// failure handling simple (a broken connection never poisons the next request).
pub mod client {
    use super::*;
    use std::time::Duration;

    #[derive(Debug)]
    pub struct HttpResponse {
        pub status: u16,
        pub headers: hyper::HeaderMap,
        pub body: Bytes,
    }

    #[derive(Debug, thiserror::Error)]
    pub enum HttpError {
        #[error("bad url `{0}`: {1}")]
        Url(String, String),
        #[error("connect: {0}")]
        Connect(std::io::Error),
        #[error("http: {0}")]
        Http(#[from] hyper::Error),
        #[error("timed out after {0:?}")]
        Timeout(Duration),
    }

    /// `http://host:port/path?query` → (host:port, path?query). Only plain HTTP: gateways sit
    /// on the operator's internal network; TLS belongs to a proxy in front of them.
    pub fn split_url(url: &str) -> Result<(String, String), HttpError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| HttpError::Url(url.into(), "only http:// is supported".into()))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if host.is_empty() {
            return Err(HttpError::Url(url.into(), "no host".into()));
        }
        let host = if host.contains(':') { host.to_owned() } else { format!("{host}:80") };
        Ok((host, path.to_owned()))
    }

    pub async fn request(
        method: hyper::Method,
        url: &str,
        headers: &[(&str, String)],
        body: Option<(&'static str, Bytes)>,
        timeout: Duration,
    ) -> Result<HttpResponse, HttpError> {
        let (host, path) = split_url(url)?;
        let fut = async {
            let stream = tokio::net::TcpStream::connect(&host).await.map_err(HttpError::Connect)?;
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut b = hyper::Request::builder().method(method).uri(path).header("host", host.as_str());
            for (k, v) in headers {
                b = b.header(*k, v.as_str());
            }
            let (ct, bytes) = body.unwrap_or(("", Bytes::new()));
            if !ct.is_empty() {
                b = b.header("content-type", ct);
            }
            let req = b.body(Full::new(bytes)).map_err(|e| HttpError::Url(url.into(), e.to_string()))?;
            let resp = send.send_request(req).await?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok(HttpResponse { status: parts.status.as_u16(), headers: parts.headers, body })
        };
        tokio::time::timeout(timeout, fut).await.map_err(|_| HttpError::Timeout(timeout))?
    }

    impl HttpResponse {
        /// How long the server asked to wait before trying again (`Retry-After` in seconds).
        pub fn retry_after(&self) -> Option<Duration> {
            let v = self.headers.get("retry-after")?.to_str().ok()?;
            v.trim().parse::<u64>().ok().map(Duration::from_secs)
        }
    }

    /// A task for another system, as the call centre and the order interface take one: a POST
    /// of JSON whose `Idempotency-Key` is `key` (a repeat of the same key is the same task), with
    /// a bearer `token` unless it is empty.
    pub async fn post_task(
        url: &str,
        key: &str,
        token: &str,
        json: String,
        timeout: Duration,
    ) -> Result<HttpResponse, HttpError> {
        let mut headers = vec![("idempotency-key", key.to_owned())];
        if !token.is_empty() {
            headers.push(("authorization", format!("Bearer {token}")));
        }
        let body = Some(("application/json", Bytes::from(json)));
        request(hyper::Method::POST, url, &headers, body, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_and_encode() {
        let q = parse_query("id=a1&status=1&answer=id%3A12+stat%3ADELIVRD&empty=&bad=%zz");
        assert_eq!(q["answer"], "id:12 stat:DELIVRD");
        assert_eq!(q["empty"], "");
        assert_eq!(q["bad"], "%zz");
        assert_eq!(parse_query(&format!("t={}", percent_encode("您好 a+b&c")))["t"], "您好 a+b&c");
    }

    #[test]
    fn urls_split_into_host_and_path() {
        assert_eq!(
            client::split_url("http://127.0.0.1:13013/cgi-bin/sendsms?x=1").unwrap(),
            ("127.0.0.1:13013".to_owned(), "/cgi-bin/sendsms?x=1".to_owned())
        );
        assert_eq!(client::split_url("http://gw").unwrap().0, "gw:80");
        assert!(client::split_url("https://gw").is_err());
    }
}
