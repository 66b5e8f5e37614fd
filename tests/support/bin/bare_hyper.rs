//! `bare-hyper`: the baseline of `make bench`. A bare hyper 1 HTTP/1.1 server on loopback, on
//! the same tokio runtime as tokentray's endpoint, answering every request with the same body
//! (the endpoint's answer, read from a file) and the same content type: no routing, no checks,
//! no state. What tokentray's endpoint does beyond it is what the benchmark's ratio measures.
//!
//! Usage: `bare-hyper BODY_FILE`; prints `http://127.0.0.1:PORT` once it listens.

use std::convert::Infallible;
use std::io::Write as _;

use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let file = std::env::args_os()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: bare-hyper BODY_FILE"))?;
    let body = Bytes::from(std::fs::read(file)?);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    writeln!(std::io::stdout(), "http://{}", listener.local_addr()?)?;
    std::io::stdout().flush()?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_request| {
                let response = hyper::Response::builder()
                    .header("content-type", "application/json")
                    .body(http_body_util::Full::new(body.clone()));
                async move { Ok::<_, Infallible>(response.unwrap_or_default()) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
