//! Line and column of a byte offset, found without rescanning the text.
//!
//! Every timeline entry and expectation records the line it came from, and every error names a
//! line and column. Counting the newlines before each offset would cost the whole text per
//! lookup, so a file of 50,000 expectations took minutes to load. The index lists where each
//! line starts, built in one pass; a lookup is a binary search over it plus the characters of
//! one line for the column.

/// Where each line of a text starts.
#[derive(Clone, Debug)]
pub(super) struct LineIndex {
    /// Byte offset of the first byte of each line; the first is always 0.
    starts: Vec<usize>,
    /// Bytes of the text looked at by lookups, for the test that lookups do not rescan.
    #[cfg(test)]
    examined: std::cell::Cell<usize>,
}

impl LineIndex {
    pub(super) fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1));
        LineIndex {
            starts,
            #[cfg(test)]
            examined: std::cell::Cell::new(0),
        }
    }

    /// Line and column (both from 1, the column in characters) of byte `offset` in `text`, the
    /// text this index was built from. An offset inside a character counts as that character,
    /// one past the end as the end.
    pub(super) fn position(&self, text: &str, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        // The last line that starts at or before `offset`.
        let line = self.starts.partition_point(|start| *start <= offset);
        let line_start = self.starts[line - 1];
        let before = &text[line_start..offset];
        #[cfg(test)]
        self.examined.set(self.examined.get() + before.len());
        (line, before.chars().count() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        let index = LineIndex::new(text);
        assert_eq!(index.position(text, 0), (1, 1));
        assert_eq!(index.position(text, 6), (2, 1));
        assert_eq!(index.position(text, 9), (2, 3)); // after the two-byte é
        assert_eq!(index.position(text, 8), (2, 2)); // inside é: moved back to its start
        assert_eq!(index.position(text, 999), (3, 1));
        assert_eq!(LineIndex::new("").position("", 5), (1, 1));
    }

    /// The plain definition: count the newlines and characters before the offset.
    fn counted(text: &str, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (before.matches('\n').count() + 1, before[line_start..].chars().count() + 1)
    }

    #[test]
    fn agrees_with_counting_at_every_offset() {
        let text = "\n\nx = 1\r\n[[expect]]\nkind = \"ünï\"\n\n  y=2";
        let index = LineIndex::new(text);
        for offset in 0..=text.len() + 2 {
            assert_eq!(index.position(text, offset), counted(text, offset), "offset {offset}");
        }
    }

    #[test]
    fn a_lookup_per_line_reads_each_line_once_at_most() {
        // 50,000 lines, each looked up at its end: a rescan from the start per lookup would
        // look at about 50,000² / 2 · 12 bytes; the index looks at each line's bytes once.
        let text = "kind = \"x\"\n".repeat(50_000);
        let index = LineIndex::new(&text);
        let mut line_end = 0;
        for line in 1..=50_000 {
            line_end += 10;
            assert_eq!(index.position(&text, line_end), (line, 11));
            line_end += 1;
        }
        assert!(index.examined.get() <= text.len(), "{} bytes examined", index.examined.get());
    }
}
