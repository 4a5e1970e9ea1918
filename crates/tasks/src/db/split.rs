//! Splits an `sql:` text into statements at the semicolons that end them —
//! not those inside quotes (`'...'`, `"..."`, PostgreSQL `$tag$...$tag$`),
//! comments (`--`, `/* */`) or an SQLite trigger body (`BEGIN ... END`).

/// The statements of `sql`, trimmed, without their final `;`; empty ones (only
/// blanks or comments) are left out.
pub(crate) fn split_statements(sql: &str) -> Vec<String> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut depth = 0i32; // trigger BEGIN ... END nesting
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' | b'`' => {
                let q = b[i];
                i += 1;
                while i < b.len() {
                    if b[i] == q {
                        if i + 1 < b.len() && b[i + 1] == q {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut nest = 1;
                i += 2;
                while i < b.len() && nest > 0 {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        nest += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        nest -= 1;
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
            }
            b'$' if dollar_tag(&b[i..]).is_some() && !prev_is_word(b, i) => {
                let tag = dollar_tag(&b[i..]).unwrap_or(1);
                let tag_text = &b[i..i + tag];
                i += tag;
                while i < b.len() && !b[i..].starts_with(tag_text) {
                    i += 1;
                }
                i += tag;
            }
            b';' if depth == 0 => {
                push(&mut out, &sql[start..i]);
                i += 1;
                start = i;
            }
            c if c.is_ascii_alphabetic() && !prev_is_word(b, i) => {
                let mut j = i;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                let word = &sql[i..j];
                if word.eq_ignore_ascii_case("BEGIN") && in_trigger(&sql[start..i]) {
                    depth += 1;
                } else if word.eq_ignore_ascii_case("CASE") && depth > 0 {
                    // `CASE ... END` inside a trigger body ends with END too.
                    depth += 1;
                } else if word.eq_ignore_ascii_case("END") && depth > 0 {
                    depth -= 1;
                }
                i = j;
            }
            _ => i += 1,
        }
    }
    push(&mut out, &sql[start.min(sql.len())..]);
    out
}

fn push(out: &mut Vec<String>, stmt: &str) {
    let t = stmt.trim();
    if !only_comments(t) {
        out.push(t.to_string());
    }
}

fn only_comments(s: &str) -> bool {
    let mut rest = s.trim_start();
    loop {
        if rest.is_empty() {
            return true;
        }
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            return false;
        }
    }
}

fn prev_is_word(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b'$')
}

/// The length of a dollar-quote opener (`$$`, `$body$`) at the start of `b`.
fn dollar_tag(b: &[u8]) -> Option<usize> {
    let mut j = 1;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
        if j == 1 && b[j].is_ascii_digit() {
            return None; // `$1` is a parameter
        }
        j += 1;
    }
    (j < b.len() && b[j] == b'$').then_some(j + 1)
}

/// Whether the statement so far is a `CREATE [TEMP] TRIGGER`, whose body holds
/// semicolons.
fn in_trigger(head: &str) -> bool {
    let words: Vec<String> = head
        .split_whitespace()
        .take(3)
        .map(str::to_ascii_uppercase)
        .collect();
    words.first().is_some_and(|w| w == "CREATE") && words.iter().skip(1).any(|w| w == "TRIGGER")
}

#[cfg(test)]
mod tests {
    use super::split_statements as split;

    #[test]
    fn splits_at_semicolons_outside_quotes_and_comments() {
        assert_eq!(
            split("create table t(a); insert into t values ('x;y'); -- c;\nselect 1 /* ; */;"),
            [
                "create table t(a)",
                "insert into t values ('x;y')",
                "-- c;\nselect 1 /* ; */"
            ]
        );
        assert_eq!(split("  ;; -- only\n ; "), Vec::<String>::new());
        assert_eq!(split("select 'it''s;'"), ["select 'it''s;'"]);
    }

    #[test]
    fn keeps_dollar_quoted_bodies_and_parameters() {
        let f = "create function f() returns int as $body$ begin; return 1; end $body$ language plpgsql; select $1";
        assert_eq!(
            split(f),
            [
                "create function f() returns int as $body$ begin; return 1; end $body$ language plpgsql",
                "select $1"
            ]
        );
        assert_eq!(
            split("select $$a;b$$; select 2"),
            ["select $$a;b$$", "select 2"]
        );
    }

    #[test]
    fn keeps_sqlite_trigger_bodies_whole() {
        let t = "create trigger tr after insert on t begin insert into u values (1); update u set a = case when 1 then 2 end; end; select 1";
        assert_eq!(
            split(t),
            [
                "create trigger tr after insert on t begin insert into u values (1); update u set a = case when 1 then 2 end; end",
                "select 1"
            ]
        );
        // A transaction's BEGIN is not a trigger body.
        assert_eq!(
            split("begin; select 1; commit"),
            ["begin", "select 1", "commit"]
        );
    }
}
