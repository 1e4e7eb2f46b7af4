//! A batch of rows as the ingest hands them to its [`Sink`](super::Sink):
//! every cell of every row in one vector, `width` cells a row, and the
//! text of every text cell in one string beside it.
//!
//! A vector per row cost an allocation on the thread that checked the row
//! and a free on the thread that consumed it, for each of a million rows.
//! A text cell of its own cost the same for every text longer than a
//! [`CompactString`](store::datastore::CompactString) holds inline, which
//! in a Japanese file is most names and every address (eight kanji are 24
//! bytes): the profile put making those texts at a tenth of the workers'
//! time and freeing them at a fifth of the reading thread's. Here a text
//! is a range of the batch's string, so a batch allocates nothing per
//! cell, moves from a worker's chunk into the loader's batch by copying a
//! stretch of slots and the stretch of text they use, and is emptied
//! without a look at each cell. Cells are made only when a
//! sink takes them ([`Rows::drain`]).

use std::ops::Range;

use chrono::{NaiveDate, NaiveDateTime};
use store::datastore::Cell;

/// A cell as a batch keeps it: [`Cell`] with its text (and its JSON, as
/// text) in [`Rows::text`]. It owns nothing, so a batch's slots are
/// copied and emptied without a look at each one.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    Null,
    /// Text, as the range of [`Rows::text`] it is in.
    Text {
        start: usize,
        end: usize,
    },
    /// JSON, written out in the same way. The ingest never types a column
    /// as JSON; a sink that is given such a cell parses it again.
    Json {
        start: usize,
        end: usize,
    },
    Int(i64),
    Numeric(f64),
    Bool(bool),
    Date(NaiveDate),
    Timestamp(NaiveDateTime),
}

// Smaller than a `Cell`, which slots are copied instead of.
const _: () = assert!(std::mem::size_of::<Slot>() <= 24);

/// Rows of equal width, cell by cell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    width: usize,
    /// Kept apart from `slots.len() / width` so that rows of no cells
    /// (a header of no columns) are still counted.
    rows: usize,
    slots: Vec<Slot>,
    /// The contents of the text and JSON slots, in the order of the slots.
    text: String,
}

impl Rows {
    /// No rows yet, room for `capacity` of them.
    pub fn with_capacity(width: usize, capacity: usize) -> Rows {
        Rows {
            width,
            rows: 0,
            slots: Vec::with_capacity(width * capacity),
            text: String::new(),
        }
    }

    /// Cells in every row.
    pub fn width(&self) -> usize {
        self.width
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Moves the rows out, one vector of cells each, leaving `self` empty
    /// with the room of its cells kept.
    pub fn drain(&mut self) -> impl Iterator<Item = Vec<Cell>> + '_ {
        let (width, rows) = (self.width, std::mem::take(&mut self.rows));
        let text = std::mem::take(&mut self.text);
        let mut slots = self.slots.drain(..);
        (0..rows).map(move |_| {
            slots
                .by_ref()
                .take(width)
                .map(|slot| match slot {
                    Slot::Null => Cell::Null,
                    Slot::Text { start, end } => Cell::Text(text[start..end].into()),
                    // The text is what `push` wrote from a JSON value, so it
                    // parses; a null could only come from a bug here.
                    Slot::Json { start, end } => serde_json::from_str(&text[start..end])
                        .map_or(Cell::Null, |value| Cell::Json(Box::new(value))),
                    Slot::Int(n) => Cell::Int(n),
                    Slot::Numeric(x) => Cell::Numeric(x),
                    Slot::Bool(b) => Cell::Bool(b),
                    Slot::Date(d) => Cell::Date(d),
                    Slot::Timestamp(t) => Cell::Timestamp(t),
                })
                .collect()
        })
    }

    /// The whole batch, leaving in its place an empty one of the same width
    /// with room for as many rows, so that the next batch does not grow
    /// its buffers from nothing.
    pub fn take(&mut self) -> Rows {
        let room = Rows {
            width: self.width,
            rows: 0,
            slots: Vec::with_capacity(self.slots.len()),
            text: String::with_capacity(self.text.len()),
        };
        std::mem::replace(self, room)
    }

    /// Adds a text cell to the row being filled.
    pub(crate) fn push_text(&mut self, text: &str) {
        let (start, end) = self.add_text(text);
        self.slots.push(Slot::Text { start, end });
    }

    /// Appends to [`Rows::text`]; the range it took.
    fn add_text(&mut self, text: &str) -> (usize, usize) {
        let start = self.text.len();
        self.text.push_str(text);
        (start, self.text.len())
    }

    /// Adds a cell to the row being filled.
    pub(crate) fn push(&mut self, cell: Cell) {
        let slot = match cell {
            Cell::Null => Slot::Null,
            Cell::Text(text) => return self.push_text(&text),
            Cell::Json(value) => {
                let (start, end) = self.add_text(&value.to_string());
                Slot::Json { start, end }
            }
            Cell::Int(n) => Slot::Int(n),
            Cell::Numeric(x) => Slot::Numeric(x),
            Cell::Bool(b) => Slot::Bool(b),
            Cell::Date(d) => Slot::Date(d),
            Cell::Timestamp(t) => Slot::Timestamp(t),
        };
        self.slots.push(slot);
    }

    /// Ends the row being filled, with nulls for any cells it lacks.
    pub(crate) fn end_row(&mut self) {
        let end = (self.rows + 1) * self.width;
        debug_assert!(self.slots.len() <= end, "a row of too many cells");
        self.slots.resize(end, Slot::Null);
        self.rows += 1;
    }

