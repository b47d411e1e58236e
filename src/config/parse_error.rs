//! TOML parse errors told without the secrets a line may hold: file, line, column and key, and the
//! line itself only when it cannot hold a secret.

/// Words that mark a line as one that may hold a secret: such a line is never quoted in an error,
/// which goes to the log, stderr and `/-/status`.
const SECRET_WORDS: [&str; 5] = ["secret", "password", "token", "key", "assertion"];

/// A TOML error as one line: the line, column and key it is at, the parser's message, and the line
/// itself only when it cannot hold a secret (toml's own message quotes the line whatever it holds).
pub(super) fn parse_message(text: &str, error: &toml::de::Error) -> String {
    let Some(span) = error.span() else {
        return redact_values(error.message());
    };
    let start = span.start.min(text.len());
    let before = text.get(..start).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_number = before.matches('\n').count() + 1;
    let column = text.get(line_start..start).map_or(0, |s| s.chars().count()) + 1;
    let line = text[line_start..].lines().next().unwrap_or("");
    let table = before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .and_then(table_name);
    let key = table_name(line.trim()).or_else(|| {
        let (key, _) = line.split_once('=')?;
        let key = key.trim();
        is_key(key).then(|| match &table {
            Some(table) => format!("{table}.{key}"),
            None => key.to_owned(),
        })
    });
    let lower = line.to_ascii_lowercase();
    let safe = key.is_some() && !SECRET_WORDS.iter().any(|w| lower.contains(w));
    let mut message = format!("line {line_number}, column {column}");
    if let Some(key) = &key {
        message.push_str(&format!(", key {key}"));
    }
    if safe {
        message.push_str(&format!(": {}: `{}`", error.message(), line.trim()));
    } else {
        message.push_str(&format!(": {}", redact_values(error.message())));
    }
    message
}

/// The name of a `[table]` or `[[array]]` header line.
fn table_name(line: &str) -> Option<String> {
    let name = line.split('#').next()?.trim();
    let name = name.strip_prefix('[')?.strip_suffix(']')?;
    let name = name.trim_start_matches('[').trim_end_matches(']').trim();
    is_key(name).then(|| name.to_owned())
}

/// Whether `key` is a plain (possibly dotted) key: names only, no value can hide in it.
fn is_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' '))
}

/// The message with quoted values replaced: serde quotes what it found ("invalid type: string
/// \"...\"", "integer `5`"), which on a line that may hold a secret may be the secret.
fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(['"', '`']) {
        let quote = rest[i..].chars().next().unwrap_or('"');
        out.push_str(&rest[..=i]);
        let after = &rest[i + 1..];
        let Some(end) = after.find(quote) else {
            out.push_str("[redacted]");
            return out;
        };
        let quoted = &after[..end];
        // Backticks also quote field names (`unknown field \`x\``) and expected characters, which
        // are kept.
        let name = is_key(quoted) && !quoted.chars().all(|c| c.is_ascii_digit());
        if quote == '`' && (name || quoted.chars().count() == 1) {
            out.push_str(quoted);
        } else {
            out.push_str("[redacted]");
        }
        out.push(quote);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}
