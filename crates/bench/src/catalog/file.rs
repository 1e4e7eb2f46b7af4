//! The ingest scenario's input: a 指定緊急避難場所一覧 file in the current standard's
//! 39-column layout (the header taken from `catalog::standard`, so it follows the
//! standard the catalog recognises), encoded as Shift_JIS as municipalities publish
//! it, with the mess real files have: hazard flags written as ○ or 1, full-width
//! digits in building floors, bracketed area codes in phone numbers, remarks with
//! commas and quotes that need CSV quoting. Rows are written one at a time, so the
//! generator's memory does not grow with the file.

use super::places::{MUNICIPALITIES, SITE_KINDS, TOWNS};
use crate::data::SplitMix;
use crate::error::BenchError;
use std::io::{BufWriter, Write};
use std::path::Path;

/// The standard the file follows.
pub const SHELTER_SCHEMA: &str = "current-03-emergency-evacuation-sites";

/// What was written.
pub struct Written {
    pub rows: usize,
    pub bytes: u64,
    pub columns: usize,
}

/// One evacuation site, the values every column is derived from.
struct Site {
    n: usize,
    city: usize,
    town: usize,
    kind: usize,
    block: u64,
    lot: u64,
    lat: f64,
    lon: f64,
    capacity: u64,
    rng: SplitMix,
}

impl Site {
    fn new(n: usize) -> Site {
        let mut rng = SplitMix::new(0x5348_454c_5445_5200 ^ n as u64);
        let city = rng.below(MUNICIPALITIES.len() as u64) as usize;
        let town = rng.below(TOWNS.len() as u64) as usize;
        let kind = rng.below(SITE_KINDS.len() as u64) as usize;
        let centre = &MUNICIPALITIES[city];
        // Within about ±8 km of the municipality's centre.
        let lat = centre.lat + (rng.next_f64() - 0.5) * 0.15;
        let lon = centre.lon + (rng.next_f64() - 0.5) * 0.18;
        Site {
            n,
            city,
            town,
            kind,
            block: 1 + rng.below(9),
            lot: 1 + rng.below(3000),
            lat,
            lon,
            capacity: 50 + rng.below(40) * 50,
            rng,
        }
    }

    /// The value of the column `name`, or `None` for a column this generator does
    /// not know (the standard changed: the caller stops rather than guess).
    fn value(&mut self, name: &str) -> Option<String> {
        let city = &MUNICIPALITIES[self.city];
        let (town, town_kana, town_romaji) = TOWNS[self.town];
        let (kind, kind_kana, kind_en, hazards) = SITE_KINDS[self.kind];
        let number = self.n % 97 + 1;
        let hazard = |i: usize, flag: &str| {
            if hazards[i] {
                flag.to_owned()
            } else {
                String::new()
            }
        };
        // Half the files write the flags as ○, as 焼津市 does; the others as 1.
        let flag = if self.city.is_multiple_of(2) {
            "○"
        } else {
            "1"
        };
        let value = match name {
            "全国地方公共団体コード" | "所在地_全国地方公共団体コード" | "市区町村コード" => {
                city.code.to_owned()
            }
            "ID" => format!("{}{:07}", city.code, self.n + 1),
            "名称" => format!("{town}第{number}{kind}"),
            "名称_カナ" => format!("{town_kana}ダイ{number}{kind_kana}"),
            "名称_英字" => format!("{town_romaji} No.{number} {kind_en}"),
            "町字ID" => format!("{:04}{:03}", self.town + 1, self.block),
            "所在地_連結表記" => format!(
                "静岡県{}{town}{}丁目{}番地",
                city.name, self.block, self.lot
            ),
            "所在地_都道府県" => "静岡県".to_owned(),
            "所在地_市区町村" | "地方公共団体名" => city.name.to_owned(),
            "所在地_町字" => format!("{town}{}丁目", self.block),
            "所在地_番地以下" => format!("{}", self.lot),
            "建物名等(方書)" => match self.rng.below(4) {
                0 => format!("{}階", ["１", "２", "３", "屋上"][self.n % 4]),
                _ => String::new(),
            },
            "緯度" => format!("{:.6}", self.lat),
            "経度" => format!("{:.6}", self.lon),
            "標高" => format!("{:.1}", 1.0 + self.rng.below(400) as f64 / 10.0),
            "電話番号" => {
                // Ten digits: a four-digit area code leaves two for the exchange.
                let local = 1000 + self.rng.below(9000);
                let exchange = if city.area_code.len() == 4 {
                    format!("{}", 20 + self.n % 80)
                } else {
                    format!("{}", 600 + self.n % 100)
                };
                if self.n.is_multiple_of(3) {
                    format!("({}){exchange}-{local}", city.area_code)
                } else {
                    format!("{}-{exchange}-{local}", city.area_code)
                }
            }
            "内線番号" => match self.n % 5 {
                0 => format!("{}", 100 + self.n % 800),
                _ => String::new(),
            },
            "連絡先メールアドレス" => format!("bosai@city.{}.lg.jp", city.romaji),
            "連絡先FormURL" | "画像" | "画像_ライセンス" => String::new(),
            "連絡先備考（その他、SNSなど）" => match self.n % 7 {
                0 => "平日 8時30分から17時15分まで".to_owned(),
                _ => String::new(),
            },
            "郵便番号" => format!("{}-{:04}", city.postal_prefix, self.rng.below(100) * 10),
            "災害種別_洪水" => hazard(0, flag),
            "災害種別_崖崩れ、土石流及び地滑り" => hazard(1, flag),
            "災害種別_高潮" => hazard(2, flag),
            "災害種別_地震" => hazard(3, flag),
            "災害種別_津波" => hazard(4, flag),
            "災害種別_大規模な火事" => hazard(5, flag),
            "災害種別_内水氾濫" => hazard(6, flag),
            "災害種別_火山現象" => hazard(7, flag),
            "指定避難所との重複" => match self.kind {
                0 | 1 | 4 | 5 | 6 => flag.to_owned(),
                _ => String::new(),
            },
            "想定収容人数" => self.capacity.to_string(),
            "対象となる町会・自治会" => format!(
                "{town}{}区自治会、{town}{}区自治会",
                self.block,
                self.block + 1
            ),
            "URL" => format!(
                "https://www.city.{}.lg.jp/bosai/hinanbasho/{:07}.html",
                city.romaji,
                self.n + 1
            ),
            "備考" => match self.n % 10 {
                0 => "夜間は施錠、鍵は\"自主防災会長\"宅で保管".to_owned(),
                1 => "駐車場あり（20台）、ペット同行避難可".to_owned(),
                2 => "津波避難ビル,屋上まで外階段".to_owned(),
                _ => String::new(),
            },
            _ => return None,
        };
        Some(value)
    }
}

