//! Attachment checks: the bytes decide the type, not the name.

use procedures::form::{
    check_attachment, check_required_attachments, sniff_media_type, AttachmentRequirement,
    ErrorCode, FormDefinition,
};

fn juminhyo() -> FormDefinition {
    serde_json::from_str(include_str!("fixtures/juminhyo_form.json")).expect("fixture parses")
}

fn identity() -> AttachmentRequirement {
    juminhyo()
        .attachments
        .into_iter()
        .find(|a| a.id == "identity_document")
        .expect("fixture has it")
}

const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
const JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0, 1,
];
const EXE: &[u8] = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff";
const HEIC: &[u8] = b"\0\0\0\x18ftypheic\0\0\0\0";

fn code(r: Result<(), procedures::form::FieldError>) -> Option<ErrorCode> {
    r.err().map(|e| e.code)
}

#[test]
fn sniffs_real_types() {
    assert_eq!(sniff_media_type(PDF), Some("application/pdf"));
    assert_eq!(sniff_media_type(PNG), Some("image/png"));
    assert_eq!(sniff_media_type(JPEG), Some("image/jpeg"));
    assert_eq!(sniff_media_type(HEIC), Some("image/heic"));
    assert_eq!(sniff_media_type(EXE), None);
    assert_eq!(sniff_media_type(b"\x7fELF\x02\x01\x01"), None);
    assert_eq!(sniff_media_type(b"hello"), None);
    assert_eq!(sniff_media_type(b""), None);
}

#[test]
fn accepts_matching_files() {
    let req = identity();
    assert_eq!(
        check_attachment(&req, "運転免許証.pdf", "application/pdf", PDF, 120_000),
        Ok(())
    );
    assert_eq!(
        check_attachment(&req, "license.JPG", "image/jpeg", JPEG, 2_000_000),
        Ok(())
    );
    assert_eq!(
        check_attachment(&req, "card.jpeg", "image/jpg", JPEG, 10),
        Ok(())
    );
    assert_eq!(check_attachment(&req, "scan.png", "", PNG, 10), Ok(()));
    assert_eq!(
        check_attachment(&req, "scan.png", "application/octet-stream", PNG, 10),
        Ok(())
    );
}

#[test]
fn refuses_a_renamed_executable() {
    let req = identity();
    let err =
        check_attachment(&req, "免許証.pdf", "application/pdf", EXE, 40_000).expect_err("exe");
    assert_eq!(err.code, ErrorCode::FileType);
    assert_eq!(err.pointer, "/attachments/identity_document");
    assert!(err.message_ja.contains("本人確認書類"));
    assert!(err.message_en.contains("Proof of identity"));
}

#[test]
fn refuses_wrong_size_type_and_name() {
    let req = identity();
    assert_eq!(
        code(check_attachment(
            &req,
            "a.pdf",
            "application/pdf",
            PDF,
            5_242_881
        )),
        Some(ErrorCode::FileTooLarge)
    );
    assert_eq!(
        code(check_attachment(
            &req,
            "a.pdf",
            "application/pdf",
            PDF,
            5_242_880
        )),
        None
    );
    assert_eq!(
        code(check_attachment(&req, "a.pdf", "application/pdf", b"", 0)),
        Some(ErrorCode::FileEmpty)
    );
    assert_eq!(
        code(check_attachment(&req, "a.heic", "image/heic", HEIC, 100)),
        Some(ErrorCode::FileType)
    );
    assert_eq!(
        code(check_attachment(&req, "a.pdf", "image/png", PDF, 100)),
        Some(ErrorCode::FileTypeMismatch)
    );
    assert_eq!(
        code(check_attachment(&req, "a.png", "application/pdf", PDF, 100)),
        Some(ErrorCode::FileExtension)
    );
    assert_eq!(
        code(check_attachment(&req, "a", "application/pdf", PDF, 100)),
        Some(ErrorCode::FileExtension)
    );
}

#[test]
fn required_attachments_must_be_present() {
    let def = juminhyo();
    let missing = check_required_attachments(&def.attachments, &["power_of_attorney"]);
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].code, ErrorCode::AttachmentMissing);
    assert_eq!(missing[0].pointer, "/attachments/identity_document");
    assert!(check_required_attachments(&def.attachments, &["identity_document"]).is_empty());
}

#[test]
fn definitions_refuse_unknown_media_types() {
    let mut def = juminhyo();
    def.attachments[0]
        .media_types
        .push("application/x-msdownload".into());
    def.attachments[1].max_bytes = 0;
    let errors = def.check().expect_err("broken");
    assert_eq!(errors.len(), 2, "{errors:?}");
}

proptest::proptest! {
    #[test]
    fn never_panics_and_only_accepts_sniffed_types(
        bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..32),
        size in 0u64..10_000_000,
        name in "[a-z]{1,5}\\.(pdf|png|jpg|exe|txt)",
    ) {
        let req = identity();
        let declared = ["application/pdf", "image/png", "image/jpeg", ""][bytes.len() % 4];
        if check_attachment(&req, &name, declared, &bytes, size).is_ok() {
            let sniffed = sniff_media_type(&bytes);
            proptest::prop_assert!(sniffed.is_some_and(|t| req.media_types.iter().any(|m| m == t)));
            proptest::prop_assert!(size > 0 && size <= req.max_bytes);
        }
    }
}
