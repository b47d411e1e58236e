//! Where the link values are in a JSON body as it streams: a scanner that follows strings (with
//! their escapes) and member names across chunk boundaries, and finds where a link member's value
//! starts with an upstream URL. It keeps no stack, and of a string that a chunk boundary cuts no
//! more than its last bytes: a string followed by `:` is a member name, and a string right after a
//! link member's `:` is that link's value. Any other string (an alert's description, a command
//! line, evidence) is never looked into: the scanner only looks for the quote that ends it.
//!
//! Most of a JSON page is short strings a few bytes apart, so the scanner does little per string:
//! the next quote (or backslash) is looked for in the next eight bytes at a time, as a 64-bit word,
//! before `memchr` is asked for it further on (whose call costs more than a short string), and a
//! string's name is only compared when it ends as a link member's can (`k` or `t`).

use super::{LinkTable, Rule};

/// Member names whose string value is a link: OData's `@odata.nextLink` and `@odata.deltaLink`
/// (<https://learn.microsoft.com/en-us/graph/paging>,
/// <https://learn.microsoft.com/en-us/graph/delta-query-overview>), at any depth and with a
/// property before them (`members@odata.nextLink`), and the `nextLink` of Azure-style APIs.
const LINK_SUFFIXES: [&[u8]; 2] = [b"nextLink", b"deltaLink"];
/// The context URL of an OData response (its `$metadata`), rewritten so that a tool following it
/// stays behind the proxy too.
const CONTEXT: &[u8] = b"@odata.context";
/// The bytes of a member name kept to compare: enough for the longest of the names above.
const NAME_TAIL: usize = 16;
/// The 64-bit words of a string looked at before `memchr2` is called for its end.
const STRING_WORDS: usize = 2;

/// The scanner's position between chunks.
#[derive(Debug, Clone, Default)]
pub(super) struct Scan {
    state: State,
    /// The last bytes of the string a chunk ended in.
    name: NameTail,
}

#[derive(Debug, Clone, Copy, Default)]
enum State {
    /// Between strings, or after a string that is not a link member's name.
    #[default]
    Structure,
    /// In a string that began in an earlier chunk (its bytes so far in [`Scan::name`]);
    /// `escaped`: its last byte so far is an escaping backslash.
    String { escaped: bool },
    /// After a string named as a link member is: a `:` makes it one.
    AfterLinkName,
    /// After a link member's name and its `:`.
    AfterLinkColon,
    /// At the start of a link value's content.
    LinkValue,
}

/// The last [`NAME_TAIL`] bytes of a string, and its length.
#[derive(Debug, Clone, Default)]
struct NameTail {
    bytes: [u8; NAME_TAIL],
    len: usize,
}

impl NameTail {
    fn new(data: &[u8]) -> Self {
        let mut tail = Self::default();
        tail.push(data);
        tail
    }

    fn push(&mut self, data: &[u8]) {
        let n = data.len();
        if n >= NAME_TAIL {
            self.bytes.copy_from_slice(&data[n - NAME_TAIL..]);
        } else {
            self.bytes.copy_within(n.., 0);
            self.bytes[NAME_TAIL - n..].copy_from_slice(data);
        }
        self.len = self.len.saturating_add(n);
    }

    fn is_link(&self) -> bool {
        // A tail shorter than the name is longer than `CONTEXT`, so it cannot be equal to it.
        is_link(&self.bytes[NAME_TAIL - self.len.min(NAME_TAIL)..])
    }
}

/// Whether a member named `name` (its bytes as they are, escapes included) holds a link.
fn is_link(name: &[u8]) -> bool {
    match name.last() {
        Some(b'k') => LINK_SUFFIXES.iter().any(|suffix| name.ends_with(suffix)),
        Some(b't') => name == CONTEXT,
        _ => false,
    }
}

/// What a scan of a buffer found.
pub(super) struct Found<'a> {
    /// The upstream URLs to replace: from, to, and the rule they match.
    pub(super) edits: Vec<(usize, usize, &'a Rule)>,
    /// Where a link value starts whose URL is not complete yet: everything from here must wait
    /// for the next chunk (at most the longest upstream URL's length).
    pub(super) hold: Option<usize>,
}

/// Whether a link value's content starts with an upstream URL.
pub(super) enum Decision<'a> {
    Replace(&'a Rule),
    /// The bytes so far could still start one (only when more may come).
    Wait,
    No,
}

/// Whether `content` (a link value's, or a `Location`) starts with a link to an upstream; `last`:
/// no more bytes follow.
pub(super) fn decide<'a>(table: &'a LinkTable, content: &[u8], last: bool) -> Decision<'a> {
    // A longer pattern (an upstream with a base path) may still match once more arrives.
    if !last
        && table
            .rules
            .iter()
            .any(|rule| rule.needle.len() > content.len() && rule.needle.starts_with(content))
    {
        return Decision::Wait;
    }
    // Longest first: when `…/beta` is followed by `x`, the host alone may still be a link.
    for rule in table
        .rules
        .iter()
        .filter(|rule| content.starts_with(&rule.needle))
    {
        match content.get(rule.needle.len()) {
            // The byte after the match decides whether it is this upstream or a longer host.
            None if !last => return Decision::Wait,
            Some(&next) if !matches!(next, b'/' | b'?' | b'"' | b'\\' | b'#') => {}
            _ => return Decision::Replace(rule),
        }
    }
    Decision::No
}

fn skip_whitespace(buf: &[u8], mut at: usize) -> usize {
    while buf
        .get(at)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        at += 1;
    }
    at
}

