//! The Download task: fetches an `http://`, `https://` or `ftp://` URL into a
//! file, resuming a partial file left by an earlier attempt or run.
//!
//! The bytes go to `<to>.part`; a small sidecar `<to>.part.meta` remembers
//! which URL and which version of it (HTTP: a strong ETag or Last-Modified;
//! FTP: size and modification time) the partial bytes belong to, so a resume
//! never splices two versions of a file together. When the transfer is
//! complete (and `sha256` matches, if given) the part file is synced and
//! renamed into place. The protocols live in [`http`] and [`ftp`]; this module
//! owns the files, the retries and the progress reports.
//!
//! The part file and the sidecar are never opened through a symbolic link
//! (a link at either name is refused and its target left alone), and a
//! rename moves only the file this task wrote. A link at `to` counts as a
//! file there: `overwrite: false` refuses it, `overwrite: true` replaces the
//! link itself by the rename.
//!
//! Passwords never appear in a log line or an error: URLs are shown without
//! their credentials and every message is scrubbed of the password.

mod ftp;
mod http;
mod source;

#[cfg(test)]
mod tests;

use checkflow_files::Links;
use checkflow_model::{ConnectionDef, TaskDef, pos_of};
use checkflow_plan::{Action, BuildCx, LogLevel, RunCx, TaskError, TaskType};
use sha2::{Digest, Sha256};
use source::Source;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) struct DownloadType;

/// Waits before the 2nd, 3rd and 4th attempt of a transfer that failed
/// without moving forward. Short on purpose: the executor's `retries` is the
/// place for long waits.
const BACKOFF: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// How often progress is reported at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// How long one read may wait for data before the connection counts as
/// stalled (a transient failure, retried with a resume).
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

impl TaskType for DownloadType {
    fn name(&self) -> &'static str {
        "download"
    }

    fn fields(&self) -> &'static [&'static str] {
        &["url", "to", "connection", "resume", "sha256", "overwrite"]
    }

    fn build(&self, def: &TaskDef, cx: &mut BuildCx<'_>) -> Option<Arc<dyn Action>> {
        let data = def.data();
        let mut ok = true;
        let url = data.url.clone().unwrap_or_default();
        // A property expression may give the URL instead (docs/semantics.md §1.3 `expressions`).
        let url_by_expr = def.set_by_expression("url");
        if url.is_empty() && !url_by_expr {
            cx.missing("url", "download");
            ok = false;
        }
        let to = match &def.file_op().to {
            Some(t) if !t.value.is_empty() => Some(t.value.clone()),
            Some(t) => {
                cx.error_at(pos_of(t), "`to` is empty");
                None
            }
            None => {
                cx.missing("to", "download");
                None
            }
        };
        let connection = match &data.connection {
            Some(name) => match cx.connection(&name.value, &["ftp", "http"]) {
                Some(c) => Some(c),
                None => {
                    ok = false;
                    None
                }
            },
            None => None,
        };
        // A literal URL is checked now; a property expression may still replace it at run time.
        match source::check_scheme(&url) {
            Err(e) => {
                cx.error(e);
                ok = false;
            }
            Ok(None) if !url.is_empty() && connection.is_none() => {
                cx.error(format!(
                    "URL \"{}\" needs a scheme (http://, https:// or ftp://), or a `connection` whose server it is a path on",
                    source::redact_userinfo(&url)
                ));
                ok = false;
            }
            Ok(Some(scheme)) => {
                if let Some(c) = &connection
                    && c.kind.value != scheme.connection_kind()
                {
                    cx.error(format!(
                        "connection of kind {} cannot carry credentials for a {} URL",
                        c.kind.value,
                        scheme.connection_kind()
                    ));
                    ok = false;
                }
            }
            Ok(None) => {}
        }
        let sha256 = match &data.sha256 {
            Some(h) if h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()) => {
                Some(h.to_ascii_lowercase())
            }
            Some(_) => {
                cx.error("`sha256` must be 64 hexadecimal digits");
                ok = false;
                None
            }
            None => None,
        };
        if !ok {
            return None;
        }
        Some(Arc::new(DownloadAction {
            url,
            to: to?,
            connection,
            resume: data.resume.unwrap_or(true),
            sha256,
            overwrite: def.file_op().overwrite.unwrap_or(true),
        }))
    }
}

/// A validated download.
pub(crate) struct DownloadAction {
    url: String,
    to: String,
    connection: Option<ConnectionDef>,
    resume: bool,
    sha256: Option<String>,
    overwrite: bool,
}

