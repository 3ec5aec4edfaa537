//! A set of cells by series index: which cells bleed.
//!
//! Vocabulary: balancing chooses the set, actions carry it to the adapter and the status reports
//! it, so it lives apart from all three.

use core::fmt;

use crate::sizes::MAX_CELLS;

/// Words in a [`CellMask`].
const MASK_WORDS: usize = MAX_CELLS.div_ceil(32);

/// A set of cells by series index, `0..MAX_CELLS`: the cells to bleed.
///
/// Its `Debug` output lists the members, `{3, 7, 12}`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CellMask([u32; MASK_WORDS]);

impl CellMask {
    /// No cell.
    pub const EMPTY: CellMask = CellMask([0; MASK_WORDS]);

    /// Whether `cell` is in the set.
    pub const fn contains(&self, cell: u16) -> bool {
        let (word, bit) = split(cell);
        word < MASK_WORDS && self.0[word] & (1 << bit) != 0
    }

    /// Adds `cell`. A mask cannot hold a cell at or beyond `MAX_CELLS`: such a cell is ignored.
    pub const fn insert(&mut self, cell: u16) {
        let (word, bit) = split(cell);
        if word < MASK_WORDS {
            self.0[word] |= 1 << bit;
        }
    }

    /// Removes `cell`, if it is in the set.
    pub const fn remove(&mut self, cell: u16) {
        let (word, bit) = split(cell);
        if word < MASK_WORDS {
            self.0[word] &= !(1 << bit);
        }
    }

    /// How many cells are in the set.
    pub const fn count(&self) -> u16 {
        let mut total = 0;
        let mut word = 0;
        while word < MASK_WORDS {
            total += self.0[word].count_ones() as u16; // at most 32 per word
            word += 1;
        }
        total
    }

    /// Whether the set is empty.
    pub const fn is_empty(&self) -> bool {
        let mut word = 0;
        while word < MASK_WORDS {
            if self.0[word] != 0 {
                return false;
            }
            word += 1;
        }
        true
    }

    /// The cells in the set, in ascending order.
    pub const fn iter(&self) -> CellMaskIter {
        CellMaskIter { words: self.0, word: 0 }
    }

    /// Cells `first .. first + n` as the bits of one byte, cell `first` in bit 0: the balancing
    /// register of a board of up to 8 cells. `n` above 8 counts as 8; cells beyond `MAX_CELLS`
    /// are never set.
    pub const fn bits(&self, first: u16, n: u8) -> u8 {
        let n = if n > 8 { 8 } else { n };
        let mut byte = 0;
        let mut k = 0;
        while k < n {
            if let Some(cell) = first.checked_add(k as u16) {
                if self.contains(cell) {
                    byte |= 1 << k;
                }
            }
            k += 1;
        }
        byte
    }
}

/// Iterator over the cells of a [`CellMask`], in ascending order.
#[derive(Clone, Debug)]
pub struct CellMaskIter {
    /// The words not yet visited, with the cells already returned cleared.
    words: [u32; MASK_WORDS],
    /// The word being visited.
    word: usize,
}

impl Iterator for CellMaskIter {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        // At most MASK_WORDS steps: each one either returns or moves to the next word.
        while let Some(bits) = self.words.get_mut(self.word) {
            if *bits != 0 {
                let bit = bits.trailing_zeros();
                *bits &= *bits - 1;
                // word < MASK_WORDS and bit < 32, so the index is below MAX_CELLS.
                return Some((self.word * 32) as u16 + bit as u16);
            }
            self.word += 1;
        }
        None
    }
}

impl IntoIterator for &CellMask {
    type Item = u16;
    type IntoIter = CellMaskIter;

    fn into_iter(self) -> CellMaskIter {
        self.iter()
    }
}

impl FromIterator<u16> for CellMask {
    /// The set of the given cells; cells beyond `MAX_CELLS` are ignored.
    fn from_iter<I: IntoIterator<Item = u16>>(cells: I) -> CellMask {
        let mut mask = CellMask::EMPTY;
        for cell in cells {
            mask.insert(cell);
        }
        mask
    }
}

impl fmt::Debug for CellMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// (word, bit) of a cell index.
const fn split(cell: u16) -> (usize, u32) {
    ((cell / 32) as usize, (cell % 32) as u32)
}
