//! Where the link values are in a JSON body as it streams: a scanner that follows strings (with
//! their escapes) and member names across chunk boundaries, and finds where a link member's value
//! starts with an upstream URL. It keeps no stack, and of a string that a chunk boundary cuts no
//! more than its last bytes: a string followed by `:` is a member name, and a string right after a
//! link member's `:` is that link's value. Any other string (an alert's description, a command
//! line, evidence) is never looked into: the scanner only looks for the quote that ends it.
//!
//! Most of a JSON page is short strings a few bytes apart, so the scanner does little per string:
//! the quotes and backslashes of each 64 bytes are found at once, as bit masks ([`marks`]), and
//! between them a string without a backslash goes by as two set bits; a string's name is only
//! compared when it ends as a link member's can (`k` or `t`). The last buffer of a body is not
//! scanned at all when the start every upstream URL shares (`http`) is not in it.

use super::{LinkTable, Rule};
use marks::Marks;

#[cfg(test)]
mod edges;
mod marks;

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

/// Where a string whose content goes on at `at` ends in `buf`.
enum End {
    /// At this `"`.
    Quote(usize),
    /// Not in `buf`; `escaped`: `buf` ends with an escaping backslash.
    Later { escaped: bool },
}

fn string_end(buf: &[u8], marks: &mut Marks<'_>, mut at: usize) -> End {
    while let Some(found) = marks.quote_or_backslash(at) {
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
        // Every edit starts at a needle, and only a buffer that more may follow is held back: the
        // last one without the start all needles share needs no scan (and the scan ends with it,
        // so its state does not matter). A `memmem` pass costs a fraction of the scan, and stops
        // early on a page with links (its `@odata.context` comes first).
        if last && !table.may_hold_a_needle(buf) {
            return Found { edits, hold: None };
        }
        let mut at = 0;
        // Where the string being read began in `buf`; `None` for one carried over from an earlier
        // chunk, whose bytes so far are in `self.name`.
        let mut start = None;
        let mut marks = Marks::new(buf);
        // In a local, not in `self`, so that it can stay in a register between strings.
        let mut state = self.state;
        loop {
            match state {
                State::Structure => {
                    // The run a page is mostly made of: strings between structure, each ended by
                    // its next quote (or a backslash), none a link member's name.
                    loop {
                        at = marks.skip_plain_strings(at);
                        let Some(quote) = marks.quote(at) else {
                            break;
                        };
                        let begin = quote + 1;
                        match string_end(buf, &mut marks, begin) {
                            End::Later { escaped } => {
                                self.name = NameTail::new(&buf[begin..]);
                                state = State::String { escaped };
                                break;
                            }
                            End::Quote(end) => {
                                at = end + 1;
                                if is_link(&buf[begin..end]) {
                                    state = State::AfterLinkName;
                                    break;
                                }
                            }
                        }
                    }
                    if let State::Structure | State::String { .. } = state {
                        break;
                    }
                }
                State::String { escaped } => {
                    // Only a string carried over starts escaped: its first byte here is the
                    // escaped one.
                    let from = at + usize::from(escaped);
                    if from > buf.len() {
                        break;
                    }
                    match string_end(buf, &mut marks, from) {
                        End::Later { escaped } => {
                            match start {
                                Some(start) => self.name = NameTail::new(&buf[start..]),
                                None => self.name.push(buf),
                            }
                            state = State::String { escaped };
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
                            state = if link {
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
                            state = State::AfterLinkColon;
                        }
                        Some(_) => state = State::Structure,
                    }
                }
                State::AfterLinkColon => {
                    at = skip_whitespace(buf, at);
                    match buf.get(at) {
                        None => break,
                        Some(b'"') => {
                            at += 1;
                            state = State::LinkValue;
                        }
                        Some(_) => state = State::Structure,
                    }
                }
                State::LinkValue => {
                    match decide(table, &buf[at..], last) {
                        Decision::Wait => {
                            self.state = state;
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
                    state = State::String { escaped: false };
                }
            }
        }
        self.state = state;
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