impl Action for DownloadAction {
    fn run(&self, cx: &mut dyn RunCx) -> Result<(), TaskError> {
        let url = cx.prop_string("url", &self.url);
        let to = cx.prop_path("to", &self.to);
        // Nothing is known about the source yet: scrub the whole written URL's password.
        let src = source::resolve(&url, self.connection.as_ref())
            .map_err(|e| TaskError::new(scrub_url_secret(&e, &url)))?;
        let cx: &dyn RunCx = cx;
        self.fetch(&src, &to, cx)
            .map_err(|e| TaskError::new(src.redact(&e)))
    }
}

/// Removes a password that `url` carries from `text` (before the URL is parsed).
fn scrub_url_secret(text: &str, url: &str) -> String {
    let secret = source::parse(url)
        .ok()
        .and_then(|s| s.credentials.map(|c| c.password));
    source::redact(text, secret.as_deref())
}

impl DownloadAction {
    fn fetch(&self, src: &Source, to: &Path, cx: &dyn RunCx) -> Result<(), String> {
        let shown = src.public_url();
        if to.is_dir() {
            return Err(format!("{} is a folder, not a file", to.display()));
        }
        // A link at `to` (even one to nothing) is something there.
        if std::fs::symlink_metadata(to).is_ok() && !self.overwrite {
            // The file may be there from an earlier attempt that renamed it into
            // place and was stopped before its success was recorded: with a
            // hash to check, that is not an error.
            if let Some(want) = &self.sha256
                && sha256_of(to, Links::Follow).ok().as_deref() == Some(want.as_str())
            {
                cx.log(
                    LogLevel::Info,
                    &format!(
                        "{} is already there with the expected SHA-256; not downloaded again",
                        to.display()
                    ),
                );
                return Ok(());
            }
            return Err(format!(
                "{} already exists (set overwrite: true to replace it)",
                to.display()
            ));
        }
        if let Some(parent) = to.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create folder {}: {e}", parent.display()))?;
        }
        let mut part = Part::open(to, self.resume)?;
        if part.len > 0 {
            cx.log(
                LogLevel::Info,
                &format!(
                    "found {} partial bytes of {shown} in {}",
                    part.len,
                    part.path.display()
                ),
            );
        }
        let session = Session::new(src);
        let mut failures = 0;
        loop {
            if cx.cancel_token().is_cancelled() {
                return Err(cancelled(&part));
            }
            let before = part.len;
            let result = session.attempt(src, &mut part, cx);
            match result {
                Ok(()) => break,
                Err(Failure::Cancelled) => return Err(cancelled(&part)),
                Err(Failure::Permanent(e)) => return Err(format!("cannot download {shown}: {e}")),
                Err(Failure::Transient(e)) => {
                    // An attempt that moved forward does not use up a retry.
                    if part.len > before {
                        failures = 0;
                    }
                    let Some(wait) = BACKOFF.get(failures) else {
                        return Err(format!(
                            "cannot download {shown}: {e} (gave up after {} attempts; {} bytes kept in {} for the next run)",
                            failures + 1,
                            part.len,
                            part.path.display()
                        ));
                    };
                    failures += 1;
                    cx.log(
                        LogLevel::Warn,
                        &format!(
                            "{shown}: {e}; retrying in {} ms (with {} bytes kept)",
                            wait.as_millis(),
                            part.len
                        ),
                    );
                    if !sleep(*wait, cx) {
                        return Err(cancelled(&part));
                    }
                }
            }
        }
        if let Some(want) = &self.sha256 {
            let got = sha256_of(&part.path, Links::Refuse)
                .map_err(|e| format!("cannot read {}: {e}", part.path.display()))?;
            if &got != want {
                part.discard();
                return Err(format!(
                    "SHA-256 mismatch for {shown}: expected {want}, got {got} (the partial file was removed)"
                ));
            }
        }
        let bytes = part.len;
        part.commit(to)?;
        cx.log(
            LogLevel::Info,
            &format!("downloaded {shown} to {} ({bytes} bytes)", to.display()),
        );
        Ok(())
    }
}

fn cancelled(part: &Part) -> String {
    format!(
        "cancelled; {} bytes kept in {} for the next run",
        part.len,
        part.path.display()
    )
}

/// Sleeps up to `d`, waking early on cancellation; `false` if cancelled.
fn sleep(d: Duration, cx: &dyn RunCx) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if cx.cancel_token().is_cancelled() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50).min(end - Instant::now()));
    }
    !cx.cancel_token().is_cancelled()
}

