//! Where an entity is, as one integer that an ordinary B-tree index orders: the
//! spatial cell of its `location` box (`entities.cell`), and the ranges of cells a
//! geo-query's box must look in.
//!
//! The world (longitude -180..180, latitude -90..90) is a quadtree of cells, 2^level
//! by 2^level at each level down to [`MAX_LEVEL`] (about 4 cm by 2 cm). A cell's id
//! is its Z-order position (the bits of its column and row interleaved), then a
//! marker bit, then zeros down to the last level's width, as S2 numbers its cells.
//! Every cell inside a cell then has an id in its [`descendants`] range, which
//! contains no other cell's descendants, so "every box within this cell" is one
//! range of an index on the id.
//!
//! A box is kept in the smallest cell that holds it whole, among the levels that are
//! multiples of [`LEVEL_STEP`] (a point: the last level). A query box is covered by at
//! most [`MAX_COVERING_CELLS`] cells of one level; a stored box that meets the query
//! box is either within one of them (a range each) or in a cell holding one of them
//! at a coarser level where boxes are kept (one id each). Taking only every third
//! level for boxes keeps those coarser ids few, and the store lists the levels that
//! hold any box ([`Levels`]), so that where every location is a point (shelters,
//! sensors) a query looks in its covering cells alone.
//!
//! This replaced an R*Tree, whose inserts were about a third of the writer's time
//! per entity (see the README's Benchmarks); inserting into a B-tree index costs a
//! fraction of that. The ranges admit more than the box (whole cells); the matcher
//! decides every candidate, as it did after the R*Tree.

use ngsi_ld::query::index::BoundingBox;

/// The deepest level: 2^30 columns of about 3.4e-7 degrees.
pub const MAX_LEVEL: u32 = 30;

/// Boxes are kept at levels that are multiples of this (0, 3, …, 30).
pub const LEVEL_STEP: u32 = 3;

/// The most cells a query box is covered with (eight by eight, or a thinner shape).
/// Finer cells admit fewer rows around the box, each of which the query reads, at
/// the cost of more ranges to search (adjacent cells' ranges merge).
pub const MAX_COVERING_CELLS: u32 = 64;

/// A set of levels: bit `n` is level `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Levels(pub u32);

impl Levels {
    pub const ALL: Levels = Levels(u32::MAX);

    fn contains(self, level: u32) -> bool {
        self.0 & (1 << level) != 0
    }
}

/// The level of the cell `cell`.
pub fn level_of(cell: i64) -> u32 {
    MAX_LEVEL - cell.trailing_zeros() / 2
}

/// The most ranges [`ranges_meeting`] gives: the 64 covering cells, at most 34
/// holding cells at the nearest coarser stored level (a box 32 cells by 2 spans 17
/// by 2 a level up), 6 at the next and 4 (2 by 2) at each of the eight others.
pub const MAX_RANGES: usize = 64 + 34 + 6 + 4 * 8;

/// A box's corners as cell columns and rows at [`MAX_LEVEL`].
#[derive(Debug, Clone, Copy)]
struct Quantized {
    min_x: u32,
    max_x: u32,
    min_y: u32,
    max_y: u32,
}

impl Quantized {
    /// Rounding down a clamped coordinate keeps its order, so boxes that meet still
    /// meet once quantized.
    fn of(b: &BoundingBox) -> Quantized {
        Quantized {
            min_x: quantize(b.min_lon, -180.0, 360.0),
            max_x: quantize(b.max_lon, -180.0, 360.0),
            min_y: quantize(b.min_lat, -90.0, 180.0),
            max_y: quantize(b.max_lat, -90.0, 180.0),
        }
    }

    /// The columns and rows this box spans at `level`.
    fn at(self, level: u32) -> Quantized {
        let shift = MAX_LEVEL - level;
        Quantized {
            min_x: self.min_x >> shift,
            max_x: self.max_x >> shift,
            min_y: self.min_y >> shift,
            max_y: self.max_y >> shift,
        }
    }

    fn cells(self) -> u64 {
        u64::from(self.max_x - self.min_x + 1) * u64::from(self.max_y - self.min_y + 1)
    }
}

fn quantize(degrees: f64, min: f64, span: f64) -> u32 {
    let last = (1u32 << MAX_LEVEL) - 1;
    let scaled = ((degrees - min) / span * f64::from(1u32 << MAX_LEVEL)).floor();
    // A NaN (never given: coordinates are checked) becomes 0, which is still a cell.
    scaled.clamp(0.0, f64::from(last)) as u32
}

