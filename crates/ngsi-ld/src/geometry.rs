//! GeoJSON geometries (RFC 7946): validation of client input and conversion to `geo`
//! shapes, plus the great-circle distance between two shapes that `near` queries use.
//!
//! Client GeoJSON is checked strictly here, once, so the evaluator and the stores can
//! rely on every stored GeoProperty being a well-formed geometry in WGS 84 degrees.
//! Errors name the member at fault as a path (`coordinates[0][3]: ring is not closed`)
//! because a client staring at a large polygon needs to know which position is wrong.

pub use crate::query::Geometry;
use geo::{Closest, CoordsIter, Distance, Haversine, HaversineClosestPoint, Intersects, Point};
use geo::{Coord, GeometryCollection, LineString, MultiLineString, MultiPoint, MultiPolygon};
use serde_json::Value;

/// How deeply GeometryCollections may nest. RFC 7946 discourages nesting at all; the
/// bound keeps a hostile document from exhausting the stack.
const MAX_COLLECTION_DEPTH: usize = 8;

/// The geometry types of RFC 7946 clause 3.1, as the `type` member spells them.
pub const GEOMETRY_TYPES: &[&str] = &[
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
];

impl Geometry {
    /// Validates a GeoJSON geometry object (RFC 7946 clause 3.1).
    ///
    /// Positions must hold 2 or 3 finite numbers with longitude in −180..180 and
    /// latitude in −90..90; line strings need 2 positions, polygon rings 4 and must be
    /// closed; no geometry may be empty, since an empty location cannot be queried.
    pub fn from_geojson(value: &Value) -> Result<Geometry, String> {
        let shape = Geometry::shape_of(value)?;
        Ok(Geometry {
            geojson: value.clone(),
            shape,
        })
    }

    /// The shape of a GeoJSON geometry object, validated as [`Geometry::from_geojson`]
    /// validates it, without a copy of the object: for a caller that keeps the object
    /// itself, or needs only the shape (the copy was a sixteenth of the instructions
    /// of decoding an entity with a location, and a query's `near` made one for
    /// every candidate).
    pub fn shape_of(value: &Value) -> Result<geo::Geometry<f64>, String> {
        parse_geometry(value, "", 0)
    }

    /// The great-circle distance in metres from this geometry to `other`.
    pub fn distance_m(&self, other: &Geometry) -> f64 {
        haversine_distance(&self.shape, &other.shape)
    }
}

fn parse_geometry(value: &Value, at: &str, depth: usize) -> Result<geo::Geometry<f64>, String> {
    let object = value
        .as_object()
        .ok_or_else(|| format!("{}: a GeoJSON geometry must be a JSON object", here(at)))?;
    let kind = match object.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(_) => return Err(format!("{at}type: must be a string")),
        None => return Err(format!("{at}type: missing")),
    };
    if kind == "GeometryCollection" {
        if depth >= MAX_COLLECTION_DEPTH {
            return Err(format!(
                "{at}geometries: GeometryCollections nested deeper than {MAX_COLLECTION_DEPTH} levels"
            ));
        }
        let members = match object.get("geometries") {
            Some(Value::Array(members)) => members,
            Some(_) => return Err(format!("{at}geometries: must be an array")),
            None => return Err(format!("{at}geometries: missing")),
        };
        if members.is_empty() {
            return Err(format!("{at}geometries: must not be empty"));
        }
        let shapes = members
            .iter()
            .enumerate()
            .map(|(i, m)| parse_geometry(m, &format!("{at}geometries[{i}]."), depth + 1))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(geo::Geometry::GeometryCollection(GeometryCollection(
            shapes,
        )));
    }
    if !GEOMETRY_TYPES.contains(&kind) {
        return Err(format!(
            "{at}type: '{kind}' is not a GeoJSON geometry type (one of {})",
            GEOMETRY_TYPES.join(", ")
        ));
    }
    let coordinates = object
        .get("coordinates")
        .ok_or_else(|| format!("{at}coordinates: missing"))?;
    let path = format!("{at}coordinates");
    parse_coordinates(kind, coordinates, &path)
}

