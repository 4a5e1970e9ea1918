//! Test servers on 127.0.0.1 for the download tests: a small HTTP/1.1 file
//! server written on `std::net` (byte ranges, ETags and injected faults), and
//! a launcher for a real FTP server (pyftpdlib).
//!
//! Used by the unit tests of `checkflow-tasks` and the end-to-end tests; std
//! only.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub path: String,
    /// The first byte asked for with `Range: bytes=N-`.
    pub range_start: Option<u64>,
    pub if_range: Option<String>,
    pub authorization: Option<String>,
    pub accept_encoding: Option<String>,
    /// The status answered.
    pub status: u16,
    /// Body bytes written.
    pub sent: u64,
}

/// A file served at a path, and how to misbehave when serving it.
#[derive(Clone, Debug)]
struct Served {
    body: Arc<Vec<u8>>,
    etag: Option<String>,
    last_modified: Option<String>,
    /// Answer 200 with the whole body even to a Range request.
    ignore_range: bool,
    /// Close the connection once the body has been sent up to this byte offset of the file.
    cut_at: Option<u64>,
    /// Give every response a new ETag (as if the file changed each time).
    new_etag_each_request: bool,
    /// Answer the next requests with these statuses (and no body).
    fail_next: Vec<u16>,
    /// `Authorization` header value required.
    auth: Option<String>,
    /// Pause after each chunk (slows the transfer down).
    chunk_delay: Option<Duration>,
}

#[derive(Default)]
struct Shared {
    files: Mutex<HashMap<String, Served>>,
    hits: Mutex<Vec<Hit>>,
    stop: AtomicBool,
}

/// An HTTP server on 127.0.0.1, stopped when dropped.
pub struct HttpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl HttpServer {
    pub fn start() -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || serve(conn, &s));
            }
        });
        HttpServer { addr, shared }
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `body` at `path` with ETag `"v1"`.
    pub fn add(&self, path: &str, body: Vec<u8>) {
        self.files().insert(
            path.to_string(),
            Served {
                body: Arc::new(body),
                etag: Some("\"v1\"".into()),
                last_modified: None,
                ignore_range: false,
                cut_at: None,
                new_etag_each_request: false,
                fail_next: Vec::new(),
                auth: None,
                chunk_delay: None,
            },
        );
    }

    fn files(&self) -> std::sync::MutexGuard<'_, HashMap<String, Served>> {
        self.shared.files.lock().expect("files lock")
    }

    fn with(&self, path: &str, f: impl FnOnce(&mut Served)) {
        let mut files = self.files();
        f(files.get_mut(path).expect("a served path"));
    }

    /// Replaces the body and the ETag (the file changed on the server).
    pub fn replace(&self, path: &str, body: Vec<u8>, etag: Option<&str>) {
        self.with(path, |s| {
            s.body = Arc::new(body);
            s.etag = etag.map(str::to_string);
        });
    }

    pub fn set_etag(&self, path: &str, etag: Option<&str>) {
        self.with(path, |s| s.etag = etag.map(str::to_string));
    }

    pub fn set_last_modified(&self, path: &str, lm: Option<&str>) {
        self.with(path, |s| s.last_modified = lm.map(str::to_string));
    }

    pub fn ignore_range(&self, path: &str, on: bool) {
        self.with(path, |s| s.ignore_range = on);
    }

    /// Every response stops (the connection is closed) at this offset of the file.
    pub fn cut_at(&self, path: &str, offset: Option<u64>) {
        self.with(path, |s| s.cut_at = offset);
    }

    pub fn new_etag_each_request(&self, path: &str, on: bool) {
        self.with(path, |s| s.new_etag_each_request = on);
    }

    /// The next requests get these statuses, in order.
    pub fn fail_next(&self, path: &str, statuses: &[u16]) {
        self.with(path, |s| s.fail_next = statuses.to_vec());
    }

    /// Requires `Authorization: Basic base64(user:pass)` given as the header value.
    pub fn require_auth(&self, path: &str, header_value: &str) {
        self.with(path, |s| s.auth = Some(header_value.to_string()));
    }

    pub fn chunk_delay(&self, path: &str, d: Option<Duration>) {
        self.with(path, |s| s.chunk_delay = d);
    }

    /// Every request so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().expect("hits lock").clone()
    }

    /// The requests for `path`.
    pub fn hits_for(&self, path: &str) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| h.path == path).collect()
    }

    pub fn clear_hits(&self) {
        self.shared.hits.lock().expect("hits lock").clear();
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, shared: &Shared) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers: HashMap<String, String> = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let range_start = headers
        .get("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<u64>().ok());
    let mut hit = Hit {
        path: path.clone(),
        range_start,
        if_range: headers.get("if-range").cloned(),
        authorization: headers.get("authorization").cloned(),
        accept_encoding: headers.get("accept-encoding").cloned(),
        status: 0,
        sent: 0,
    };
    // Decide under the lock, write without it.
    let plan = {
        let mut files = shared.files.lock().expect("files lock");
        match files.get_mut(&path) {
            None => Err(404),
            Some(f) => {
                if f.new_etag_each_request {
                    let n = shared.hits.lock().expect("hits lock").len();
                    f.etag = Some(format!("\"v{}\"", n + 100));
                }
                if !f.fail_next.is_empty() {
                    Err(f.fail_next.remove(0))
                } else if f.auth.is_some() && f.auth != hit.authorization {
                    Err(401)
                } else {
                    Ok(f.clone())
                }
            }
        }
    };
    let mut out = conn;
    let f = match plan {
        Err(status) => {
            hit.status = status;
            let extra = if status == 401 {
                "WWW-Authenticate: Basic realm=\"test\"\r\n"
            } else {
                ""
            };
            let _ = write!(
                out,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\n{extra}Connection: close\r\n\r\n"
            );
            record(shared, hit);
            return;
        }
        Ok(f) => f,
    };
    let len = f.body.len() as u64;
    let validators_match = match hit.if_range.as_deref() {
        None => true,
        Some(v) => f.etag.as_deref() == Some(v) || f.last_modified.as_deref() == Some(v),
    };
    let mut head = String::new();
    if let Some(e) = &f.etag {
        head.push_str(&format!("ETag: {e}\r\n"));
    }
    if let Some(lm) = &f.last_modified {
        head.push_str(&format!("Last-Modified: {lm}\r\n"));
    }
    let (status, start) = match range_start {
        Some(n) if !f.ignore_range && validators_match => {
            if n >= len {
                hit.status = 416;
                let _ = write!(
                    out,
                    "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\n{head}Connection: close\r\n\r\n"
                );
                record(shared, hit);
                return;
            }
            head.push_str(&format!("Content-Range: bytes {n}-{}/{len}\r\n", len - 1));
            (206, n)
        }
        _ => (200, 0),
    };
    hit.status = status;
    let reason = if status == 206 {
        "Partial Content"
    } else {
        "OK"
    };
    let _ = write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\n{head}Connection: close\r\n\r\n",
        len - start
    );
    if method != "HEAD" {
        let end = f.cut_at.map_or(len, |c| c.clamp(start, len));
        let mut pos = start;
        while pos < end {
            let next = (pos + 64 * 1024).min(end);
            if out.write_all(&f.body[pos as usize..next as usize]).is_err() {
                break;
            }
            hit.sent += next - pos;
            pos = next;
            if let Some(d) = f.chunk_delay {
                std::thread::sleep(d);
            }
        }
        let _ = out.flush();
    }
    record(shared, hit);
    let _ = out.shutdown(Shutdown::Both);
}

