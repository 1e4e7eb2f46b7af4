//! Renders receipts and notices of decision and reads them back with an independent PDF
//! parser (lopdf): the files must parse, carry their Japanese text in extractable form, embed
//! only a subset of the font, and come out byte for byte the same each time.

use chrono::{TimeZone, Utc};
use procedures::document::{
    document_digest, render_decision_notice, render_receipt, unsupported_characters, Decision,
    DecisionNoticeData, ReceiptData, VerificationCode,
};

fn code(seed: u8) -> VerificationCode {
    VerificationCode::from_bytes([seed, 0x5a, 0x13, 0xc7, 0x88, 0x01, 0xfe, 0x42, 0x9d, 0x30])
}

fn receipt() -> ReceiptData {
    ReceiptData {
        reception_number: "R08-000123".to_string(),
        tenant_name: "焼津市".to_string(),
        procedure_title_ja: "犬の登録申請".to_string(),
        procedure_title_en: "Dog registration".to_string(),
        applicant_name: "山田 花子".to_string(),
        // 14:05 in Japan.
        submitted_at: Utc.with_ymd_and_hms(2026, 11, 26, 5, 5, 0).unwrap(),
        fee_yen: Some(3000),
        paid: true,
        verification_code: code(7),
        verify_url: "https://renkei.example.lg.jp/verify".to_string(),
    }
}

fn notice(decision: Decision, reasons: Vec<String>) -> DecisionNoticeData {
    DecisionNoticeData {
        reception_number: "R08-000456".to_string(),
        tenant_name: "焼津市".to_string(),
        procedure_title_ja: "道路占用許可申請".to_string(),
        procedure_title_en: "Road occupancy permit".to_string(),
        applicant_name: "鈴木 一郎".to_string(),
        decision,
        reasons,
        decided_at: Utc.with_ymd_and_hms(2026, 12, 3, 1, 30, 0).unwrap(),
        approvers: vec!["道路課 佐藤".to_string(), "建設部長 高橋".to_string()],
        verification_code: code(9),
        verify_url: "https://renkei.example.lg.jp/verify".to_string(),
    }
}

/// All text of all pages, as lopdf extracts it through the ToUnicode maps.
fn extract(pdf: &[u8]) -> (String, usize) {
    let document = lopdf::Document::load_mem(pdf).expect("the PDF parses");
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
    let text = document.extract_text(&pages).expect("text extracts");
    (text, pages.len())
}