/// Converts the `coordinates` member of a geometry of the given (non-collection) type.
fn parse_coordinates(
    kind: &str,
    coordinates: &Value,
    path: &str,
) -> Result<geo::Geometry<f64>, String> {
    Ok(match kind {
        "Point" => geo::Geometry::Point(Point(position(coordinates, path)?)),
        "MultiPoint" => geo::Geometry::MultiPoint(MultiPoint(
            non_empty(
                coordinates,
                path,
                "a MultiPoint needs at least one position",
            )?
            .iter()
            .enumerate()
            .map(|(i, p)| position(p, &format!("{path}[{i}]")).map(Point))
            .collect::<Result<_, _>>()?,
        )),
        "LineString" => geo::Geometry::LineString(line_string(coordinates, path)?),
        "MultiLineString" => geo::Geometry::MultiLineString(MultiLineString(
            non_empty(
                coordinates,
                path,
                "a MultiLineString needs at least one line",
            )?
            .iter()
            .enumerate()
            .map(|(i, l)| line_string(l, &format!("{path}[{i}]")))
            .collect::<Result<_, _>>()?,
        )),
        "Polygon" => geo::Geometry::Polygon(polygon(coordinates, path)?),
        "MultiPolygon" => geo::Geometry::MultiPolygon(MultiPolygon(
            non_empty(
                coordinates,
                path,
                "a MultiPolygon needs at least one polygon",
            )?
            .iter()
            .enumerate()
            .map(|(i, p)| polygon(p, &format!("{path}[{i}]")))
            .collect::<Result<_, _>>()?,
        )),
        other => return Err(format!("type: '{other}' has no coordinates")),
    })
}

/// The prefix of a path without its trailing dot, or `geometry` at the top.
fn here(at: &str) -> &str {
    match at.strip_suffix('.') {
        Some(path) => path,
        None if at.is_empty() => "geometry",
        None => at,
    }
}

fn non_empty<'a>(value: &'a Value, path: &str, why: &str) -> Result<&'a [Value], String> {
    match value {
        Value::Array(items) if items.is_empty() => Err(format!("{path}: {why}")),
        Value::Array(items) => Ok(items),
        _ => Err(format!("{path}: must be an array")),
    }
}

fn position(value: &Value, path: &str) -> Result<Coord<f64>, String> {
    let items = match value {
        Value::Array(items) => items,
        _ => return Err(format!("{path}: a position must be an array of numbers")),
    };
    if !(2..=3).contains(&items.len()) {
        return Err(format!(
            "{path}: a position must have 2 or 3 numbers, not {}",
            items.len()
        ));
    }
    let mut numbers = [0.0_f64; 3];
    for (i, (item, slot)) in items.iter().zip(numbers.iter_mut()).enumerate() {
        *slot = item
            .as_f64()
            .filter(|n| n.is_finite())
            .ok_or_else(|| format!("{path}[{i}]: must be a finite number"))?;
    }
    let [lon, lat, _] = numbers;
    if !(-180.0..=180.0).contains(&lon) {
        return Err(format!("{path}[0]: longitude {lon} is outside -180..180"));
    }
    if !(-90.0..=90.0).contains(&lat) {
        return Err(format!("{path}[1]: latitude {lat} is outside -90..90"));
    }
    Ok(Coord { x: lon, y: lat })
}

fn positions(value: &Value, path: &str) -> Result<Vec<Coord<f64>>, String> {
    match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, p)| position(p, &format!("{path}[{i}]")))
            .collect(),
        _ => Err(format!("{path}: must be an array of positions")),
    }
}

fn line_string(value: &Value, path: &str) -> Result<LineString<f64>, String> {
    let coords = positions(value, path)?;
    if coords.len() < 2 {
        return Err(format!(
            "{path}: a line string needs at least 2 positions, not {}",
            coords.len()
        ));
    }
    Ok(LineString(coords))
}

