//! The documents the benchmark sends: NGSI-LD shelters scattered over Shizuoka
//! prefecture, generated from a fixed seed so that every run (and every backend)
//! stores and queries the same data.

use serde_json::{json, Value};

/// The prefecture's rough bounding box (longitude, latitude).
const LNG: (f64, f64) = (137.47, 139.17);
const LAT: (f64, f64) = (34.58, 35.65);

/// The point the geo-queries search around: the middle of the bounding box, so a
/// circle around it lies wholly inside the data.
pub const QUERY_POINT: [f64; 2] = [(LNG.0 + LNG.1) / 2.0, (LAT.0 + LAT.1) / 2.0];
pub const QUERY_MAX_DISTANCE_M: u32 = 1000;
/// Capacities are spread over 0..=200, so `capacity>150` matches about a quarter.
pub const QUERY_MIN_CAPACITY: u32 = 150;
/// The 全国地方公共団体コード of 焼津市, whose shelters these pretend to be.
pub const MANAGED_BY: &str = "urn:ngsi-ld:LocalGovernment:222127";

/// Districts, facility kinds and towns to compose names and addresses from, each
/// with its reading, so that documents carry the multi-byte text real ones do.
const DISTRICTS: [(&str, &str); 8] = [
    ("焼津", "ヤイヅ"),
    ("大井川", "オオイガワ"),
    ("豊田", "トヨダ"),
    ("小川", "コガワ"),
    ("港", "ミナト"),
    ("東益津", "ヒガシマシヅ"),
    ("和田", "ワダ"),
    ("石津", "イシヅ"),
];
const KINDS: [(&str, &str); 6] = [
    ("小学校", "ショウガッコウ"),
    ("中学校", "チュウガッコウ"),
    ("公民館", "コウミンカン"),
    ("体育館", "タイイクカン"),
    ("高等学校", "コウトウガッコウ"),
    ("コミュニティ防災センター", "コミュニティボウサイセンター"),
];
const TOWNS: [&str; 8] = [
    "本町",
    "栄町",
    "駅北",
    "三ケ名",
    "大覚寺",
    "小川新町",
    "石津中町",
    "田尻",
];
const STATUSES: [&str; 3] = ["open", "closed", "full"];
const HAZARDS: [&str; 6] = [
    "flood",
    "tsunami",
    "earthquake",
    "landslide",
    "fire",
    "stormSurge",
];

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

/// Shelter number `n`: ten attributes like a real 避難所 record, every value a
/// function of `n` alone (the prefix only changes the id).
pub fn shelter(prefix: &str, n: usize) -> Value {
    let mut rng = SplitMix::new(0x5EED ^ (n as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let lng = LNG.0 + (LNG.1 - LNG.0) * rng.next_f64();
    let lat = LAT.0 + (LAT.1 - LAT.0) * rng.next_f64();
    // Five decimals (about a metre) keep the documents the size real data has.
    let round = |x: f64| (x * 100_000.0).round() / 100_000.0;
    let capacity = rng.below(201);
    let mut pick = |len: usize| rng.below(len as u64) as usize;
    let (district, district_kana) = DISTRICTS[pick(DISTRICTS.len())];
    let (kind, kind_kana) = KINDS[pick(KINDS.len())];
    let town = TOWNS[pick(TOWNS.len())];
    let (chome, banchi, go) = (1 + pick(5), 1 + pick(30), 1 + pick(20));
    // Mostly open, as during an evacuation; the rest closed or full.
    let status = STATUSES[[0, 0, 0, 0, 0, 0, 1, 1, 1, 2][pick(10)]];
    // A non-empty subset of the hazards, from a 6-bit mask.
    let mask = 1 + pick((1 << HAZARDS.len()) - 1);
    let hazards: Vec<&str> = HAZARDS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, h)| *h)
        .collect();
    let telephone = format!("054-{}-{:04}", 620 + pick(10), pick(10_000));
    let opened = format!(
        "2024-08-{:02}T{:02}:{:02}:00Z",
        1 + pick(28),
        pick(24),
        pick(60)
    );
    json!({
        "id": shelter_id(prefix, n),
        "type": "Shelter",
        "name": {"type": "Property", "value": format!("{district}{kind}第{n}避難所")},
        "nameKana": {
            "type": "Property",
            "value": format!("{district_kana}{kind_kana}ダイ{n}ヒナンジョ")
        },
        "address": {
            "type": "Property",
            "value": format!("静岡県焼津市{town}{chome}丁目{banchi}-{go}")
        },
        "capacity": {"type": "Property", "value": capacity},
        "status": {"type": "Property", "value": status},
        "hazardTypes": {"type": "Property", "value": hazards},
        "telephone": {"type": "Property", "value": telephone},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [round(lng), round(lat)]}
        },
        "managedBy": {"type": "Relationship", "object": MANAGED_BY},
        "openedAt": {"type": "Property", "value": opened, "observedAt": opened}
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
        let s = shelter("x", 3);
        let attributes = s.as_object().unwrap().len() - 2;
        assert_eq!(attributes, 10, "{s}");
        assert_eq!(s["managedBy"]["object"], MANAGED_BY);
        assert_eq!(s["openedAt"]["value"], s["openedAt"]["observedAt"]);
        assert!(s["name"]["value"].as_str().unwrap().contains("第3避難所"));
        assert!(s["address"]["value"]
            .as_str()
            .unwrap()
            .starts_with("静岡県焼津市"));
        assert!(STATUSES.contains(&s["status"]["value"].as_str().unwrap()));
        let hazards = s["hazardTypes"]["value"].as_array().unwrap();
        assert!(!hazards.is_empty());
        assert!(hazards
            .iter()
            .all(|h| HAZARDS.contains(&h.as_str().unwrap())));
        // Only the id depends on the prefix.
        let mut other = shelter("y", 3);
        other["id"] = s["id"].clone();
        assert_eq!(other, s);
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