/// The SHA-256 of a regular file, as lowercase hex.
fn sha256_of(path: &Path, links: Links) -> std::io::Result<String> {
    let mut f = checkflow_files::open_read(path, links)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Why an attempt failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Worth another try (network trouble, a 5xx, a cut connection).
    Transient(String),
    /// Trying again will not help (404, refused login, a local file error).
    Permanent(String),
    /// The task was asked to stop.
    Cancelled,
}

/// One connection setup per task run, shared by its attempts.
enum Session {
    Http(http::Client),
    Ftp,
}

impl Session {
    fn new(src: &Source) -> Session {
        match src.scheme {
            source::Scheme::Http | source::Scheme::Https => Session::Http(http::Client::new()),
            source::Scheme::Ftp => Session::Ftp,
        }
    }

    fn attempt(&self, src: &Source, part: &mut Part, cx: &dyn RunCx) -> Result<(), Failure> {
        match self {
            Session::Http(c) => c.attempt(src, part, cx),
            Session::Ftp => ftp::attempt(src, part, cx),
        }
    }
}

/// What the partial bytes are a prefix of: kept in `<to>.part.meta`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    /// The URL without credentials.
    pub(crate) url: String,
    /// Identifies the version of the remote file (HTTP: `etag "x"` or
    /// `last-modified ...`; FTP: size and modification time).
    pub(crate) validator: Option<String>,
    /// The full length, when known.
    pub(crate) total: Option<u64>,
}

impl Meta {
    fn parse(text: &str) -> Option<Meta> {
        let mut m = Meta::default();
        let mut lines = text.lines();
        if lines.next()? != "checkflow-download 1" {
            return None;
        }
        for line in lines {
            let (k, v) = line.split_once(": ")?;
            match k {
                "url" => m.url = v.to_string(),
                "validator" => m.validator = Some(v.to_string()),
                "total" => m.total = Some(v.parse().ok()?),
                _ => {}
            }
        }
        (!m.url.is_empty()).then_some(m)
    }

    fn render(&self) -> String {
        let mut s = format!("checkflow-download 1\nurl: {}\n", self.url);
        if let Some(v) = &self.validator {
            s.push_str(&format!("validator: {v}\n"));
        }
        if let Some(t) = self.total {
            s.push_str(&format!("total: {t}\n"));
        }
        s
    }
}

/// The partial file `<to>.part` (locked while open) and its sidecar.
pub(crate) struct Part {
    pub(crate) path: PathBuf,
    meta_path: PathBuf,
    file: File,
    /// Bytes in the file: where the transfer resumes.
    pub(crate) len: u64,
    /// The sidecar's content (`None`: no usable sidecar).
    pub(crate) meta: Option<Meta>,
}

