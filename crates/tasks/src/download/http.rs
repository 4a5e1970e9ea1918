//! HTTP(S) transfers with ureq (sync, rustls): one GET per attempt, resumed
//! with `Range: bytes=N-` guarded by `If-Range`.
//!
//! Resuming is only safe when the bytes on disk and the bytes the server
//! sends belong to the same version of the file, so a resume needs a
//! validator remembered from the first response: a strong ETag, else
//! Last-Modified. Then:
//! - 206 whose `Content-Range` starts at N: append.
//! - 200: the server cannot or will not resume (or the file changed and
//!   `If-Range` failed): truncate and take the whole body.
//! - 416: if the total length equals N the file is already complete,
//!   otherwise start over.

use super::source::{Credentials, Source};
use super::{CONNECT_TIMEOUT, Failure, Meta, Part, READ_TIMEOUT};
use checkflow_plan::{LogLevel, RunCx};
use std::time::Duration;
use ureq::Agent;
use ureq::http::{HeaderMap, StatusCode};

/// An HTTP client for the attempts of one task run.
pub(crate) struct Client {
    agent: Agent,
}

impl Client {
    pub(crate) fn new() -> Client {
        let agent = Agent::config_builder()
            // Statuses are answers to interpret here (206, 416, 503), not errors.
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            // A read that waits this long means a stalled connection: fail
            // the attempt, and the retry resumes after the bytes received.
            .timeout_per_read(Some(READ_TIMEOUT))
            .user_agent(concat!("checkflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Client { agent }
    }

    /// One GET: resumes `part` if it can, else starts it over; `Ok` once
    /// the part file holds the whole body.
    pub(crate) fn attempt(
        &self,
        src: &Source,
        part: &mut Part,
        cx: &dyn RunCx,
    ) -> Result<(), Failure> {
        let url = src.public_url();
        let permanent = Failure::Permanent;
        let validator = part.validator_for(&url).map(str::to_string);
        if part.len > 0 && validator.is_none() {
            cx.log(
                LogLevel::Info,
                "the partial bytes cannot be matched to a version of the file (no ETag or Last-Modified was remembered): starting over",
            );
            part.restart().map_err(permanent)?;
        }
        let offset = part.len;
        let mut req = self
            .agent
            .get(&url)
            // Byte ranges are ranges of the file itself, never of a compressed form.
            .header("Accept-Encoding", "identity");
        if let Some(c) = &src.credentials {
            req = req.header("Authorization", basic_auth(c));
        }
        if offset > 0
            && let Some(v) = &validator
        {
            cx.log(LogLevel::Info, &format!("resuming {url} at byte {offset}"));
            req = req
                .header("Range", format!("bytes={offset}-"))
                .header("If-Range", if_range_value(v));
        }
        let resp = req.call().map_err(from_ureq)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let total = match status {
            StatusCode::PARTIAL_CONTENT if offset > 0 => {
                let cr = header(&headers, "content-range").unwrap_or_default();
                match parse_content_range(&cr) {
                    Some((start, _, total)) if start == offset => {
                        // A server that ignores If-Range could send another version's bytes.
                        let now = validator_of(&headers);
                        if now.is_some() && now != validator {
                            cx.log(
                                LogLevel::Warn,
                                "the file changed on the server since the partial bytes were fetched: starting over",
                            );
                            part.restart().map_err(permanent)?;
                            return Err(Failure::Transient(
                                "the file changed on the server".into(),
                            ));
                        }
                        total
                    }
                    _ => {
                        part.restart().map_err(permanent)?;
                        return Err(Failure::Transient(format!(
                            "asked for bytes from {offset} and got Content-Range \"{cr}\"; starting over"
                        )));
                    }
                }
            }
            StatusCode::OK | StatusCode::PARTIAL_CONTENT => {
                if offset > 0 {
                    cx.log(
                        LogLevel::Info,
                        &format!(
                            "the server sent the whole file (status {}) instead of the bytes from {offset}: starting over",
                            status.as_u16()
                        ),
                    );
                }
                part.restart().map_err(permanent)?;
                if status == StatusCode::PARTIAL_CONTENT {
                    // A 206 to a request without Range: not something to build on.
                    return Err(permanent(
                        "the server answered 206 to a request for the whole file".into(),
                    ));
                }
                let total = header(&headers, "content-length").and_then(|v| v.parse().ok());
                part.set_meta(Meta {
                    url: url.clone(),
                    validator: validator_of(&headers),
                    total,
                })
                .map_err(permanent)?;
                total
            }
            StatusCode::RANGE_NOT_SATISFIABLE if offset > 0 => {
                let cr = header(&headers, "content-range").unwrap_or_default();
                let total = cr
                    .strip_prefix("bytes */")
                    .and_then(|t| t.trim().parse::<u64>().ok());
                if total == Some(offset) {
                    // The earlier attempt got every byte but was stopped before finishing.
                    return Ok(());
                }
                part.restart().map_err(permanent)?;
                return Err(Failure::Transient(format!(
                    "the server cannot serve bytes from {offset} (Content-Range \"{cr}\"); starting over"
                )));
            }
            s if s == StatusCode::REQUEST_TIMEOUT
                || s == StatusCode::TOO_MANY_REQUESTS
                || s.is_server_error() =>
            {
                return Err(Failure::Transient(format!(
                    "the server answered {}",
                    show(s)
                )));
            }
            s => return Err(permanent(format!("the server answered {}", show(s)))),
        };
        let mut body = resp.into_body().into_reader();
        if let Err(e) = part.copy_from(&mut body, total, cx) {
            return Err(e.into_failure(part.len, total));
        }
        match total {
            Some(t) if part.len < t => Err(Failure::Transient(format!(
                "connection closed after {} of {t} bytes",
                part.len
            ))),
            Some(t) if part.len > t => {
                part.restart().map_err(permanent)?;
                Err(Failure::Transient(format!(
                    "received more bytes than the {t} announced; starting over"
                )))
            }
            _ => Ok(()),
        }
    }
}

fn show(s: StatusCode) -> String {
    match s.canonical_reason() {
        Some(r) => format!("{} {r}", s.as_u16()),
        None => s.as_u16().to_string(),
    }
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
}

/// The validator to remember: a strong ETag, else Last-Modified.
fn validator_of(h: &HeaderMap) -> Option<String> {
    if let Some(etag) = header(h, "etag")
        && etag.starts_with('"')
    {
        return Some(format!("etag {etag}"));
    }
    header(h, "last-modified").map(|lm| format!("last-modified {lm}"))
}

/// The `If-Range` value for a remembered validator.
fn if_range_value(v: &str) -> String {
    v.split_once(' ').map_or(v, |(_, value)| value).to_string()
}

/// `bytes START-END/TOTAL` (TOTAL may be `*`).
fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start.trim().parse().ok()?, end.trim().parse().ok()?, total))
}

fn basic_auth(c: &Credentials) -> String {
    format!(
        "Basic {}",
        base64(format!("{}:{}", c.user, c.password).as_bytes())
    )
}

fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Network and protocol trouble is transient; a bad URL or TLS failure is not.
fn from_ureq(e: ureq::Error) -> Failure {
    use ureq::Error as E;
    match e {
        E::Io(_)
        | E::Timeout(_)
        | E::HostNotFound
        | E::ConnectionFailed
        | E::Protocol(_)
        | E::BodyStalled => Failure::Transient(e.to_string()),
        _ => Failure::Permanent(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_values() {
        assert_eq!(base64(b"martin:secret"), "bWFydGluOnNlY3JldA==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, 199, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 0-1/*"), Some((0, 1, None)));
        assert_eq!(parse_content_range("bytes */200"), None);
    }
}