fn squeeze(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn receipt_carries_its_fields_as_extractable_japanese_text() {
    let data = receipt();
    let pdf = render_receipt(&data).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let (text, pages) = extract(&pdf);
    assert_eq!(pages, 1);
    for expected in [
        "受付票",
        "Receipt of Application",
        "焼津市",
        "R08-000123",
        "山田 花子",
        "犬の登録申請",
        "Dog registration",
        "令和8年11月26日 14時05分",
        "26 November 2026, 14:05 JST",
        "3,000円（納付済み）",
        &data.verification_code.to_string(),
        "https://renkei.example.lg.jp/verify",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from {text}");
    }
}

#[test]
fn times_are_shown_in_japan_time_across_the_date_line() {
    let mut data = receipt();
    // 16:30 UTC on the 25th is 01:30 on the 26th in Japan.
    data.submitted_at = Utc.with_ymd_and_hms(2026, 11, 25, 16, 30, 0).unwrap();
    data.fee_yen = None;
    let (text, _) = extract(&render_receipt(&data).unwrap());
    assert!(text.contains("令和8年11月26日 1時30分"), "{text}");
    assert!(text.contains("西暦2026年11月26日"), "{text}");
    assert!(text.contains("No fee"), "{text}");
}

#[test]
fn unpaid_fee_is_marked_unpaid() {
    let mut data = receipt();
    data.paid = false;
    data.fee_yen = Some(1_234_567);
    let (text, _) = extract(&render_receipt(&data).unwrap());
    assert!(text.contains("1,234,567円（未納）"), "{text}");
    assert!(!text.contains("納付済み"), "{text}");
}

#[test]
fn pdf_embeds_a_font_subset_and_a_unicode_map() {
    let pdf = render_receipt(&receipt()).unwrap();
    // The whole font is about 6 MB; a subset of the glyphs used is a small fraction of that.
    assert!(pdf.len() < 200 * 1024, "PDF is {} bytes", pdf.len());
    let document = lopdf::Document::load_mem(&pdf).unwrap();
    let mut font_files = 0;
    let mut to_unicode = 0;
    for object in document.objects.values() {
        if let Ok(dictionary) = object
            .as_dict()
            .or_else(|_| object.as_stream().map(|s| &s.dict))
        {
            if dictionary.has(b"FontFile2") || dictionary.has(b"FontFile3") {
                font_files += 1;
            }
            if dictionary.has(b"ToUnicode") {
                to_unicode += 1;
            }
        }
    }
    assert!(font_files >= 1, "no embedded font file");
    assert!(to_unicode >= 1, "no ToUnicode map");
}

#[test]
fn rendering_is_deterministic_and_the_digest_tells_documents_apart() {
    let first = render_receipt(&receipt()).unwrap();
    let second = render_receipt(&receipt()).unwrap();
    assert_eq!(first, second);
    assert_eq!(document_digest(&first), document_digest(&second));
    let mut other = receipt();
    other.verification_code = code(8);
    let third = render_receipt(&other).unwrap();
    assert_ne!(document_digest(&first), document_digest(&third));
}

#[test]
fn approval_notice_shows_decision_and_chain() {
    let data = notice(Decision::Approved, vec![]);
    let pdf = render_decision_notice(&data).unwrap();
    let (text, pages) = extract(&pdf);
    assert_eq!(pages, 1);
    for expected in [
        "決定通知書",
        "Notice of Decision",
        "R08-000456",
        "鈴木 一郎",
        "承認",
        "Approved",
        "道路課 佐藤 → 建設部長 高橋",
        "令和8年12月3日 10時30分",
        &data.verification_code.to_string(),
    ] {
        assert!(text.contains(expected), "{expected:?} missing from {text}");
    }
    assert!(!text.contains("不承認"));
}

#[test]
fn long_reasons_wrap_and_flow_onto_further_pages_without_losing_text() {
    let paragraph = "申請に係る道路の区域は、災害時の緊急輸送道路に指定されており、\
        占用により車両の通行に著しい支障を及ぼすおそれがあるため、道路法第33条第1項の基準に\
        適合しないと判断しました。"
        .repeat(6);
    let reasons: Vec<String> = (0..5).map(|i| format!("{paragraph}（第{i}項）")).collect();
    let data = notice(Decision::Rejected, reasons.clone());
    let pdf = render_decision_notice(&data).unwrap();
    let (text, pages) = extract(&pdf);
    assert!(pages >= 2, "expected several pages, got {pages}");
    assert!(text.contains("不承認"));
    assert!(
        text.contains(&format!("{pages} / {pages}")),
        "footer page count missing"
    );
    // Page footers sit between the end of one page's text and the start of the next.
    let body: String = text
        .lines()
        .filter(|line| !line.contains("受付番号 R08-000456\u{3000}"))
        .collect();
    let squeezed = squeeze(&body);
    for reason in &reasons {
        assert!(
            squeezed.contains(&squeeze(reason)),
            "reason lost in wrapping"
        );
    }
    assert!(squeezed.contains(&squeeze(&data.verification_code.to_string())));
    assert!(pdf.len() < 200 * 1024, "PDF is {} bytes", pdf.len());
}

#[test]
fn the_font_licence_is_available_to_ship_with_the_binary() {
    assert!(procedures::document::FONT_LICENSE_TEXT.contains("IPA Font License Agreement v1.0"));
    assert!(procedures::document::FONT_LICENSE_TEXT.contains("IPAフォントライセンスv1.0"));
}

#[test]
fn characters_the_font_lacks_are_reported() {
    assert_eq!(
        unsupported_characters("山田 花子 髙橋 R08-1").unwrap(),
        Vec::<char>::new()
    );
    // An emoji and a private-use character are not in the font.
    assert_eq!(
        unsupported_characters("山田😀\u{E000}😀").unwrap(),
        vec!['😀', '\u{E000}']
    );
}

#[test]
fn documents_are_tagged_for_screen_readers() {
    for pdf in [
        render_receipt(&receipt()).unwrap(),
        render_decision_notice(&notice(Decision::Approved, vec!["理由".to_string()])).unwrap(),
    ] {
        let document = lopdf::Document::load_mem(&pdf).unwrap();
        let catalog = document.catalog().unwrap();
        assert!(catalog.has(b"StructTreeRoot"), "no structure tree");
        assert!(catalog.has(b"MarkInfo"), "not marked as tagged");
        let lang = catalog.get(b"Lang").and_then(|l| l.as_str()).unwrap();
        assert_eq!(lang, b"ja");
        // The title is a heading and the fields are paragraphs.
        let mut kinds = Vec::new();
        for object in document.objects.values() {
            if let Ok(dictionary) = object.as_dict() {
                if let Ok(kind) = dictionary.get(b"S").and_then(|s| s.as_name()) {
                    kinds.push(kind.to_vec());
                }
            }
        }
        assert!(kinds.iter().any(|k| k == b"H1"), "no H1 heading");
        assert!(kinds.iter().filter(|k| k.as_slice() == b"P").count() > 10);
    }
}
