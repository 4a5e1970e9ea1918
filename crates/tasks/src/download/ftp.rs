//! FTP transfers with suppaftp (sync, passive mode, binary type): one control
//! connection per attempt, resumed with `REST N` before `RETR`.
//!
//! The version of the remote file is its size and modification time (`SIZE`
//! and `MDTM`), remembered with the partial bytes: if either changed, the
//! transfer starts over. A server that refuses `REST` gets the whole file.

use super::source::{Source, percent_decode};
use super::{CONNECT_TIMEOUT, Failure, Meta, Part, READ_TIMEOUT};
use checkflow_plan::{LogLevel, RunCx};
use std::net::ToSocketAddrs;
use std::time::Duration;
use suppaftp::types::FileType;
use suppaftp::{FtpError, FtpStream, Status};

/// One attempt: connect, log in, check the version, resume or start over.
pub(crate) fn attempt(src: &Source, part: &mut Part, cx: &dyn RunCx) -> Result<(), Failure> {
    let url = src.public_url();
    let host = src.host.trim_start_matches('[').trim_end_matches(']');
    let addr = (host, src.port_or_default())
        .to_socket_addrs()
        .map_err(|e| Failure::Transient(format!("cannot resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| Failure::Transient(format!("{host} has no address")))?;
    let mut ftp = FtpStream::connect_timeout(addr, CONNECT_TIMEOUT).map_err(|e| from_ftp(e, ""))?;
    let result = transfer(&mut ftp, src, &url, part, cx);
    let _ = ftp.quit();
    result
}

fn transfer(
    ftp: &mut FtpStream,
    src: &Source,
    url: &str,
    part: &mut Part,
    cx: &dyn RunCx,
) -> Result<(), Failure> {
    let permanent = Failure::Permanent;
    // Commands on the control connection must not wait forever either.
    let _ = ftp
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(60)));
    let (user, pass) = match &src.credentials {
        Some(c) => (c.user.as_str(), c.password.as_str()),
        None => ("anonymous", "anonymous@"),
    };
    ftp.login(user, pass).map_err(|e| match e {
        FtpError::UnexpectedResponse(r) if r.status == Status::NotLoggedIn => {
            Failure::Permanent(format!("the server refused the login of user {user}"))
        }
        e => from_ftp(e, "log in"),
    })?;
    ftp.transfer_type(FileType::Binary)
        .map_err(|e| from_ftp(e, "switch to binary mode"))?;
    // RFC 1738: the path is relative to the login folder; `%2F` makes it absolute.
    let path = src.path.split('?').next().unwrap_or_default();
    let path = percent_decode(path.strip_prefix('/').unwrap_or(path))
        .ok_or_else(|| permanent(format!("bad path encoding in {url}")))?;
    let size = ftp.size(&path).ok().map(|s| s as u64);
    let mdtm = ftp.mdtm(&path).ok().map(|t| t.to_string());
    let validator = match (&size, &mdtm) {
        (None, None) => None,
        _ => Some(format!(
            "size {} modified {}",
            size.map_or("?".into(), |s| s.to_string()),
            mdtm.as_deref().unwrap_or("?")
        )),
    };
    if part.len > 0 {
        let same = validator.is_some() && part.validator_for(url) == validator.as_deref();
        if !same {
            cx.log(
                LogLevel::Info,
                "the remote file is not the one the partial bytes came from (or its size and date are unknown): starting over",
            );
            part.restart().map_err(permanent)?;
        }
    }
    if part.len == 0 {
        part.set_meta(Meta {
            url: url.to_string(),
            validator: validator.clone(),
            total: size,
        })
        .map_err(permanent)?;
    }
    let offset = part.len;
    if size == Some(offset) && offset > 0 {
        return Ok(());
    }
    let mut stream = if offset > 0 {
        cx.log(LogLevel::Info, &format!("resuming {url} at byte {offset}"));
        let _ = ftp.resume_transfer(offset as usize);
        match ftp.retr_as_stream(&path) {
            Ok(s) => s,
            Err(FtpError::UnexpectedResponse(r)) if r.status != Status::FileUnavailable => {
                cx.log(
                    LogLevel::Info,
                    &format!(
                        "the server refused to resume ({}): starting over",
                        reply(&r.body)
                    ),
                );
                part.restart().map_err(permanent)?;
                part.set_meta(Meta {
                    url: url.to_string(),
                    validator,
                    total: size,
                })
                .map_err(permanent)?;
                ftp.retr_as_stream(&path)
                    .map_err(|e| from_ftp(e, "retrieve the file"))?
            }
            Err(e) => return Err(from_ftp(e, "retrieve the file")),
        }
    } else {
        ftp.retr_as_stream(&path)
            .map_err(|e| from_ftp(e, "retrieve the file"))?
    };
    let _ = stream
        .get_ref()
        .get_ref()
        .set_read_timeout(Some(READ_TIMEOUT));
    let copied = part.copy_from(&mut stream, size, cx);
    if let Err(e) = copied {
        // Close the data connection first, so the server ends the transfer
        // and the reply read when the stream is dropped comes at once.
        let _ = stream
            .get_ref()
            .get_ref()
            .shutdown(std::net::Shutdown::Both);
        drop(stream);
        return Err(e.into_failure(part.len, size));
    }
    stream
        .finish()
        .map_err(|e| from_ftp(e, "finish the transfer"))?;
    match size {
        Some(t) if part.len != t => Err(Failure::Transient(format!(
            "the transfer ended after {} of {t} bytes",
            part.len
        ))),
        _ => Ok(()),
    }
}

fn reply(body: &[u8]) -> String {
    String::from_utf8_lossy(body).trim().to_string()
}

/// Connection trouble and 4xx replies are transient; 5xx replies are not.
fn from_ftp(e: FtpError, doing: &str) -> Failure {
    let what = if doing.is_empty() {
        String::new()
    } else {
        format!("cannot {doing}: ")
    };
    match e {
        FtpError::UnexpectedResponse(r) => {
            let code = r.status.code();
            let msg = format!("{what}the server answered {}", reply(&r.body));
            if (400..500).contains(&code) {
                Failure::Transient(msg)
            } else {
                Failure::Permanent(msg)
            }
        }
        FtpError::ConnectionError(e) => Failure::Transient(format!("{what}{e}")),
        e => Failure::Transient(format!("{what}{e}")),
    }
}
