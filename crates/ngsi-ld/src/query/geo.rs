//! Parser of geo-queries (ETSI GS CIM 009 clause 4.10): turns the `georel`,
//! `geometry`, `coordinates` and `geoproperty` query parameters into a [`GeoQuery`].
//!
//! The four parameters arrive as separate strings, so every error names the parameter
//! it concerns; the reference geometry is validated with the same rules as stored
//! GeoProperties ([`Geometry::from_geojson`]), so a query can never hold a shape the
//! evaluator could not handle.

use super::{GeoQuery, GeoRel, Geometry};
use crate::NgsiError;
use serde_json::{json, Value};

/// The relations `georel` may name.
const GEORELS: &[&str] = &[
    "near",
    "within",
    "contains",
    "intersects",
    "disjoint",
    "equals",
    "overlaps",
];

/// The geometry types the `geometry` parameter may name (clause 4.10 leaves out
/// GeometryCollection, which has no `coordinates`).
const GEOMETRIES: &[&str] = &[
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
];

/// The GeoProperty tested when `geoproperty` is absent (still to be expanded).
const DEFAULT_GEOPROPERTY: &str = "location";

/// Parses `georel`, `geometry`, `coordinates` and `geoproperty` into a [`GeoQuery`].
pub fn parse_geo_query(
    georel: &str,
    geometry: &str,
    coordinates: &str,
    geoproperty: Option<&str>,
) -> Result<GeoQuery, NgsiError> {
    let rel = parse_georel(georel)?;
    let geometry = parse_geometry(geometry, coordinates)?;
    let property = match geoproperty {
        None => DEFAULT_GEOPROPERTY.to_string(),
        Some(name) if name.trim().is_empty() => {
            return Err(NgsiError::bad_request_data(
                "geoproperty must name a GeoProperty, it is empty",
            ))
        }
        Some(name) if name.chars().any(char::is_whitespace) => {
            return Err(NgsiError::bad_request_data(format!(
                "geoproperty '{name}' contains white space"
            )))
        }
        Some(name) => name.to_string(),
    };
    Ok(GeoQuery {
        rel,
        geometry,
        property,
    })
}

/// Parses `georel`: a relation name, and for `near` the `;`-separated distances.
fn parse_georel(georel: &str) -> Result<GeoRel, NgsiError> {
    let mut parts = georel.split(';');
    let name = parts.next().unwrap_or_default();
    let simple = match name {
        "near" => None,
        "within" => Some(GeoRel::Within),
        "contains" => Some(GeoRel::Contains),
        "intersects" => Some(GeoRel::Intersects),
        "disjoint" => Some(GeoRel::Disjoint),
        "equals" => Some(GeoRel::Equals),
        "overlaps" => Some(GeoRel::Overlaps),
        other => {
            return Err(NgsiError::bad_request_data(format!(
                "georel '{other}' is not one of {}",
                GEORELS.join(", ")
            )))
        }
    };
    if let Some(rel) = simple {
        return match parts.next() {
            None => Ok(rel),
            Some(extra) => Err(NgsiError::bad_request_data(format!(
                "georel '{georel}': '{name}' takes no modifiers, found '{extra}'"
            ))),
        };
    }
    let mut max_distance = None;
    let mut min_distance = None;
    for modifier in parts {
        let (key, number) = modifier.split_once("==").ok_or_else(|| {
            NgsiError::bad_request_data(format!(
                "georel '{georel}': '{modifier}' is not maxDistance==<metres> or minDistance==<metres>"
            ))
        })?;
        let slot = match key {
            "maxDistance" => &mut max_distance,
            "minDistance" => &mut min_distance,
            other => {
                return Err(NgsiError::bad_request_data(format!(
                    "georel '{georel}': '{other}' is not maxDistance or minDistance"
                )))
            }
        };
        if slot.is_some() {
            return Err(NgsiError::bad_request_data(format!(
                "georel '{georel}': {key} is given twice"
            )));
        }
        let metres = number
            .parse::<f64>()
            .ok()
            .filter(|m| m.is_finite() && *m >= 0.0)
            .ok_or_else(|| {
                NgsiError::bad_request_data(format!(
                    "georel '{georel}': {key} '{number}' is not a non-negative number of metres"
                ))
            })?;
        *slot = Some(metres);
    }
    match (max_distance, min_distance) {
        (None, None) => Err(NgsiError::bad_request_data(format!(
            "georel '{georel}': near needs maxDistance==<metres> and/or minDistance==<metres>"
        ))),
        (Some(max), Some(min)) if min > max => Err(NgsiError::bad_request_data(format!(
            "georel '{georel}': minDistance {min} is greater than maxDistance {max}"
        ))),
        _ => Ok(GeoRel::Near {
            max_distance,
            min_distance,
        }),
    }
}