impl Part {
    fn open(to: &Path, resume: bool) -> Result<Part, String> {
        let mut name = to.as_os_str().to_owned();
        name.push(".part");
        let path = PathBuf::from(name);
        let mut meta_name = path.as_os_str().to_owned();
        meta_name.push(".meta");
        let meta_path = PathBuf::from(meta_name);
        let file = checkflow_files::open(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
            &path,
            Links::Refuse,
        )
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // Two tasks (or two runs) writing one part file would interleave bytes.
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(format!(
                    "another download is writing {} at the moment",
                    path.display()
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()));
            }
        }
        let meta = checkflow_files::read_to_string(&meta_path, Links::Refuse)
            .ok()
            .and_then(|t| Meta::parse(&t));
        let mut part = Part {
            len: 0,
            path,
            meta_path,
            file,
            meta,
        };
        part.len = part
            .file
            .seek(SeekFrom::End(0))
            .map_err(|e| part.io("read", e))?;
        if !resume || part.meta.is_none() {
            // Without its sidecar nobody knows what the bytes are a prefix of.
            part.restart()?;
        }
        Ok(part)
    }

    fn io(&self, what: &str, e: std::io::Error) -> String {
        format!("cannot {what} {}: {e}", self.path.display())
    }

    /// Empties the part file and forgets the sidecar: the next bytes start the file.
    pub(crate) fn restart(&mut self) -> Result<(), String> {
        self.file.set_len(0).map_err(|e| self.io("truncate", e))?;
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| self.io("seek in", e))?;
        self.len = 0;
        self.meta = None;
        match std::fs::remove_file(&self.meta_path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot delete {}: {e}", self.meta_path.display())),
        }
    }

    /// Records what the bytes about to be written belong to. Written (and
    /// synced) before them, so partial bytes never lack their sidecar.
    pub(crate) fn set_meta(&mut self, meta: Meta) -> Result<(), String> {
        if self.meta.as_ref() == Some(&meta) {
            return Ok(());
        }
        let mut tmp_name = self.meta_path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let io = |e: std::io::Error| format!("cannot write {}: {e}", self.meta_path.display());
        {
            let mut f = checkflow_files::open(
                OpenOptions::new().write(true).create(true).truncate(true),
                &tmp,
                Links::Refuse,
            )
            .map_err(io)?;
            f.write_all(meta.render().as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
            if !checkflow_files::same_file(&f, &tmp) {
                return Err(io(std::io::Error::other(format!(
                    "{} was replaced while it was written",
                    tmp.display()
                ))));
            }
        }
        std::fs::rename(&tmp, &self.meta_path).map_err(io)?;
        self.meta = Some(meta);
        Ok(())
    }

    /// The remembered validator, if the sidecar is for `url`.
    pub(crate) fn validator_for(&self, url: &str) -> Option<&str> {
        self.meta
            .as_ref()
            .filter(|m| m.url == url)
            .and_then(|m| m.validator.as_deref())
    }

    /// Copies `r` to the end of the part file until it ends, reporting
    /// progress and stopping promptly on cancellation. Bytes read are always
    /// written, whatever ends the copy, so the next attempt resumes after them.
    pub(crate) fn copy_from(
        &mut self,
        r: &mut dyn Read,
        total: Option<u64>,
        cx: &dyn RunCx,
    ) -> Result<(), CopyError> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut last = Instant::now();
        cx.progress(self.len, total, "bytes");
        loop {
            if cx.cancel_token().is_cancelled() {
                return Err(CopyError::Cancelled);
            }
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CopyError::Read(e)),
            };
            self.file
                .write_all(&buf[..n])
                .map_err(|e| CopyError::Write(self.io("write", e)))?;
            self.len += n as u64;
            if last.elapsed() >= PROGRESS_EVERY {
                last = Instant::now();
                cx.progress(self.len, total, "bytes");
            }
        }
        cx.progress(self.len, total, "bytes");
        Ok(())
    }

    /// Deletes the part file and its sidecar.
    fn discard(self) {
        let Part {
            path,
            meta_path,
            file,
            ..
        } = self;
        // Only the part file itself: not a link or a file put in its place.
        // (Checked while open, removed once closed: Windows will not remove
        // an open file.)
        let ours = checkflow_files::same_file(&file, &path);
        drop(file);
        if ours {
            let _ = std::fs::remove_file(&path);
        }
        let _ = std::fs::remove_file(&meta_path);
    }

    /// Syncs the part file, renames it to `to` and syncs the folder, then
    /// deletes the sidecar.
    fn commit(self, to: &Path) -> Result<(), String> {
        self.file.sync_all().map_err(|e| self.io("sync", e))?;
        // The rename moves whatever `<to>.part` names now: it must be the
        // file written, not a link or another file put in its place.
        if !checkflow_files::same_file(&self.file, &self.path) {
            return Err(format!(
                "cannot rename {}: it is no longer the file downloaded into (it was replaced)",
                self.path.display()
            ));
        }
        // Closed (and so unlocked) first: Windows will not rename an open file.
        let Part {
            path,
            meta_path,
            file,
            ..
        } = self;
        drop(file);
        // The steps and why a crash between them is safe:
        // docs/design/commit-protocols.md §5.
        if checkflow_plan::failpoint("download-before-rename") {
            return Err(format!(
                "cannot rename {} to {}: refused (test failpoint)",
                path.display(),
                to.display()
            ));
        }
        std::fs::rename(&path, to)
            .map_err(|e| format!("cannot rename {} to {}: {e}", path.display(), to.display()))?;
        #[cfg(unix)]
        if let Some(dir) = to.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        let _ = std::fs::remove_file(&meta_path);
        checkflow_plan::failpoint("download-after-rename");
        Ok(())
    }
}

/// Why [`Part::copy_from`] stopped early.
pub(crate) enum CopyError {
    /// The source failed (the connection broke, a read timed out).
    Read(std::io::Error),
    /// The part file could not be written.
    Write(String),
    Cancelled,
}

impl CopyError {
    /// As an attempt's failure: a read error is transient, a write error is not.
    pub(crate) fn into_failure(self, done: u64, total: Option<u64>) -> Failure {
        match self {
            CopyError::Read(e) => Failure::Transient(match total {
                Some(t) => format!("connection lost after {done} of {t} bytes: {e}"),
                None => format!("connection lost after {done} bytes: {e}"),
            }),
            CopyError::Write(e) => Failure::Permanent(e),
            CopyError::Cancelled => Failure::Cancelled,
        }
    }
}
