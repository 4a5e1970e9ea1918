//! Where a download comes from: the URL split into its parts, the
//! credentials (from the URL or a connection), and the URL as it may be shown
//! (never with a password in it).

use checkflow_model::ConnectionDef;
use std::fmt;

/// The protocols a download speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
    Ftp,
}

impl Scheme {
    fn parse(s: &str) -> Option<Scheme> {
        match s.to_ascii_lowercase().as_str() {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            "ftp" => Some(Scheme::Ftp),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Ftp => "ftp",
        }
    }

    /// The connection kind that may carry credentials for this scheme.
    pub(crate) fn connection_kind(self) -> &'static str {
        match self {
            Scheme::Http | Scheme::Https => "http",
            Scheme::Ftp => "ftp",
        }
    }
}

/// A user name and password. `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, ***)", self.user)
    }
}

/// A parsed source URL.
#[derive(Clone, Debug)]
pub(crate) struct Source {
    pub(crate) scheme: Scheme,
    /// Host as written (IPv6 literals keep their brackets).
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    /// Path and query, starting with `/`, still percent-encoded.
    pub(crate) path: String,
    pub(crate) credentials: Option<Credentials>,
}

impl Source {
    /// The URL without credentials: what is requested, remembered and shown.
    pub(crate) fn public_url(&self) -> String {
        match self.port {
            Some(p) => format!("{}://{}:{p}{}", self.scheme.name(), self.host, self.path),
            None => format!("{}://{}{}", self.scheme.name(), self.host, self.path),
        }
    }

    /// The port to connect to (the scheme's default if the URL gives none).
    pub(crate) fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(match self.scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
            Scheme::Ftp => 21,
        })
    }

    /// The password, if any: every message is scrubbed of it.
    pub(crate) fn secret(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.password.as_str())
    }

    /// Replaces the password (and any percent-encoded form of it) in `text`
    /// by `***`: the last line of defence, applied to every message.
    pub(crate) fn redact(&self, text: &str) -> String {
        redact(text, self.secret())
    }
}

/// Replaces `secret` in `text` by `***`. Very short secrets are left alone:
/// blanking every "a" would make messages unreadable, and such a secret is
/// never written into a message by this module in the first place.
pub(crate) fn redact(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if s.len() >= 3 => {
            let mut out = text.replace(s, "***");
            let encoded = percent_encode(s);
            if encoded != s {
                out = out.replace(&encoded, "***");
            }
            out
        }
        _ => text.to_string(),
    }
}

/// Whether a written URL names a scheme (`xxx://`).
pub(crate) fn has_scheme(url: &str) -> bool {
    url.split_once("://")
        .is_some_and(|(s, _)| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Checks a URL as written (at validation time): its scheme must be one a
/// download speaks. `Err` holds a message without any password.
pub(crate) fn check_scheme(url: &str) -> Result<Option<Scheme>, String> {
    let Some((scheme, _)) = url.split_once("://") else {
        return Ok(None);
    };
    Scheme::parse(scheme)
        .map(Some)
        .ok_or_else(|| format!("unsupported URL scheme \"{scheme}\" (expected http, https or ftp)"))
}

/// Parses `url`, completing it from `conn` when it has no scheme (a path on
/// the connection's server), and takes credentials from the URL or else from
/// the connection (its password from the environment variable it names).
pub(crate) fn resolve(url: &str, conn: Option<&ConnectionDef>) -> Result<Source, String> {
    let full = if has_scheme(url) {
        url.to_string()
    } else {
        let Some(c) = conn else {
            return Err(format!(
                "URL \"{}\" has no scheme (http://, https:// or ftp://) and the task has no connection to complete it",
                redact_userinfo(url)
            ));
        };
        base_of(c)? + url.trim_start_matches('/')
    };
    let mut src = parse(&full)?;
    if let Some(c) = conn {
        let kind = c.kind.value.as_str();
        if kind != src.scheme.connection_kind() {
            return Err(format!(
                "a {kind} connection cannot be used for {} (a {} URL)",
                src.public_url(),
                src.scheme.name()
            ));
        }
        if src.credentials.is_none()
            && let Some(user) = &c.user
        {
            let password = match &c.password_env {
                Some(var) => std::env::var(var).map_err(|e| match e {
                    std::env::VarError::NotPresent => {
                        format!("environment variable {var} (the connection's password) is not set")
                    }
                    std::env::VarError::NotUnicode(_) => format!(
                        "environment variable {var} (the connection's password) is not valid UTF-8"
                    ),
                })?,
                None => String::new(),
            };
            src.credentials = Some(Credentials {
                user: user.clone(),
                password,
            });
        }
    }
    Ok(src)
}

/// `kind://host[:port]/` or the connection's `url` (or the environment
/// variable `url_env` names), ending with `/`.
fn base_of(c: &ConnectionDef) -> Result<String, String> {
    let url = match (&c.url, &c.url_env) {
        (Some(u), _) => Some(u.clone()),
        (None, Some(var)) => {
            let v = crate::db::url_from_env(var)?;
            // Its value may carry a password: a bad one is described, not shown.
            if !has_scheme(&v) {
                return Err(format!(
                    "the environment variable {var} (the connection's `url_env`) does not hold a URL with a scheme (http://, https:// or ftp://)"
                ));
            }
            Some(v)
        }
        (None, None) => None,
    };
    if let Some(mut u) = url {
        if !u.ends_with('/') {
            u.push('/');
        }
        return Ok(u);
    }
    let Some(host) = &c.host else {
        return Err(
            "the connection has neither `host` nor `url` (or `url_env`) to complete a URL path"
                .into(),
        );
    };
    Ok(match c.port {
        Some(p) => format!("{}://{host}:{p}/", c.kind.value),
        None => format!("{}://{host}/", c.kind.value),
    })
}

/// Splits `scheme://[user[:pass]@]host[:port][/path]`.
pub(crate) fn parse(url: &str) -> Result<Source, String> {
    let shown = redact_userinfo(url);
    let bad = |why: &str| format!("bad URL \"{shown}\": {why}");
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("no scheme (http://, https:// or ftp://)"))?;
    let scheme = Scheme::parse(scheme)
        .ok_or_else(|| bad("unsupported scheme (expected http, https or ftp)"))?;
    // A fragment is never sent to the server.
    let rest = rest.split('#').next().unwrap_or_default();
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("spaces and control characters must be percent-encoded"));
    }
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = split_host_port(hostport).ok_or_else(|| bad("bad host or port"))?;
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let credentials = match userinfo {
        None => None,
        Some(u) => {
            let (user, pass) = u.split_once(':').unwrap_or((u, ""));
            let user = percent_decode(user).ok_or_else(|| bad("bad user name encoding"))?;
            let password = percent_decode(pass).ok_or_else(|| bad("bad password encoding"))?;
            Some(Credentials { user, password })
        }
    };
    Ok(Source {
        scheme,
        host: host.to_string(),
        port,
        path,
        credentials,
    })
}

fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if s.starts_with('[') {
        // [v6]:port
        let end = s.find(']')?;
        let host = &s[..=end];
        return match &s[end + 1..] {
            "" => Some((host, None)),
            p => Some((host, Some(p.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match s.rsplit_once(':') {
        Some((h, "")) => Some((h, None)),
        Some((h, p)) => Some((h, Some(p.parse().ok()?))),
        None => Some((s, None)),
    }
}

/// The URL with any `user:password@` shown as `user:***@`, for messages
/// about a URL that could not be parsed.
pub(crate) fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{}", &rest[end..])
        }
        None => url.to_string(),
    }
}

/// Decodes `%XX` escapes; `None` if an escape is malformed or the result is not UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_credentials_port_and_path() {
        let s = parse("ftp://etl:s%40cret@127.0.0.1:2121/pub/a%20b.csv").unwrap();
        assert_eq!(s.scheme, Scheme::Ftp);
        assert_eq!(s.host, "127.0.0.1");
        assert_eq!(s.port, Some(2121));
        assert_eq!(s.path, "/pub/a%20b.csv");
        let c = s.credentials.clone().unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("etl", "s@cret"));
        assert_eq!(s.public_url(), "ftp://127.0.0.1:2121/pub/a%20b.csv");
        assert!(!format!("{s:?}").contains("cret"));
    }

    #[test]
    fn host_without_path_and_ipv6() {
        let s = parse("http://example.com?x=1").unwrap();
        assert_eq!((s.host.as_str(), s.path.as_str()), ("example.com", "/?x=1"));
        let s = parse("https://[::1]:8443/f").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("[::1]", Some(8443)));
    }

    #[test]
    fn bad_urls_never_show_the_password() {
        for u in [
            "gopher://u:hunter2@h/x",
            "http://u:hunter2@/x",
            "http://u:hunter2@h:99999/x",
        ] {
            let e = parse(u).unwrap_err();
            assert!(!e.contains("hunter2"), "{e}");
            assert!(e.contains("u:***@"), "{e}");
        }
    }

    #[test]
    fn redacts_plain_and_encoded_secrets() {
        assert_eq!(
            redact("x p@ss y p%40ss", Some("p@ss")),
            "x *** y ***".to_string()
        );
        assert_eq!(redact("abc", Some("a")), "abc");
    }

    #[test]
    fn a_path_is_completed_from_the_connection() {
        let yaml = "id: 0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11\nname: p\nconnections:\n  ftp: { kind: ftp, host: 127.0.0.1, port: 2121, user: etl, password_env: CHECKFLOW_TEST_UNSET_PASSWORD_VAR }\ntasks: []\n";
        let pkg = checkflow_model::parse(std::path::Path::new("p.yaml"), yaml).unwrap();
        let conn = pkg.connections["ftp"].value.clone();
        let e = resolve("/pub/x", Some(&conn)).unwrap_err();
        assert!(e.contains("CHECKFLOW_TEST_UNSET_PASSWORD_VAR"), "{e}");
        let s = resolve("ftp://u:pw1@h/x", Some(&conn)).unwrap();
        assert_eq!(s.credentials.unwrap().user, "u", "the URL's own user wins");
        let e = resolve("http://h/x", Some(&conn)).unwrap_err();
        assert!(e.contains("ftp connection"), "{e}");
    }
}