/// The high bit of each byte of `word` that is `byte`, and no other bit (exact: no borrow
/// between bytes, unlike the shorter "has a zero byte" test).
fn bytes_equal(word: u64, byte: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ (u64::from(byte) * 0x0101_0101_0101_0101);
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// The index of the byte whose high bit is the lowest set bit of `hits` (little-endian words).
fn first(hits: u64) -> usize {
    (hits.trailing_zeros() / 8) as usize
}

/// The eight bytes of `buf` at `at`, if there are eight.
fn word(buf: &[u8], at: usize) -> Option<u64> {
    let bytes = buf.get(at..)?.first_chunk::<8>()?;
    Some(u64::from_le_bytes(*bytes))
}

/// The first `"` in `buf` from `at`. Between strings there are a few bytes (`":"`, `","`,
/// `},{"`), so the next eight are looked at before `memchr` is called.
fn next_quote(buf: &[u8], at: usize) -> Option<usize> {
    if let Some(word) = word(buf, at) {
        let hits = bytes_equal(word, b'"');
        if hits != 0 {
            return Some(at + first(hits));
        }
        return memchr::memchr(b'"', &buf[at + 8..]).map(|found| at + 8 + found);
    }
    memchr::memchr(b'"', buf.get(at..)?).map(|found| at + found)
}

/// The first `"` or `\` in `buf` from `at`.
fn next_quote_or_backslash(buf: &[u8], mut at: usize) -> Option<usize> {
    for _ in 0..STRING_WORDS {
        let Some(word) = word(buf, at) else { break };
        let hits = bytes_equal(word, b'"') | bytes_equal(word, b'\\');
        if hits != 0 {
            return Some(at + first(hits));
        }
        at += 8;
    }
    memchr::memchr2(b'"', b'\\', buf.get(at..)?).map(|found| at + found)
}

/// Where a string whose content goes on at `at` ends in `buf`.
enum End {
    /// At this `"`.
    Quote(usize),
    /// Not in `buf`; `escaped`: `buf` ends with an escaping backslash.
    Later { escaped: bool },
}

fn string_end(buf: &[u8], mut at: usize) -> End {
    while let Some(found) = next_quote_or_backslash(buf, at) {
        if buf[found] == b'"' {
            return End::Quote(found);
        }
        // `\` escapes the byte after it (`\"` does not end the string).
        if found + 1 == buf.len() {
            return End::Later { escaped: true };
        }
        at = found + 2;
    }
    End::Later { escaped: false }
}

impl Scan {
    /// Scans `buf`, which starts where the previous scan stopped (or holds what it held back);
    /// `last`: the body ends with it.
    pub(super) fn find<'a>(&mut self, table: &'a LinkTable, buf: &[u8], last: bool) -> Found<'a> {
        let mut edits = Vec::new();
        let mut at = 0;
        // Where the string being read began in `buf`; `None` for one carried over from an earlier
        // chunk, whose bytes so far are in `self.name`.
        let mut start = None;
        loop {
            match self.state {
                State::Structure => {
                    let Some(quote) = next_quote(buf, at) else {
                        break;
                    };
                    at = quote + 1;
                    start = Some(at);
                    self.state = State::String { escaped: false };
                }
                State::String { escaped } => {
                    // Only a string carried over starts escaped: its first byte here is the
                    // escaped one.
                    let from = at + usize::from(escaped);
                    if from > buf.len() {
                        break;
                    }
                    match string_end(buf, from) {
                        End::Later { escaped } => {
                            match start {
                                Some(start) => self.name = NameTail::new(&buf[start..]),
                                None => self.name.push(buf),
                            }
                            self.state = State::String { escaped };
                            break;
                        }
                        End::Quote(end) => {
                            let link = match start {
                                Some(start) => is_link(&buf[start..end]),
                                None => {
                                    self.name.push(&buf[..end]);
                                    self.name.is_link()
                                }
                            };
                            at = end + 1;
                            self.state = if link {
                                State::AfterLinkName
                            } else {
                                State::Structure
                            };
                        }
                    }
                }
                State::AfterLinkName => {
                    at = skip_whitespace(buf, at);
                    match buf.get(at) {
                        None => break,
                        Some(b':') => {
                            at += 1;
                            self.state = State::AfterLinkColon;
                        }
                        Some(_) => self.state = State::Structure,
                    }
                }
                State::AfterLinkColon => {
                    at = skip_whitespace(buf, at);
                    match buf.get(at) {
                        None => break,
                        Some(b'"') => {
                            at += 1;
                            self.state = State::LinkValue;
                        }
                        Some(_) => self.state = State::Structure,
                    }
                }
                State::LinkValue => {
                    match decide(table, &buf[at..], last) {
                        Decision::Wait => {
                            return Found {
                                edits,
                                hold: Some(at),
                            };
                        }
                        Decision::Replace(rule) => {
                            edits.push((at, at + rule.needle.len(), rule));
                            at += rule.needle.len();
                        }
                        Decision::No => {}
                    }
                    // The rest of the value is read as a string, from here.
                    start = Some(at);
                    self.state = State::String { escaped: false };
                }
            }
        }
        Found { edits, hold: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_member_names_are_recognised_however_they_arrive() {
        let name = |parts: &[&str]| {
            let mut tail = NameTail::default();
            for part in parts {
                tail.push(part.as_bytes());
            }
            tail.is_link()
        };
        assert!(name(&["@odata.nextLink"]));
        assert!(name(&["@odata.", "delta", "Link"]));
        assert!(name(&["members@odata.nextLink"]));
        assert!(name(&["nextLink"]));
        assert!(name(&["@odata.context"]));
        assert!(!name(&["x@odata.context"]));
        assert!(!name(&["description"]));
        assert!(!name(&["nextLinks"]));
        assert!(!name(&["a very long description that ends in ", "nothing"]));
    }
}