fn ring(value: &Value, path: &str) -> Result<LineString<f64>, String> {
    let coords = positions(value, path)?;
    if coords.len() < 4 {
        return Err(format!(
            "{path}: a linear ring needs at least 4 positions, not {}",
            coords.len()
        ));
    }
    if coords.first() != coords.last() {
        return Err(format!(
            "{path}[{}]: ring is not closed (the last position must equal the first)",
            coords.len() - 1
        ));
    }
    Ok(LineString(coords))
}

fn polygon(value: &Value, path: &str) -> Result<geo::Polygon<f64>, String> {
    let rings = non_empty(value, path, "a polygon needs at least its exterior ring")?;
    let mut rings = rings
        .iter()
        .enumerate()
        .map(|(i, r)| ring(r, &format!("{path}[{i}]")));
    let exterior = match rings.next() {
        Some(exterior) => exterior?,
        None => {
            return Err(format!(
                "{path}: a polygon needs at least its exterior ring"
            ))
        }
    };
    let interiors = rings.collect::<Result<Vec<_>, _>>()?;
    Ok(geo::Polygon::new(exterior, interiors))
}

/// The great-circle (haversine) distance in metres between two shapes in WGS 84
/// degrees: zero when they touch or overlap, otherwise the shortest distance from a
/// vertex of either shape to the other shape. Taking the minimum over both directions
/// makes the result symmetric, and the closest pair of two disjoint shapes always
/// involves a vertex of one of them.
pub fn haversine_distance(a: &geo::Geometry<f64>, b: &geo::Geometry<f64>) -> f64 {
    if let (geo::Geometry::Point(p), geo::Geometry::Point(q)) = (a, b) {
        return Haversine::distance(*p, *q);
    }
    if a.intersects(b) {
        return 0.0;
    }
    vertex_distance(a, b).min(vertex_distance(b, a))
}

/// The shortest distance from a vertex of `from` to the shape `to`.
fn vertex_distance(from: &geo::Geometry<f64>, to: &geo::Geometry<f64>) -> f64 {
    from.coords_iter()
        .map(|c| point_distance(Point(c), to))
        .fold(f64::INFINITY, f64::min)
}

