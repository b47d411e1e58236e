//! The quotes and backslashes of a buffer, found 64 bytes at a time as two bit masks (bit `i`:
//! byte `i` of the block), so that the scanner goes from one to the next with a bit operation
//! instead of searching the bytes between them again for each string.

/// The bytes one pair of masks covers.
const BLOCK: usize = 64;
/// Multiplying a word whose bytes are each 0 or 1 by this gathers them into its top byte (byte
/// `i` into bit `56 + i`): each set bit lands in its own place, so nothing carries.
const GATHER: u64 = 0x0102_0408_1020_4080;

/// A walk over the `"` and `\` of a buffer, forward (a search from before the block at hand
/// makes that block's masks again).
pub(super) struct Marks<'a> {
    buf: &'a [u8],
    /// Where the block of `quotes` and `backslashes` starts: a multiple of [`BLOCK`].
    base: usize,
    quotes: u64,
    backslashes: u64,
}

impl<'a> Marks<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        let mut marks = Self {
            buf,
            base: 0,
            quotes: 0,
            backslashes: 0,
        };
        marks.load(0);
        marks
    }

    /// The first `"` at or after `at`.
    #[inline(always)]
    pub(super) fn quote(&mut self, at: usize) -> Option<usize> {
        self.next(at, false)
    }

    /// The first `"` or `\` at or after `at`.
    #[inline(always)]
    pub(super) fn quote_or_backslash(&mut self, at: usize) -> Option<usize> {
        self.next(at, true)
    }

    /// From `at`, between strings: past every string that has no backslash in its blocks and
    /// does not end in `k` or `t` (so that it cannot name a link), to the opening quote of the
    /// first one that does (or where there are no more quotes). Most of a page goes by here, a
    /// few instructions per string: in a block without backslashes the quotes pair up.
    #[inline(always)]
    pub(super) fn skip_plain_strings(&mut self, at: usize) -> usize {
        let offset = at.wrapping_sub(self.base);
        if offset >= BLOCK || self.backslashes != 0 {
            return at;
        }
        let mut quotes = self.quotes & (u64::MAX << offset);
        loop {
            // Between strings, with no quote before the first of `quotes`.
            while quotes == 0 {
                if !self.load_next() {
                    return self.buf.len();
                }
                if self.backslashes != 0 {
                    return self.base;
                }
                quotes = self.quotes;
            }
            let open = self.base + quotes.trailing_zeros() as usize;
            quotes &= quotes - 1;
            // In the string opened at `open`.
            while quotes == 0 {
                if !self.load_next() || self.backslashes != 0 {
                    return open;
                }
                quotes = self.quotes;
            }
            let close = self.base + quotes.trailing_zeros() as usize;
            quotes &= quotes - 1;
            if let Some(b'k' | b't') = self.buf.get(close.wrapping_sub(1)) {
                return open;
            }
        }
    }

    /// Moves on to the next block, if `buf` goes on.
    fn load_next(&mut self) -> bool {
        let next = self.base + BLOCK;
        if next >= self.buf.len() {
            return false;
        }
        self.load(next);
        true
    }

    /// Strings are short, so `at`'s block answers most searches: that test is inlined into the
    /// scan, the move to a later block is not.
    #[inline(always)]
    fn next(&mut self, at: usize, backslashes: bool) -> Option<usize> {
        let offset = at.wrapping_sub(self.base);
        if offset < BLOCK {
            let hits = self.hits(backslashes) & (u64::MAX << offset);
            if hits != 0 {
                return Some(self.base + hits.trailing_zeros() as usize);
            }
        }
        self.next_in_later_blocks(at, backslashes)
    }

    #[inline(never)]
    fn next_in_later_blocks(&mut self, mut at: usize, backslashes: bool) -> Option<usize> {
        if at.wrapping_sub(self.base) < BLOCK {
            at = self.base + BLOCK;
        }
        while at < self.buf.len() {
            self.load(at - at % BLOCK);
            let hits = self.hits(backslashes) & (u64::MAX << (at - self.base));
            if hits != 0 {
                return Some(self.base + hits.trailing_zeros() as usize);
            }
            at = self.base + BLOCK;
        }
        None
    }

    fn hits(&self, backslashes: bool) -> u64 {
        if backslashes {
            self.quotes | self.backslashes
        } else {
            self.quotes
        }
    }

    fn load(&mut self, base: usize) {
        self.base = base;
        let rest = self.buf.get(base..).unwrap_or_default();
        (self.quotes, self.backslashes) = match rest.first_chunk::<BLOCK>() {
            Some(block) => masks(block),
            None => {
                // The last, short block: the zero bytes after the end are neither.
                let mut block = [0; BLOCK];
                block[..rest.len()].copy_from_slice(rest);
                masks(&block)
            }
        };
    }
}

/// The masks of `"` and of `\` in `block`. A JSON page has few backslashes, so their mask is
/// only made for a block that has one.
fn masks(block: &[u8; BLOCK]) -> (u64, u64) {
    let any_backslash = block.iter().fold(false, |any, &byte| any | (byte == b'\\'));
    let backslashes = if any_backslash { mask(block, b'\\') } else { 0 };
    (mask(block, b'"'), backslashes)
}

/// Bit `i` set where byte `i` of `block` is `byte`. Written so that LLVM compares sixteen bytes
/// at a time (SSE2's `pcmpeqb` on x86_64) before gathering each eight into a byte.
#[inline(always)]
fn mask(block: &[u8; BLOCK], byte: u8) -> u64 {
    let mut equal = [0u8; BLOCK];
    for (hit, &b) in equal.iter_mut().zip(block) {
        *hit = u8::from(b == byte);
    }
    let mut mask = 0;
    for (i, word) in equal.chunks_exact(8).enumerate() {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(word);
        mask |= (u64::from_le_bytes(bytes).wrapping_mul(GATHER) >> 56) << (8 * i);
    }
    mask
}
