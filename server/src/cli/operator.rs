//! The operator channel: how the command line talks to the server running on a data folder.
//! The server writes its address (`server.url`) and a fresh token (`operator.token`, readable
//! only by the account that runs it) into the folder at start; whoever can read the folder can
//! copy it anyway, so the token asks for nothing more.

use std::io::Write;
use std::path::Path;

use axum::http::{Method, StatusCode, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::server::{TOKEN_FILE, URL_FILE};

/// A running server, reachable from here.
#[derive(Debug)]
pub struct Operator {
    authority: String,
    token: String,
}

/// A refusal from the server, as its JSON error says it.
#[derive(Debug, thiserror::Error)]
#[error("{message} ({code}, HTTP {status})")]
pub struct Refused {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl Operator {
    /// The server running on `data_dir`, if one answers there. A server that was killed leaves
    /// its address behind; nothing listening there means no server, and so does a file that is
    /// missing or empty (what a power cut left of an older version's).
    pub async fn find(data_dir: &Path) -> anyhow::Result<Option<Operator>> {
        let read = |name: &str| crate::durable::read_text(&data_dir.join(name));
        let (Some(url), Some(token)) = (read(URL_FILE)?, read(TOKEN_FILE)?) else {
            return Ok(None);
        };
        let authority = url.trim_start_matches("http://").to_owned();
        match tokio::net::TcpStream::connect(&authority).await {
            Ok(_) => Ok(Some(Operator { authority, token: token.trim().to_owned() })),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(None),
            Err(e) => Err(anyhow::anyhow!("the server at {authority} does not answer: {e}")),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        let stream = tokio::net::TcpStream::connect(&self.authority).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let bytes = match &body {
            Some(body) => Bytes::from(serde_json::to_vec(body)?),
            None => Bytes::new(),
        };
        let request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.authority)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(bytes))?;
        Ok(sender.send_request(request).await?)
    }

    /// Calls the HTTP API; answers the JSON, or the server's refusal as an error.
    pub async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<T> {
        let response = self.send(method, path, body).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if status != StatusCode::OK {
            #[derive(serde::Deserialize)]
            struct ErrorJson {
                code: String,
                message: String,
            }
            let refusal: ErrorJson = serde_json::from_slice(&bytes).unwrap_or(ErrorJson {
                code: "unknown".into(),
                message: String::from_utf8_lossy(&bytes).into_owned(),
            });
            return Err(Refused {
                status: status.as_u16(),
                code: refusal.code,
                message: refusal.message,
            }
            .into());
        }
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// Streams `/api/operator/backup` into `to`; fails unless the stream ends with its end
    /// mark.
    pub async fn backup(&self, to: &Path) -> anyhow::Result<()> {
        let response = self.send(Method::GET, "/api/operator/backup", None).await?;
        anyhow::ensure!(
            response.status().is_success(),
            "the server refused the backup: {}",
            response.status()
        );
        let mut body = response.into_body();
        let mut file = std::io::BufWriter::new(std::fs::File::create(to)?);
        // The last line, kept as the stream passes, tells a complete backup from a cut one
        // without reading the file again.
        let mut tail: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                file.write_all(&data)?;
                tail.extend_from_slice(&data);
                let keep = tail[..tail.len().saturating_sub(1)].iter().rposition(|&b| b == b'\n');
                if let Some(newline) = keep {
                    tail.drain(..=newline);
                }
            }
        }
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        anyhow::ensure!(tail.starts_with(b"{\"end\""), "the backup stream ended early");
        Ok(())
    }
}
