//! Where the link values are in a JSON body as it streams: a scanner that follows strings (with
//! their escapes) and member names across chunk boundaries, and finds where a link member's value
//! starts with an upstream URL. It keeps no stack and no more than a member name's last bytes: a
//! string followed by `:` is a member name, and a string right after a link member's `:` is that
//! link's value. Any other string (an alert's description, a command line, evidence) is never
//! looked into.

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

/// The scanner's position between chunks.
#[derive(Debug, Clone, Default)]
pub(super) struct Scan {
    state: State,
    name: NameTail,
}

#[derive(Debug, Clone, Copy, Default)]
enum State {
    /// Between strings.
    #[default]
    Structure,
    /// In a string; `escaped`: its last byte so far is an escaping backslash.
    String { escaped: bool },
    /// After a string: a `:` makes it a member name, a link's if `link`.
    AfterString { link: bool },
    /// After a member name and its `:`.
    AfterColon { link: bool },
    /// At the start of a link value's content.
    LinkValue,
}

/// The last [`NAME_TAIL`] bytes of the string being read, and its length.
#[derive(Debug, Clone, Default)]
struct NameTail {
    bytes: [u8; NAME_TAIL],
    len: usize,
}

impl NameTail {
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
        let tail = &self.bytes[NAME_TAIL - self.len.min(NAME_TAIL)..];
        LINK_SUFFIXES.iter().any(|suffix| tail.ends_with(suffix))
            || (self.len == CONTEXT.len() && tail == CONTEXT)
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

impl Scan {
    /// Scans `buf`, which starts where the previous scan stopped (or holds what it held back);
    /// `last`: the body ends with it.
    pub(super) fn find<'a>(&mut self, table: &'a LinkTable, buf: &[u8], last: bool) -> Found<'a> {
        let mut edits = Vec::new();
        let mut at = 0;
        loop {
            match self.state {
                State::Structure => match memchr::memchr(b'"', &buf[at..]) {
                    None => break,
                    Some(found) => {
                        at += found + 1;
                        self.open_string();
                    }
                },
                State::String { escaped } => {
                    if escaped {
                        if at >= buf.len() {
                            break;
                        }
                        // The escaped byte (`\"` does not end the string).
                        self.name.push(&buf[at..=at]);
                        at += 1;
                        self.state = State::String { escaped: false };
                    }
                    match memchr::memchr2(b'"', b'\\', &buf[at..]) {
                        None => {
                            self.name.push(&buf[at..]);
                            break;
                        }
                        Some(found) => {
                            let end = at + found;
                            self.name.push(&buf[at..end]);
                            at = end + 1;
                            self.state = if buf[end] == b'\\' {
                                self.name.push(b"\\");
                                State::String { escaped: true }
                            } else {
                                State::AfterString {
                                    link: self.name.is_link(),
                                }
                            };
                        }
                    }
                }
                State::AfterString { link } => {
                    at = skip_whitespace(buf, at);
                    match buf.get(at) {
                        None => break,
                        Some(b':') => {
                            at += 1;
                            self.state = State::AfterColon { link };
                        }
                        Some(_) => self.state = State::Structure,
                    }
                }
                State::AfterColon { link } => {
                    at = skip_whitespace(buf, at);
                    match buf.get(at) {
                        None => break,
                        Some(b'"') => {
                            at += 1;
                            if link {
                                self.state = State::LinkValue;
                            } else {
                                self.open_string();
                            }
                        }
                        Some(_) => self.state = State::Structure,
                    }
                }
                State::LinkValue => match decide(table, &buf[at..], last) {
                    Decision::Wait => {
                        return Found {
                            edits,
                            hold: Some(at),
                        };
                    }
                    Decision::Replace(rule) => {
                        edits.push((at, at + rule.needle.len(), rule));
                        at += rule.needle.len();
                        self.open_string();
                    }
                    Decision::No => self.open_string(),
                },
            }
        }
        Found { edits, hold: None }
    }

    fn open_string(&mut self) {
        self.state = State::String { escaped: false };
        self.name = NameTail::default();
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
