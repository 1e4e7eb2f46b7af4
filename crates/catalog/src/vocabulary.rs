//! The fixed vocabularies of the catalog: the licences datasets may carry and the
//! 17 categories (groups) of Japan's open data lists, the ones DATA.GO.JP and the
//! e-Stat portal use, so that a prefecture's catalog sorts data as the nation's does.

/// A licence a dataset may name by `license_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct License {
    pub id: &'static str,
    pub title: &'static str,
    pub url: &'static str,
    /// Whether data under it is open (CKAN's `isopen`, OKD-conformant).
    pub open: bool,
}

/// The licences renkei knows, with the public data licence of Japan first.
pub const LICENSES: &[License] = &[
    License {
        id: "PDL-1.0",
        title: "公共データ利用規約 (第1.0版) / Public Data License 1.0",
        url: "https://www.digital.go.jp/resources/open_data/public_data_license_v1.0",
        open: true,
    },
    License {
        id: "CC-BY-4.0",
        title: "クリエイティブ・コモンズ 表示 4.0 国際 / Creative Commons Attribution 4.0",
        url: "https://creativecommons.org/licenses/by/4.0/",
        open: true,
    },
    License {
        id: "CC-BY-SA-4.0",
        title: "クリエイティブ・コモンズ 表示-継承 4.0 国際 / Creative Commons Attribution-ShareAlike 4.0",
        url: "https://creativecommons.org/licenses/by-sa/4.0/",
        open: true,
    },
    License {
        id: "CC0-1.0",
        title: "CC0 1.0 全世界 パブリック・ドメイン提供 / Creative Commons CCZero",
        url: "https://creativecommons.org/publicdomain/zero/1.0/",
        open: true,
    },
    License {
        id: "other-closed",
        title: "その他 (非オープン) / Other (Not Open)",
        url: "",
        open: false,
    },
];

/// The licence with this id. CKAN's own ids for the same licences (`cc-by`,
/// `cc-by-sa`, `cc-zero`, `odc-pddl` aside) are accepted too, so that datasets
/// harvested or loaded from a stock CKAN keep their licence.
pub fn license(id: &str) -> Option<&'static License> {
    let canonical = match id {
        "cc-by" | "CC-BY" | "cc-by-4.0" => "CC-BY-4.0",
        "cc-by-sa" | "CC-BY-SA" | "cc-by-sa-4.0" => "CC-BY-SA-4.0",
        "cc-zero" | "CC0" | "cc0" => "CC0-1.0",
        "pdl-1.0" | "PDL1.0" | "pdl1.0" => "PDL-1.0",
        other => other,
    };
    LICENSES.iter().find(|l| l.id == canonical)
}

/// One of the 17 categories, a CKAN group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Category {
    /// The group's URL name.
    pub name: &'static str,
    pub title_ja: &'static str,
    pub title_en: &'static str,
}

macro_rules! categories {
    ($($name:literal, $ja:literal, $en:literal;)*) => {
        /// The 17 categories of DATA.GO.JP (e-Stat's statistical fields), in order.
        pub const CATEGORIES: &[Category] = &[
            $(Category { name: $name, title_ja: $ja, title_en: $en },)*
        ];
    };
}

categories! {
    "land-weather", "国土・気象", "Land and weather";
    "population-households", "人口・世帯", "Population and households";
    "labour-wages", "労働・賃金", "Labour and wages";
    "agriculture-forestry-fisheries", "農林水産業", "Agriculture, forestry and fisheries";
    "mining-manufacturing", "鉱工業", "Mining and manufacturing";
    "commerce-services", "商業・サービス業", "Commerce and services";
    "business-household-economy", "企業・家計・経済", "Business, households and economy";
    "housing-land-construction", "住宅・土地・建設", "Housing, land and construction";
    "energy-water", "エネルギー・水", "Energy and water";
    "transport-tourism", "運輸・観光", "Transport and tourism";
    "ict-science", "情報通信・科学技術", "Information, communication and science";
    "education-culture-sports-life", "教育・文化・スポーツ・生活", "Education, culture, sports and life";
    "government-finance", "行財政", "Government and public finance";
    "justice-safety-environment", "司法・安全・環境", "Justice, safety and environment";
    "social-security-health", "社会保障・衛生", "Social security and health";
    "international", "国際", "International";
    "other", "その他", "Other";
}

/// The category with this name, or with this Japanese title (clients written for
/// Japanese catalogs send either).
pub fn category(name_or_title: &str) -> Option<&'static Category> {
    CATEGORIES
        .iter()
        .find(|c| c.name == name_or_title || c.title_ja == name_or_title)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_seventeen_categories_with_unique_names() {
        assert_eq!(CATEGORIES.len(), 17);
        let mut names: Vec<_> = CATEGORIES.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 17);
        assert_eq!(category("国土・気象").unwrap().name, "land-weather");
        assert_eq!(category("other").unwrap().title_ja, "その他");
        assert!(category("weather").is_none());
    }

    #[test]
    fn ckan_licence_ids_map_to_the_same_licences() {
        assert_eq!(license("cc-by").unwrap().id, "CC-BY-4.0");
        assert_eq!(license("CC0-1.0").unwrap().id, "CC0-1.0");
        assert_eq!(license("PDL1.0").unwrap().id, "PDL-1.0");
        assert!(license("GPL").is_none());
        assert!(LICENSES.iter().filter(|l| l.open).count() >= 4);
    }
}