fn record(shared: &Shared, hit: Hit) {
    shared.hits.lock().expect("hits lock").push(hit);
}

/// Deterministic pseudo-random bytes (xorshift), so tests need no data files.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The Python that has pyftpdlib: `CHECKFLOW_TEST_PYTHON` (set by
/// scripts/test.sh), else the venv that script creates. `None` (with the
/// reason) when there is none, so FTP tests can skip with a clear message.
pub fn ftp_python() -> Result<PathBuf, String> {
    let candidates: Vec<PathBuf> = match std::env::var_os("CHECKFLOW_TEST_PYTHON") {
        Some(p) => vec![PathBuf::from(p)],
        None => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cache/checkflow/venv/bin/python"))
            .into_iter()
            .collect(),
    };
    for py in &candidates {
        let ok = Command::new(py)
            .args(["-c", "import pyftpdlib"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Ok(py.clone());
        }
    }
    Err(format!(
        "no Python with pyftpdlib (tried {:?}); run scripts/test.sh, or set CHECKFLOW_TEST_PYTHON",
        candidates
    ))
}

/// The FTP server the tests run: pyftpdlib with one user `etl`/`secret`
/// whose home is the served folder, passive ports 40000-40100, and optionally
/// throttled or without `REST`.
const FTP_SCRIPT: &str = r#"
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, ThrottledDTPHandler
from pyftpdlib.servers import FTPServer
port, root, rest, rate = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
auth = DummyAuthorizer()
auth.add_user("etl", "secret", root, perm="elr")
class Handler(FTPHandler):
    pass
Handler.authorizer = auth
Handler.passive_ports = range(40000, 40101)
if not rest:
    Handler.proto_cmds = {k: v for k, v in FTPHandler.proto_cmds.items() if k != "REST"}
if rate > 0:
    class Dtp(ThrottledDTPHandler):
        pass
    Dtp.write_limit = rate
    Handler.dtp_handler = Dtp
FTPServer(("127.0.0.1", port), Handler).serve_forever()
"#;

/// A pyftpdlib server on 127.0.0.1, killed when dropped.
pub struct FtpServer {
    child: Child,
    pub port: u16,
}

/// Options for [`FtpServer::start`].
#[derive(Clone, Copy, Default)]
pub struct FtpOptions {
    /// Refuse `REST` (answer 500), as some servers do.
    pub no_rest: bool,
    /// Bytes per second sent per transfer (0: unlimited).
    pub rate: u64,
}

impl FtpServer {
    /// Starts it serving `root`; `Err` says why FTP tests must be skipped.
    pub fn start(root: &Path, opts: FtpOptions) -> Result<FtpServer, String> {
        let python = ftp_python()?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let child = Command::new(&python)
            .arg("-c")
            .arg(FTP_SCRIPT)
            .arg(port.to_string())
            .arg(root)
            .arg(if opts.no_rest { "0" } else { "1" })
            .arg(opts.rate.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
        let mut server = FtpServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("pyftpdlib exited at start: {status}"));
            }
            if Instant::now() > deadline {
                return Err("pyftpdlib did not start listening within 15 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ftp://127.0.0.1:PORT/name` (no credentials).
    pub fn url(&self, name: &str) -> String {
        format!("ftp://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for FtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
