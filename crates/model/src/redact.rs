//! Connection strings made safe to show: the password hidden.

/// Hides the password of a PostgreSQL URL (`postgres://u:***@h/db`, or a
/// `password=` in its query string) or of a key=value connection string
/// (`password=***`, its value quoted or not, with `\'` inside quotes).
/// Anything else is left as written.
pub fn redact_url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let auth = &rest[..auth_end];
        let mut out = url[..scheme_end + 3].to_string();
        match auth.rfind('@') {
            Some(at) => {
                let user = &auth[..at];
                match user.find(':') {
                    Some(c) => {
                        out.push_str(&user[..c]);
                        out.push_str(":***");
                    }
                    None => out.push_str(user),
                }
                out.push_str(&auth[at..]);
            }
            None => out.push_str(auth),
        }
        out.push_str(&redact_query(&rest[auth_end..]));
        out
    } else {
        redact_key_values(url)
    }
}

fn redact_query(tail: &str) -> String {
    let Some(q) = tail.find('?') else {
        return tail.to_string();
    };
    let parts: Vec<String> = tail[q + 1..]
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{}?{}", &tail[..q], parts.join("&"))
}

fn redact_key_values(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = find_ci(rest, "password") {
        let after = &rest[i + 8..];
        let trimmed = after.trim_start();
        if !trimmed.starts_with('=') {
            out.push_str(&rest[..i + 8]);
            rest = after;
            continue;
        }
        out.push_str(&rest[..i + 8]);
        out.push_str("=***");
        let value = trimmed[1..].trim_start();
        let end = if let Some(v) = value.strip_prefix('\'') {
            let mut j = 0;
            let b = v.as_bytes();
            while j < b.len() && b[j] != b'\'' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            1 + (j + 1).min(v.len())
        } else {
            value.find(char::is_whitespace).unwrap_or(value.len())
        };
        rest = &value[end.min(value.len())..];
    }
    out.push_str(rest);
    out
}

fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    hay.to_ascii_lowercase().find(needle)
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_and_key_value_strings_hide_their_passwords() {
        assert_eq!(
            redact_url("postgres://etl:s3cret@db.example:5432/dw?sslmode=disable"),
            "postgres://etl:***@db.example:5432/dw?sslmode=disable"
        );
        assert_eq!(
            redact_url("postgres://u:pw@h:1/d"),
            "postgres://u:***@h:1/d"
        );
        assert_eq!(redact_url("postgresql://etl@h/dw"), "postgresql://etl@h/dw");
        assert_eq!(
            redact_url("postgres://h/dw?user=a&password=pw1"),
            "postgres://h/dw?user=a&password=***"
        );
        assert_eq!(
            redact_url("host=h user=etl password='a b' dbname=dw"),
            "host=h user=etl password=*** dbname=dw"
        );
        assert_eq!(
            redact_url("host=h password=pw user=u"),
            "host=h password=*** user=u"
        );
    }

    #[test]
    fn a_quoted_password_with_an_escaped_quote_is_hidden_whole() {
        let shown = redact_url(r"host=h password='a\'b c' user=u");
        assert_eq!(shown, "host=h password=*** user=u");
        assert!(!shown.contains("b c"), "{shown}");
    }

    #[test]
    fn a_password_holding_an_at_sign_is_hidden_whole() {
        assert_eq!(redact_url("postgres://u:p@ss@h/d"), "postgres://u:***@h/d");
    }
}
