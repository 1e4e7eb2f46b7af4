//! A batch of rows as the ingest hands them to its [`Sink`](super::Sink):
//! every cell of every row in one vector, `width` cells a row. A vector
//! per row cost an allocation on the thread that checked the row and a
//! free on the thread that consumed it, for each of a million rows, and
//! the profile showed that churn (and the page faults of memory handed
//! back and taken again) as a fifth of the reading thread's time. One
//! vector per batch, kept and reused by the loader, costs neither.

use store::datastore::Cell;

/// Rows of equal width, cell by cell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    width: usize,
    /// Kept apart from `cells.len() / width` so that rows of no cells
    /// (a header of no columns) are still counted.
    rows: usize,
    cells: Vec<Cell>,
}

impl Rows {
    /// No rows yet, room for `capacity` of them.
    pub fn with_capacity(width: usize, capacity: usize) -> Rows {
        Rows {
            width,
            rows: 0,
            cells: Vec::with_capacity(width * capacity),
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

    /// Each row's cells, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[Cell]> + '_ {
        (0..self.rows).map(move |i| &self.cells[i * self.width..(i + 1) * self.width])
    }

    /// Moves the rows out, one vector each, leaving `self` empty with its
    /// room kept.
    pub fn drain(&mut self) -> impl Iterator<Item = Vec<Cell>> + '_ {
        let (width, rows) = (self.width, std::mem::take(&mut self.rows));
        let mut cells = self.cells.drain(..);
        (0..rows).map(move |_| cells.by_ref().take(width).collect())
    }

    /// The whole batch, leaving in its place an empty one of the same width
    /// with room for as many rows, so that the next batch does not grow
    /// its vector from nothing.
    pub fn take(&mut self) -> Rows {
        let room = Rows::with_capacity(self.width, self.rows);
        std::mem::replace(self, room)
    }

    /// Adds one row of exactly `width` cells.
    pub(crate) fn push_row(&mut self, cells: impl IntoIterator<Item = Cell>) {
        let before = self.cells.len();
        self.cells.extend(cells);
        debug_assert_eq!(
            self.cells.len() - before,
            self.width,
            "a row of the wrong width"
        );
        self.rows += 1;
    }

    pub(crate) fn clear(&mut self) {
        self.cells.clear();
        self.rows = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_go_in_and_come_out_whole_and_in_order() {
        let mut rows = Rows::with_capacity(2, 4);
        rows.push_row([Cell::Int(1), Cell::Text("a".into())]);
        rows.push_row([Cell::Null, Cell::Int(2)]);
        assert_eq!((rows.len(), rows.width()), (2, 2));
        assert_eq!(
            rows.iter().collect::<Vec<_>>(),
            [
                &[Cell::Int(1), Cell::Text("a".into())][..],
                &[Cell::Null, Cell::Int(2)][..]
            ]
        );
        let out: Vec<Vec<Cell>> = rows.drain().collect();
        assert_eq!(
            out,
            [
                vec![Cell::Int(1), Cell::Text("a".into())],
                vec![Cell::Null, Cell::Int(2)]
            ]
        );
        assert!(rows.is_empty() && rows.iter().next().is_none());
        rows.push_row([Cell::Bool(true), Cell::Null]);
        let taken = rows.take();
        assert_eq!((taken.len(), rows.len(), rows.width()), (1, 0, 2));
        assert!(rows.cells.capacity() >= 2, "room for the row taken");
        rows.push_row([Cell::Int(3), Cell::Null]);
        assert_eq!(
            rows.drain().collect::<Vec<_>>(),
            [vec![Cell::Int(3), Cell::Null]]
        );
    }

    #[test]
    fn rows_of_no_cells_are_counted() {
        let mut rows = Rows::with_capacity(0, 4);
        rows.push_row([]);
        rows.push_row([]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.iter().count(), 2);
        assert_eq!(rows.drain().collect::<Vec<_>>(), [vec![], vec![]]);
    }
}
