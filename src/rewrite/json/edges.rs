//! The scanner where its 64-byte blocks, the chunks of a body and runs of backslashes meet: each
//! text is rewritten whole and cut at every point (`same_at_every_split`).

use super::super::tests::{links, same_at_every_split};

/// `{"p":"<pad bytes>",<members>}`: the padding moves `members` along the 64-byte blocks.
fn padded(pad: usize, members: &str) -> String {
    format!(r#"{{"p":"{}",{members}}}"#, "a".repeat(pad))
}

/// The pads that put each byte of the first 16 of `members` at 63, 64 and 65 in turn (`{"p":"`
/// and `",` are 8 bytes).
const PADS: std::ops::RangeInclusive<usize> = 40..=70;

#[test]
fn a_link_member_is_found_with_its_quotes_on_either_side_of_a_block_boundary() {
    let links = links();
    for pad in PADS {
        let text = padded(pad, r#""nextLink":"https://graph.microsoft.com/v1.0/x""#);
        let expected = padded(pad, r#""nextLink":"http://127.0.0.1:8080/graph/v1.0/x""#);
        assert_eq!(same_at_every_split(&links, &text), expected, "pad {pad}");
    }
}

#[test]
fn an_escaped_quote_on_either_side_of_a_block_boundary_does_not_end_its_string() {
    let links = links();
    for pad in PADS {
        // The escaped `"nextLink":"…` is text inside `d` (three escaped quotes: taken for real
        // ones, they would put the quotes after them out of step); only the member after `d` is
        // a link.
        let members = |last: &str| {
            format!(r#""d":"\"nextLink\":\"https://graph.microsoft.com/x","nextLink":"{last}/y""#)
        };
        let text = padded(pad, &members("https://graph.microsoft.com"));
        let expected = padded(pad, &members("http://127.0.0.1:8080/graph"));
        assert_eq!(same_at_every_split(&links, &text), expected, "pad {pad}");
    }
}

#[test]
fn a_run_of_backslashes_escapes_the_quote_after_it_when_it_is_odd_wherever_blocks_and_chunks_cut_it()
 {
    let links = links();
    // The run starts 6 bytes into the members: at 56 to 70.
    for pad in 42..=56 {
        for run in 1..=5 {
            // Even: `d` ends after its backslashes and the next member is a link. Odd: the quote
            // is escaped, `d` goes on to the next quote and the rest is out of step: no link.
            let text = padded(
                pad,
                &format!(
                    r#""d":"x{}","nextLink":"https://graph.microsoft.com/z""#,
                    "\\".repeat(run)
                ),
            );
            let expected = if run % 2 == 0 {
                text.replace("https://graph.microsoft.com", "http://127.0.0.1:8080/graph")
            } else {
                text.clone()
            };
            assert_eq!(
                same_at_every_split(&links, &text),
                expected,
                "pad {pad}, {run} backslashes"
            );
        }
    }
}

#[test]
fn a_link_value_whose_upstream_url_straddles_a_block_boundary_is_rewritten() {
    let links = links();
    // The escaped URL is 35 bytes, 27 + pad into the text: it starts before 64 (or 128) and ends
    // after; the link after it is found only if the scan goes on from the right byte.
    for pad in (3..=36).chain(67..=100) {
        let text = padded(
            pad,
            r#""@odata.nextLink":"https:\/\/graph.microsoft.com\/beta\/y?$skip=2","nextLink":"https://graph.microsoft.com/z""#,
        );
        let expected = padded(
            pad,
            r#""@odata.nextLink":"http:\/\/127.0.0.1:8080\/based\/y?$skip=2","nextLink":"http://127.0.0.1:8080/graph/z""#,
        );
        assert_eq!(same_at_every_split(&links, &text), expected, "pad {pad}");
    }
}

#[test]
fn the_start_every_upstream_url_shares_is_what_a_last_buffer_is_searched_for() {
    let links = links();
    let start = links.table.common_start.as_ref().map(|s| s.needle());
    assert_eq!(start, Some(&b"https:"[..]));
    // Without it, a last buffer is passed as it is, link members and all.
    let text = r#"{"nextLink":"ftp://graph.microsoft.com/x","n":"http://x"}"#;
    assert_eq!(same_at_every_split(&links, text), text);
}