/// Parses `geometry` and the JSON text of `coordinates` into a validated geometry.
fn parse_geometry(geometry: &str, coordinates: &str) -> Result<Geometry, NgsiError> {
    if !GEOMETRIES.contains(&geometry) {
        return Err(NgsiError::bad_request_data(format!(
            "geometry '{geometry}' is not one of {}",
            GEOMETRIES.join(", ")
        )));
    }
    let coordinates = form_spaces(coordinates);
    let coordinates: Value = serde_json::from_str(coordinates.trim()).map_err(|e| {
        NgsiError::bad_request_data(format!(
            "coordinates '{coordinates}' is not a JSON array: {e}"
        ))
    })?;
    if !coordinates.is_array() {
        return Err(NgsiError::bad_request_data(format!(
            "coordinates '{coordinates}' is not a JSON array"
        )));
    }
    let geojson = json!({ "type": geometry, "coordinates": coordinates });
    // The validator's paths already start with `coordinates`, naming the parameter.
    Geometry::from_geojson(&geojson).map_err(|e| {
        NgsiError::bad_request_data(format!("{e}, in the {geometry} of the geo-query"))
    })
}

/// Turns the `+` that form encoders (Python requests, `URLSearchParams`, Java's
/// `URLEncoder`) write for a space back into one. In JSON a `+` can only be the sign
/// of an exponent (`1e+5`), so every other `+` in coordinates was a space.
fn form_spaces(coordinates: &str) -> String {
    let mut out = String::with_capacity(coordinates.len());
    let mut previous = None;
    for c in coordinates.chars() {
        let exponent_sign = c == '+' && matches!(previous, Some('e' | 'E'));
        out.push(if c == '+' && !exponent_sign { ' ' } else { c });
        previous = Some(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProblemType;

    const POINT: &str = "[138.327,34.875]";

    fn error(georel: &str, geometry: &str, coordinates: &str, property: Option<&str>) -> String {
        match parse_geo_query(georel, geometry, coordinates, property) {
            Ok(q) => panic!("expected an error, got {q:?}"),
            Err(e) => {
                assert_eq!(e.problem, ProblemType::BadRequestData);
                e.detail
            }
        }
    }

    #[test]
    fn form_encoded_spaces_in_coordinates_are_read() {
        let q = parse_geo_query("equals", "Point", "[13.3986,+52.5547]", None).unwrap();
        assert_eq!(
            q.geometry.shape,
            ::geo::Geometry::Point(::geo::Point::new(13.3986, 52.5547))
        );
        // The sign of an exponent is kept.
        let q = parse_geo_query("equals", "Point", "[1.5e+1,+2E+0]", None).unwrap();
        assert_eq!(
            q.geometry.shape,
            ::geo::Geometry::Point(::geo::Point::new(15.0, 2.0))
        );
    }

    #[test]
    fn parses_near_with_distances() {
        let q = parse_geo_query("near;maxDistance==2000", "Point", POINT, None).unwrap();
        assert_eq!(
            q.rel,
            GeoRel::Near {
                max_distance: Some(2000.0),
                min_distance: None
            }
        );
        assert_eq!(q.property, "location");
        assert_eq!(q.geometry.geojson["type"], "Point");
        assert_eq!(
            q.geometry.shape,
            ::geo::Geometry::Point(::geo::Point::new(138.327, 34.875))
        );
        let q = parse_geo_query(
            "near;minDistance==100;maxDistance==2000.5",
            "Point",
            POINT,
            None,
        )
        .unwrap();
        assert_eq!(
            q.rel,
            GeoRel::Near {
                max_distance: Some(2000.5),
                min_distance: Some(100.0)
            }
        );
        let q = parse_geo_query(
            "near;minDistance==0",
            "Point",
            POINT,
            Some("observationSpace"),
        )
        .unwrap();
        assert_eq!(
            q.rel,
            GeoRel::Near {
                max_distance: None,
                min_distance: Some(0.0)
            }
        );
        assert_eq!(q.property, "observationSpace");
    }

    #[test]
    fn parses_every_topological_relation_and_geometry() {
        let polygon = "[[[138.2,34.8],[138.4,34.8],[138.4,34.95],[138.2,34.95],[138.2,34.8]]]";
        let cases = [
            ("within", GeoRel::Within),
            ("contains", GeoRel::Contains),
            ("intersects", GeoRel::Intersects),
            ("disjoint", GeoRel::Disjoint),
            ("equals", GeoRel::Equals),
            ("overlaps", GeoRel::Overlaps),
        ];
        for (name, rel) in cases {
            let q = parse_geo_query(name, "Polygon", polygon, None).unwrap();
            assert_eq!(q.rel, rel);
            assert!(matches!(q.geometry.shape, ::geo::Geometry::Polygon(_)));
        }
        let geometries = [
            ("MultiPoint", "[[0,0],[1,1]]"),
            ("LineString", " [[0,0],[1,1]] "),
            ("MultiLineString", "[[[0,0],[1,1]]]"),
            ("MultiPolygon", "[[[[0,0],[1,0],[1,1],[0,0]]]]"),
        ];
        for (geometry, coordinates) in geometries {
            let q = parse_geo_query("intersects", geometry, coordinates, None).unwrap();
            assert_eq!(q.geometry.geojson["type"], geometry);
        }
    }

    #[test]
    fn rejects_bad_georel() {
        let cases = [
            ("nearby", "georel 'nearby' is not one of near, within"),
            ("Within", "georel 'Within' is not one of"),
            ("", "georel '' is not one of"),
            (
                "near",
                "near needs maxDistance==<metres> and/or minDistance==<metres>",
            ),
            ("near;", "'' is not maxDistance==<metres>"),
            (
                "near;maxDistance:2000",
                "'maxDistance:2000' is not maxDistance==<metres>",
            ),
            (
                "near;radius==5",
                "'radius' is not maxDistance or minDistance",
            ),
            (
                "near;maxDistance==-1",
                "maxDistance '-1' is not a non-negative number of metres",
            ),
            (
                "near;maxDistance==abc",
                "maxDistance 'abc' is not a non-negative",
            ),
            (
                "near;minDistance==NaN",
                "minDistance 'NaN' is not a non-negative",
            ),
            ("near;maxDistance==inf", "maxDistance 'inf' is not"),
            (
                "near;maxDistance==1;maxDistance==2",
                "maxDistance is given twice",
            ),
            (
                "near;minDistance==10;maxDistance==5",
                "minDistance 10 is greater than maxDistance 5",
            ),
            (
                "within;maxDistance==5",
                "'within' takes no modifiers, found 'maxDistance==5'",
            ),
        ];
        for (georel, expected) in cases {
            let e = error(georel, "Point", POINT, None);
            assert!(
                e.contains(expected),
                "{georel}: '{e}' does not contain '{expected}'"
            );
        }
    }

    #[test]
    fn rejects_bad_geometry_coordinates_and_geoproperty() {
        let e = error("within", "point", POINT, None);
        assert!(
            e.starts_with("geometry 'point' is not one of Point, MultiPoint"),
            "{e}"
        );
        let e = error("within", "GeometryCollection", POINT, None);
        assert!(
            e.contains("geometry 'GeometryCollection' is not one of"),
            "{e}"
        );
        let e = error("within", "Point", "138.3,34.8", None);
        assert!(
            e.contains("coordinates '138.3,34.8' is not a JSON array"),
            "{e}"
        );
        let e = error("within", "Point", "{\"a\":1}", None);
        assert!(e.contains("is not a JSON array"), "{e}");
        let e = error("within", "Point", "[200,34]", None);
        assert!(
            e.contains("coordinates[0]: longitude 200 is outside"),
            "{e}"
        );
        let e = error("within", "Polygon", "[[[0,0],[1,0],[1,1],[0,1]]]", None);
        assert!(e.contains("coordinates[0][3]: ring is not closed"), "{e}");
        assert!(e.contains("Polygon"), "{e}");
        let e = error("within", "LineString", "[[0,0]]", None);
        assert!(
            e.contains("coordinates: a line string needs at least 2"),
            "{e}"
        );
        let e = error("within", "Point", POINT, Some(""));
        assert!(e.contains("geoproperty must name a GeoProperty"), "{e}");
        let e = error("within", "Point", POINT, Some("my location"));
        assert!(
            e.contains("geoproperty 'my location' contains white space"),
            "{e}"
        );
    }
}
