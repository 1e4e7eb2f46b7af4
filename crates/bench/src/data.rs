//! The documents the benchmark sends: NGSI-LD shelters scattered over Shizuoka
//! prefecture, generated from a fixed seed so that every run (and every backend)
//! stores and queries the same data.

use serde_json::{json, Value};

/// The prefecture's rough bounding box (longitude, latitude).
const LNG: (f64, f64) = (137.47, 139.17);
const LAT: (f64, f64) = (34.58, 35.65);

/// The point the geo-query searches around (near Shizuoka city / Yaizu).
pub const QUERY_POINT: [f64; 2] = [138.33, 34.87];
pub const QUERY_MAX_DISTANCE_M: u32 = 2000;
/// Capacities are spread over 0..=200, so `capacity>50` matches about three quarters.
pub const QUERY_MIN_CAPACITY: u32 = 50;

/// A small, fast, deterministic generator (SplitMix64); statistical quality is ample
/// for scattering points and picking ids, and it keeps the crate free of `rand`.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An integer in [0, n); 0 when n is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// The id of shelter number `n` of a family (`prefix` keeps scenarios apart).
pub fn shelter_id(prefix: &str, n: usize) -> String {
    format!("urn:ngsi-ld:Shelter:{prefix}{n}")
}

/// Shelter number `n`: its position and capacity depend only on `n`.
pub fn shelter(prefix: &str, n: usize) -> Value {
    let mut rng = SplitMix::new(0x5EED ^ (n as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let lng = LNG.0 + (LNG.1 - LNG.0) * rng.next_f64();
    let lat = LAT.0 + (LAT.1 - LAT.0) * rng.next_f64();
    // Five decimals (about a metre) keep the documents the size real data has.
    let round = |x: f64| (x * 100_000.0).round() / 100_000.0;
    json!({
        "id": shelter_id(prefix, n),
        "type": "Shelter",
        "name": {"type": "Property", "value": format!("避難所 {n}")},
        "capacity": {"type": "Property", "value": rng.below(201)},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [round(lng), round(lat)]}
        }
    })
}

/// Shelters `start..start+count` as one JSON array body.
pub fn shelter_batch(prefix: &str, start: usize, count: usize) -> Value {
    Value::Array((start..start + count).map(|n| shelter(prefix, n)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shelters_are_deterministic_and_inside_shizuoka() {
        assert_eq!(shelter("x", 7), shelter("x", 7));
        assert_ne!(shelter("x", 7)["location"], shelter("x", 8)["location"]);
        for n in 0..500 {
            let s = shelter("x", n);
            let c = &s["location"]["value"]["coordinates"];
            let (lng, lat) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
            assert!((LNG.0..=LNG.1).contains(&lng), "{lng}");
            assert!((LAT.0..=LAT.1).contains(&lat), "{lat}");
            assert!(s["capacity"]["value"].as_u64().unwrap() <= 200);
        }
        assert_eq!(shelter_batch("b", 10, 3).as_array().unwrap().len(), 3);
        assert_eq!(
            shelter_batch("b", 10, 3)[2]["id"],
            "urn:ngsi-ld:Shelter:b12"
        );
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = SplitMix::new(1);
        assert!((0..1000).all(|_| rng.below(10) < 10));
        assert_eq!(rng.below(0), 0);
    }
}