/// The id of the cell at `column`, `row` of `level`.
fn cell_id(level: u32, column: u32, row: u32) -> i64 {
    let position = interleave(column, row);
    // 61 bits at most, so the id is a positive i64.
    (((position << 1) | 1) << (2 * (MAX_LEVEL - level))) as i64
}

/// The bits of `x` and `y` alternated, `x` in the even places.
fn interleave(x: u32, y: u32) -> u64 {
    fn spread(v: u32) -> u64 {
        let mut v = u64::from(v);
        v = (v | (v << 16)) & 0x0000_ffff_0000_ffff;
        v = (v | (v << 8)) & 0x00ff_00ff_00ff_00ff;
        v = (v | (v << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
        v = (v | (v << 2)) & 0x3333_3333_3333_3333;
        v = (v | (v << 1)) & 0x5555_5555_5555_5555;
        v
    }
    spread(x) | (spread(y) << 1)
}

/// The column and row [`interleave`] made `position` of.
fn deinterleave(position: u64) -> (u32, u32) {
    fn gather(mut v: u64) -> u32 {
        v &= 0x5555_5555_5555_5555;
        v = (v | (v >> 1)) & 0x3333_3333_3333_3333;
        v = (v | (v >> 2)) & 0x0f0f_0f0f_0f0f_0f0f;
        v = (v | (v >> 4)) & 0x00ff_00ff_00ff_00ff;
        v = (v | (v >> 8)) & 0x0000_ffff_0000_ffff;
        v = (v | (v >> 16)) & 0x0000_0000_ffff_ffff;
        v as u32
    }
    (gather(position), gather(position >> 1))
}

/// The ids of every cell within `cell`, itself included.
pub fn descendants(cell: i64) -> (i64, i64) {
    let lowest_bit = cell & cell.wrapping_neg();
    (cell - (lowest_bit - 1), cell + (lowest_bit - 1))
}

/// The cell an entity whose `location` has this box is kept in.
pub fn cell_of(b: &BoundingBox) -> i64 {
    let q = Quantized::of(b);
    let level = (0..=MAX_LEVEL / LEVEL_STEP)
        .rev()
        .map(|step| step * LEVEL_STEP)
        .find(|&level| q.at(level).cells() == 1)
        .unwrap_or(0);
    let at = q.at(level);
    cell_id(level, at.min_x, at.min_y)
}

/// Whether the cell `cell` meets the box `b`, so that a box kept in it may: a cell
/// that misses `b` holds none that meets it.
pub fn cell_meets(cell: i64, b: &BoundingBox) -> bool {
    let level = level_of(cell);
    let (column, row) = deinterleave((cell as u64) >> (2 * (MAX_LEVEL - level) + 1));
    let q = Quantized::of(b).at(level);
    (q.min_x..=q.max_x).contains(&column) && (q.min_y..=q.max_y).contains(&row)
}

/// Ranges of cell ids (inclusive, sorted, more than one apart) holding the cell of
/// every box that meets `b`, where the boxes kept at levels coarser than its covering
/// are all at `coarse` levels; at most [`MAX_RANGES`].
pub fn ranges_meeting(b: &BoundingBox, coarse: Levels) -> Vec<(i64, i64)> {
    let q = Quantized::of(b);
    let level = (0..=MAX_LEVEL)
        .rev()
        .find(|&level| q.at(level).cells() <= u64::from(MAX_COVERING_CELLS))
        .unwrap_or(0);
    let mut ranges = Vec::with_capacity(MAX_RANGES);
    let covering = q.at(level);
    for column in covering.min_x..=covering.max_x {
        for row in covering.min_y..=covering.max_y {
            ranges.push(descendants(cell_id(level, column, row)));
        }
    }
    for coarser in (0..level).filter(|&l| l % LEVEL_STEP == 0 && coarse.contains(l)) {
        let holding = q.at(coarser);
        for column in holding.min_x..=holding.max_x {
            for row in holding.min_y..=holding.max_y {
                let id = cell_id(coarser, column, row);
                ranges.push((id, id));
            }
        }
    }
    ranges.sort_unstable();
    // Ranges one id apart merge: the id between two neighbours' ranges has its
    // marker bit in an odd place, so it is no cell's.
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(ranges.len());
    for (low, high) in ranges {
        match merged.last_mut() {
            Some(last) if low <= last.1.saturating_add(2) => last.1 = last.1.max(high),
            _ => merged.push((low, high)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn point(lon: f64, lat: f64) -> BoundingBox {
        BoundingBox {
            min_lon: lon,
            min_lat: lat,
            max_lon: lon,
            max_lat: lat,
        }
    }

    fn within(ranges: &[(i64, i64)], cell: i64) -> bool {
        ranges
            .iter()
            .any(|&(low, high)| (low..=high).contains(&cell))
    }

    /// Coordinates that favour the edges where cells split (the poles, the
    /// antimeridian, the equator, the prime meridian), and anywhere else.
    fn coordinate(min: f64, max: f64) -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(min),
            Just(max),
            Just(0.0),
            Just(-1e-9),
            Just(1e-9),
            min..=max,
            // Close to one of a few cell edges at a coarse level.
            (0u32..8, -1e-6..1e-6f64).prop_map(move |(k, e)| {
                (min + (max - min) * f64::from(k) / 8.0 + e).clamp(min, max)
            }),
        ]
    }

    /// Boxes from a point to the whole world.
    fn bounding_box() -> impl Strategy<Value = BoundingBox> {
        (
            coordinate(-180.0, 180.0),
            coordinate(-90.0, 90.0),
            prop_oneof![Just(0.0), 0.0..1e-4, 0.0..0.05, 0.0..5.0, 0.0..360.0],
            prop_oneof![Just(0.0), 0.0..1e-4, 0.0..0.05, 0.0..5.0, 0.0..180.0],
        )
            .prop_map(|(lon, lat, width, height)| BoundingBox {
                min_lon: lon,
                min_lat: lat,
                max_lon: (lon + width).min(180.0),
                max_lat: (lat + height).min(90.0),
            })
    }

    /// `b` moved so that its lower left corner is a point of `target` (`x`, `y` the
    /// point's place across it), clipped to the world: the two then meet.
    fn moved_onto(b: BoundingBox, target: &BoundingBox, x: f64, y: f64) -> BoundingBox {
        let lon = target.min_lon + (target.max_lon - target.min_lon) * x;
        let lat = target.min_lat + (target.max_lat - target.min_lat) * y;
        let (lon, lat) = (lon.min(target.max_lon), lat.min(target.max_lat));
        BoundingBox {
            min_lon: lon,
            min_lat: lat,
            max_lon: (lon + (b.max_lon - b.min_lon)).min(180.0),
            max_lat: (lat + (b.max_lat - b.min_lat)).min(90.0),
        }
    }

    fn meet(a: &BoundingBox, b: &BoundingBox) -> bool {
        a.min_lon <= b.max_lon
            && b.min_lon <= a.max_lon
            && a.min_lat <= b.max_lat
            && b.min_lat <= a.max_lat
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// The soundness the query side rests on: a query never misses a stored box
        /// that meets its box.
        #[test]
        fn the_ranges_of_a_box_hold_the_cell_of_every_box_meeting_it(
            (stored, query) in (bounding_box(), bounding_box(), 0.0..=1.0f64, 0.0..=1.0f64, any::<bool>())
                .prop_map(|(a, b, x, y, query_moved)| {
                    if query_moved {
                        (a, moved_onto(b, &a, x, y))
                    } else {
                        (moved_onto(a, &b, x, y), b)
                    }
                }),
        ) {
            prop_assert!(meet(&stored, &query));
            prop_assert!(cell_meets(cell_of(&stored), &query));
            // Only the stored box's own level is known to hold boxes.
            let ranges = ranges_meeting(&query, Levels(1 << level_of(cell_of(&stored))));
            prop_assert!(
                within(&ranges, cell_of(&stored)),
                "{stored:?} (cell {}) missed by {query:?}: {ranges:?}",
                cell_of(&stored)
            );
        }

        #[test]
        fn the_ranges_are_sorted_apart_and_few(query in bounding_box()) {
            let ranges = ranges_meeting(&query, Levels::ALL);
            prop_assert!(!ranges.is_empty() && ranges.len() <= MAX_RANGES, "{}", ranges.len());
            prop_assert!(ranges.iter().all(|(low, high)| low <= high));
            prop_assert!(ranges.windows(2).all(|w| w[0].1 + 2 < w[1].0), "{ranges:?}");
        }

        /// A box's cell is within the cell of any box holding it.
        #[test]
        fn a_box_is_kept_within_the_cell_of_a_box_holding_it(
            outer in bounding_box(),
            corner in (0.0..=1.0f64, 0.0..=1.0f64),
            size in (0.0..=1.0f64, 0.0..=1.0f64),
        ) {
            let width = outer.max_lon - outer.min_lon;
            let height = outer.max_lat - outer.min_lat;
            let min_lon = outer.min_lon + width * corner.0;
            let min_lat = outer.min_lat + height * corner.1;
            let inner = BoundingBox {
                min_lon,
                min_lat,
                max_lon: (min_lon + (outer.max_lon - min_lon) * size.0).min(outer.max_lon),
                max_lat: (min_lat + (outer.max_lat - min_lat) * size.1).min(outer.max_lat),
            };
            let (low, high) = descendants(cell_of(&outer));
            prop_assert!((low..=high).contains(&cell_of(&inner)));
        }
    }

    /// A cell that misses the box is told apart: a point is its own cell.
    #[test]
    fn a_cell_meets_the_boxes_its_area_meets() {
        let station = cell_of(&point(138.389, 34.972));
        assert!(cell_meets(station, &point(138.389, 34.972).grown_by(1.0)));
        assert!(!cell_meets(station, &point(138.389, 34.9725).grown_by(1.0)));
        let across = BoundingBox {
            min_lon: 10.0,
            min_lat: -1.0,
            max_lon: 11.0,
            max_lat: 1.0,
        };
        // Kept in the whole world's cell, which meets every box.
        assert!(cell_meets(cell_of(&across), &point(-170.0, 80.0)));
    }

    proptest! {
        #[test]
        fn deinterleave_undoes_interleave(x in 0u32..(1 << MAX_LEVEL), y in 0u32..(1 << MAX_LEVEL)) {
            prop_assert_eq!(deinterleave(interleave(x, y)), (x, y));
        }
    }

    #[test]
    fn ids_nest_and_stay_positive() {
        assert_eq!(cell_id(0, 0, 0), 1 << 60);
        assert_eq!(descendants(cell_id(0, 0, 0)), (1, (1 << 61) - 1));
        let last = cell_id(MAX_LEVEL, (1 << MAX_LEVEL) - 1, (1 << MAX_LEVEL) - 1);
        assert_eq!(last, (1 << 61) - 1);
        assert_eq!(descendants(last), (last, last));
        // A level-1 cell's range is a quarter of the world's, but for the id between
        // neighbours, which is no cell's.
        let (low, high) = descendants(cell_id(1, 1, 0));
        assert_eq!(high - low + 1, (1 << 59) - 1);
        assert_eq!(descendants(cell_id(1, 0, 0)).1 + 2, low);
    }

    #[test]
    fn a_point_is_kept_at_the_last_level_and_a_box_across_the_equator_at_the_first() {
        let station = cell_of(&point(138.389, 34.972));
        assert_eq!(descendants(station), (station, station));
        let across = BoundingBox {
            min_lon: 10.0,
            min_lat: -1.0,
            max_lon: 11.0,
            max_lat: 1.0,
        };
        assert_eq!(cell_of(&across), cell_id(0, 0, 0));
    }

    /// The ranges narrow: a point 2 km from a 1 km query box is outside them, while
    /// the whole world is one range.
    #[test]
    fn ranges_narrow_to_the_neighbourhood_of_the_box() {
        let shizuoka = point(138.389, 34.972).grown_by(1_000.0);
        let ranges = ranges_meeting(&shizuoka, Levels::ALL);
        assert!(within(&ranges, cell_of(&point(138.389, 34.972))));
        assert!(!within(&ranges, cell_of(&point(138.389 + 0.035, 34.972))));
        assert!(!within(&ranges, cell_of(&point(138.389, 34.972 + 0.03))));
        let world = BoundingBox {
            min_lon: -180.0,
            min_lat: -90.0,
            max_lon: 180.0,
            max_lat: 90.0,
        };
        assert_eq!(
            ranges_meeting(&world, Levels::ALL),
            vec![descendants(cell_id(0, 0, 0))]
        );
        // Where no box is kept above the last level, only the covering cells.
        let points_only = ranges_meeting(&shizuoka, Levels(0));
        assert!(points_only.len() < ranges.len());
        assert!(within(&points_only, cell_of(&point(138.389, 34.972))));
    }
}