fn point_distance(p: Point<f64>, to: &geo::Geometry<f64>) -> f64 {
    match to.haversine_closest_point(&p) {
        Closest::Intersection(_) => 0.0,
        Closest::SinglePoint(q) => Haversine::distance(p, q),
        // Several points are equally close (or none is defined): any vertex of the
        // target is an upper bound, and the nearest vertex is the best one available.
        Closest::Indeterminate => to
            .coords_iter()
            .map(|c| Haversine::distance(p, Point(c)))
            .fold(f64::INFINITY, f64::min),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn err(value: Value) -> String {
        match Geometry::from_geojson(&value) {
            Ok(g) => panic!("expected an error, got {:?}", g.shape),
            Err(e) => e,
        }
    }

    #[test]
    fn accepts_every_geometry_type() {
        let ring = json!([[0, 0], [1, 0], [1, 1], [0, 0]]);
        let cases = [
            json!({"type": "Point", "coordinates": [138.327, 34.875]}),
            json!({"type": "Point", "coordinates": [138.327, 34.875, 12.5]}),
            json!({"type": "MultiPoint", "coordinates": [[0, 0], [1, 1]]}),
            json!({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}),
            json!({"type": "MultiLineString", "coordinates": [[[0, 0], [1, 1]]]}),
            json!({"type": "Polygon", "coordinates": [ring.clone()]}),
            json!({"type": "MultiPolygon", "coordinates": [[ring.clone()], [ring]]}),
            json!({"type": "GeometryCollection", "geometries": [
                {"type": "Point", "coordinates": [0, 0]},
                {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}
            ]}),
        ];
        for case in cases {
            let geometry = Geometry::from_geojson(&case).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(geometry.geojson, case);
        }
    }

    #[test]
    fn converts_longitude_to_x_and_latitude_to_y() {
        let g = Geometry::from_geojson(&json!({"type": "Point", "coordinates": [138.327, 34.875]}))
            .unwrap();
        assert_eq!(g.shape, geo::Geometry::Point(Point::new(138.327, 34.875)));
        let g = Geometry::from_geojson(
            &json!({"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 1], [0, 0]], [[0.5, 0.1], [1, 0.1], [1, 0.2], [0.5, 0.1]]]}),
        )
        .unwrap();
        match g.shape {
            geo::Geometry::Polygon(p) => {
                assert_eq!(p.exterior().0.len(), 4);
                assert_eq!(p.interiors().len(), 1);
                assert_eq!(p.exterior().0[1], Coord { x: 2.0, y: 0.0 });
            }
            other => panic!("expected a polygon, got {other:?}"),
        }
    }

    #[test]
    fn names_what_is_wrong_and_where() {
        let cases = [
            (
                json!([1, 2]),
                "geometry: a GeoJSON geometry must be a JSON object",
            ),
            (json!({"coordinates": [0, 0]}), "type: missing"),
            (
                json!({"type": 3, "coordinates": [0, 0]}),
                "type: must be a string",
            ),
            (
                json!({"type": "Circle", "coordinates": [0, 0]}),
                "type: 'Circle' is not a GeoJSON geometry type",
            ),
            (
                json!({"type": "Feature", "geometry": null}),
                "type: 'Feature' is not",
            ),
            (json!({"type": "Point"}), "coordinates: missing"),
            (
                json!({"type": "Point", "coordinates": [1]}),
                "coordinates: a position must have 2 or 3 numbers, not 1",
            ),
            (
                json!({"type": "Point", "coordinates": [1, 2, 3, 4]}),
                "not 4",
            ),
            (
                json!({"type": "Point", "coordinates": [1, "2"]}),
                "coordinates[1]: must be a finite number",
            ),
            (
                json!({"type": "Point", "coordinates": [181, 0]}),
                "coordinates[0]: longitude 181 is outside -180..180",
            ),
            (
                json!({"type": "Point", "coordinates": [0, -90.5]}),
                "coordinates[1]: latitude -90.5 is outside -90..90",
            ),
            (
                json!({"type": "Point", "coordinates": {"x": 1}}),
                "coordinates: a position must be an array",
            ),
            (
                json!({"type": "MultiPoint", "coordinates": []}),
                "coordinates: a MultiPoint needs at least one position",
            ),
            (
                json!({"type": "MultiPoint", "coordinates": [[0, 0], [0, 91]]}),
                "coordinates[1][1]: latitude 91",
            ),
            (
                json!({"type": "LineString", "coordinates": [[0, 0]]}),
                "coordinates: a line string needs at least 2 positions, not 1",
            ),
            (
                json!({"type": "MultiLineString", "coordinates": [[[0, 0], [1, 1]], [[0, 0]]]}),
                "coordinates[1]: a line string needs at least 2",
            ),
            (
                json!({"type": "Polygon", "coordinates": []}),
                "coordinates: a polygon needs at least its exterior ring",
            ),
            (
                json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}),
                "coordinates[0]: a linear ring needs at least 4 positions, not 3",
            ),
            (
                json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}),
                "coordinates[0][3]: ring is not closed",
            ),
            (
                json!({"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]], [[[0, 0], [1, 0], [1, 1], [0, 2]]]]}),
                "coordinates[1][0][3]: ring is not closed",
            ),
            (json!({"type": "GeometryCollection"}), "geometries: missing"),
            (
                json!({"type": "GeometryCollection", "geometries": []}),
                "geometries: must not be empty",
            ),
            (
                json!({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [0, 0]}, {"type": "Point", "coordinates": [0, 100]}]}),
                "geometries[1].coordinates[1]: latitude 100",
            ),
            (
                json!({"type": "GeometryCollection", "geometries": [7]}),
                "geometries[0]: a GeoJSON geometry must be a JSON object",
            ),
        ];
        for (value, expected) in cases {
            let e = err(value.clone());
            assert!(
                e.contains(expected),
                "{value}: '{e}' does not contain '{expected}'"
            );
        }
    }

    #[test]
    fn bounds_nesting_of_collections() {
        let mut value = json!({"type": "Point", "coordinates": [0, 0]});
        for _ in 0..=MAX_COLLECTION_DEPTH {
            value = json!({"type": "GeometryCollection", "geometries": [value]});
        }
        assert!(err(value).contains("nested deeper than"));
    }

    fn shape(value: Value) -> geo::Geometry<f64> {
        Geometry::from_geojson(&value).unwrap().shape
    }

    #[test]
    fn haversine_distance_between_shapes() {
        let yaizu = shape(json!({"type": "Point", "coordinates": [138.327, 34.875]}));
        let tokyo = shape(json!({"type": "Point", "coordinates": [139.767, 35.681]}));
        let d = haversine_distance(&yaizu, &tokyo);
        assert!((155_000.0..165_000.0).contains(&d), "Yaizu–Tokyo {d} m");
        // One degree of latitude along a meridian is about 111.2 km.
        let line = shape(json!({"type": "LineString", "coordinates": [[0, 1], [2, 1]]}));
        let origin_above = shape(json!({"type": "Point", "coordinates": [1, 0]}));
        let d = haversine_distance(&origin_above, &line);
        assert!((111_000.0..111_400.0).contains(&d), "point to line {d} m");
        let square = shape(
            json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}),
        );
        let inside = shape(json!({"type": "Point", "coordinates": [0.5, 0.5]}));
        assert_eq!(haversine_distance(&inside, &square), 0.0);
        assert_eq!(haversine_distance(&square, &inside), 0.0);
        let east = shape(json!({"type": "Point", "coordinates": [2, 0.5]}));
        let d = haversine_distance(&east, &square);
        assert!(
            (111_000.0..111_400.0).contains(&d),
            "point to polygon {d} m"
        );
    }

    /// Arbitrary JSON made of nested arrays of numbers (and the odd string or null).
    fn nested_arrays() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            (-200i64..200).prop_map(Value::from),
            Just(Value::Null),
            Just(Value::from("x")),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop::collection::vec(inner, 0..6).prop_map(Value::Array)
        })
    }

    fn kind() -> impl Strategy<Value = &'static str> {
        prop::sample::select(GEOMETRY_TYPES)
    }

    proptest! {
        #[test]
        fn from_geojson_never_panics(kind in kind(), coordinates in nested_arrays()) {
            let value = json!({"type": kind, "coordinates": coordinates, "geometries": [coordinates]});
            let _ = Geometry::from_geojson(&value);
            let _ = Geometry::from_geojson(&coordinates);
        }

        #[test]
        fn distance_is_symmetric_and_non_negative(
            a in prop::collection::vec((-180.0..180.0f64, -90.0..90.0f64), 1..5),
            b in prop::collection::vec((-180.0..180.0f64, -90.0..90.0f64), 1..5),
        ) {
            let to_shape = |points: &[(f64, f64)]| -> geo::Geometry<f64> {
                if points.len() == 1 {
                    geo::Geometry::Point(Point::new(points[0].0, points[0].1))
                } else {
                    geo::Geometry::LineString(points.iter().map(|&(x, y)| Coord { x, y }).collect())
                }
            };
            let (a, b) = (to_shape(&a), to_shape(&b));
            let ab = haversine_distance(&a, &b);
            let ba = haversine_distance(&b, &a);
            prop_assert!(ab >= 0.0 && ab.is_finite());
            prop_assert!((ab - ba).abs() <= 1e-6 * ab.max(1.0), "{} vs {}", ab, ba);
        }
    }
}