/// Appends `value` to `line` as one CSV field, quoted when it has to be.
fn push_field(line: &mut String, value: &str) {
    if value.contains([',', '"', '\n', '\r']) {
        line.push('"');
        line.push_str(&value.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(value);
    }
}

/// Writes the header and `rows` data rows to `path` in Shift_JIS, CRLF line ends.
pub fn write_shelter_file(path: &Path, rows: usize) -> Result<Written, BenchError> {
    let io = |source| BenchError::Io {
        what: "writing the generated file",
        path: path.to_path_buf(),
        source,
    };
    let schema = catalog::standard::schema(SHELTER_SCHEMA).ok_or_else(|| BenchError::Startup {
        what: "catalog ingest data",
        detail: format!("catalog::standard has no schema {SHELTER_SCHEMA}"),
    })?;
    let header: Vec<&str> = schema.columns.iter().map(|c| c.name).collect();
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).map_err(io)?);
    let mut line = String::with_capacity(1024);
    let mut bytes = 0u64;
    let mut write_line = |line: &str, out: &mut BufWriter<std::fs::File>| {
        let (encoded, _, unmappable) = encoding_rs::SHIFT_JIS.encode(line);
        if unmappable {
            return Err(BenchError::Startup {
                what: "catalog ingest data",
                detail: format!("a generated line has characters Shift_JIS lacks: {line}"),
            });
        }
        bytes += encoded.len() as u64;
        out.write_all(&encoded).map_err(io)
    };
    for (i, name) in header.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        push_field(&mut line, name);
    }
    line.push_str("\r\n");
    write_line(&line, &mut out)?;
    for n in 0..rows {
        line.clear();
        let mut site = Site::new(n);
        for (i, name) in header.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            let value = site.value(name).ok_or_else(|| BenchError::Startup {
                what: "catalog ingest data",
                detail: format!("the generator has no value for the standard's column {name}"),
            })?;
            push_field(&mut line, &value);
        }
        line.push_str("\r\n");
        write_line(&line, &mut out)?;
    }
    out.flush().map_err(io)?;
    Ok(Written {
        rows,
        bytes,
        columns: header.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalog::ingest::{Format, Options, Plan, Rows, Sink};

    struct Count(usize);

    impl Sink for Count {
        type Error = std::convert::Infallible;
        fn plan(&mut self, plan: &Plan) -> Result<(), Self::Error> {
            assert_eq!(plan.fields.len(), 39);
            Ok(())
        }
        fn batch(&mut self, rows: &mut Rows) -> Result<(), Self::Error> {
            self.0 += rows.len();
            Ok(())
        }
    }

    #[test]
    fn the_generated_file_is_the_current_standard_in_shift_jis_without_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shelters.csv");
        let written = write_shelter_file(&path, 300).unwrap();
        assert_eq!((written.rows, written.columns), (300, 39));
        let again = dir.path().join("again.csv");
        write_shelter_file(&again, 300).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            std::fs::read(&again).unwrap()
        );
        let mut sink = Count(0);
        let report =
            catalog::ingest::ingest(&path, Format::Csv, &Options::default(), &mut sink).unwrap();
        assert_eq!(report.encoding.as_deref(), Some("Shift_JIS"));
        assert_eq!(report.schema.as_ref().map(|s| s.id), Some(SHELTER_SCHEMA));
        assert_eq!((report.rows, sink.0), (300, 300));
        assert_eq!(report.errors, 0, "{:?}", report.by_code);
        // The mess is there on purpose: ○ flags and bracketed area codes.
        assert!(report.by_code.contains_key("flag"));
        assert!(report.by_code.contains_key("phone"));
    }
}