    /// Adds one row of exactly `width` cells.
    #[cfg(test)]
    pub(crate) fn push_row(&mut self, cells: impl IntoIterator<Item = Cell>) {
        for cell in cells {
            self.push(cell);
        }
        debug_assert_eq!(self.slots.len(), (self.rows + 1) * self.width);
        self.end_row();
    }

    /// Copies rows `rows` of `other`, of the same width, to the end.
    pub(crate) fn extend_from(&mut self, other: &Rows, rows: Range<usize>) {
        debug_assert_eq!(self.width, other.width);
        let slots = &other.slots[rows.start * self.width..rows.end * self.width];
        // The rows' texts are one stretch of `other.text`, in slot order.
        let mut texts = slots.iter().filter_map(|slot| match *slot {
            Slot::Text { start, end } | Slot::Json { start, end } => Some((start, end)),
            _ => None,
        });
        let from = texts.clone().next().map_or(0, |(start, _)| start);
        let to = texts.next_back().map_or(from, |(_, end)| end);
        let shift = |at: usize| self.text.len() + at - from;
        self.slots.extend(slots.iter().map(|&slot| match slot {
            Slot::Text { start, end } => Slot::Text {
                start: shift(start),
                end: shift(end),
            },
            Slot::Json { start, end } => Slot::Json {
                start: shift(start),
                end: shift(end),
            },
            other => other,
        }));
        self.text.push_str(&other.text[from..to]);
        self.rows += rows.len();
    }

    pub(crate) fn clear(&mut self) {
        self.slots.clear();
        self.text.clear();
        self.rows = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(s: &str) -> Cell {
        Cell::Text(s.into())
    }

    #[test]
    fn rows_go_in_and_come_out_whole_and_in_order() {
        let mut rows = Rows::with_capacity(2, 4);
        rows.push_row([Cell::Int(1), text("避難所の名称はここに長く書かれます")]);
        rows.push_row([Cell::Null, Cell::Int(2)]);
        assert_eq!((rows.len(), rows.width()), (2, 2));
        let out: Vec<Vec<Cell>> = rows.drain().collect();
        assert_eq!(
            out,
            [
                vec![Cell::Int(1), text("避難所の名称はここに長く書かれます")],
                vec![Cell::Null, Cell::Int(2)]
            ]
        );
        assert!(rows.is_empty());
        rows.push_row([Cell::Bool(true), text("a")]);
        let taken = rows.take();
        assert_eq!((taken.len(), rows.len(), rows.width()), (1, 0, 2));
        assert!(rows.slots.capacity() >= 2, "room for the row taken");
        rows.push_row([Cell::Int(3), Cell::Null]);
        assert_eq!(
            rows.drain().collect::<Vec<_>>(),
            [vec![Cell::Int(3), Cell::Null]]
        );
    }

    #[test]
    fn a_short_row_is_ended_with_nulls() {
        let mut rows = Rows::with_capacity(3, 1);
        rows.push_text("名称");
        rows.end_row();
        rows.end_row();
        assert_eq!(
            rows.drain().collect::<Vec<_>>(),
            [
                vec![text("名称"), Cell::Null, Cell::Null],
                vec![Cell::Null, Cell::Null, Cell::Null]
            ]
        );
    }

    #[test]
    fn rows_of_no_cells_are_counted() {
        let mut rows = Rows::with_capacity(0, 4);
        rows.push_row([]);
        rows.push_row([]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.drain().collect::<Vec<_>>(), [vec![], vec![]]);
    }

    fn cell() -> impl Strategy<Value = Cell> {
        prop_oneof![
            Just(Cell::Null),
            any::<i64>().prop_map(Cell::Int),
            "[a-zあ-ん焼津市]{0,12}".prop_map(|s| Cell::Text(s.into())),
            "[a-z]{0,4}".prop_map(|s| Cell::Json(Box::new(serde_json::json!({ "k": s })))),
        ]
    }

    proptest! {
        /// Copying any stretch of rows from one batch to another, already
        /// holding rows of its own, gives exactly those rows.
        #[test]
        fn copied_rows_are_the_rows_copied(
            width in 1usize..4,
            cells in proptest::collection::vec(cell(), 0..40),
            before in proptest::collection::vec(cell(), 0..8),
            cut in any::<proptest::sample::Index>(),
            len in 0usize..10,
        ) {
            let whole = |cells: &[Cell]| -> Vec<Vec<Cell>> {
                cells.chunks_exact(width).map(<[Cell]>::to_vec).collect()
            };
            let (source_rows, before_rows) = (whole(&cells), whole(&before));
            let mut source = Rows::with_capacity(width, 0);
            for row in &source_rows {
                source.push_row(row.iter().cloned());
            }
            let mut target = Rows::with_capacity(width, 0);
            for row in &before_rows {
                target.push_row(row.iter().cloned());
            }
            let start = cut.index(source_rows.len() + 1);
            let end = (start + len).min(source_rows.len());
            target.extend_from(&source, start..end);
            let mut expected = before_rows.clone();
            expected.extend_from_slice(&source_rows[start..end]);
            prop_assert_eq!(target.len(), expected.len());
            prop_assert_eq!(target.drain().collect::<Vec<_>>(), expected);
            prop_assert_eq!(source.drain().collect::<Vec<_>>(), source_rows);
        }
    }
}
