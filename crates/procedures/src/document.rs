//! Documents issued to applicants: the receipt (受付票) printed when an application is
//! submitted and the notice of decision (決定通知書) printed when it is decided, both as A4 PDF
//! files, Japanese first with English beside it.
//!
//! The Japanese font (IPAexGothic, see `assets/fonts/README.md`) is built into the binary and each PDF embeds only the glyphs it
//! uses, with a ToUnicode map so that its text can be searched, copied and read aloud. Every
//! document carries a [`VerificationCode`] and the public URL where anyone can check it; the
//! server stores the code with the [`document_digest`] of the bytes issued, so a verifier can
//! tell a genuine document from an altered one. Rendering is deterministic: the same data gives
//! the same bytes, so a document can be re-rendered and its digest checked again.

mod font;
mod layout;
mod pdf;
mod verification;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Serialize};

pub use font::{unsupported_characters, FONT_LICENSE_TEXT};
pub use verification::{
    document_digest, RandomSourceError, VerificationCode, VerificationCodeError, CODE_BYTES,
    CODE_CHARS,
};

use font::Metrics;
use layout::{Flow, Op, Role, CONTENT_WIDTH, MARGIN, PAGE_WIDTH};

/// Why a document could not be rendered. Nothing here depends on the data being rendered
/// except through the PDF writer, so these are internal errors, never the applicant's fault.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DocumentError {
    #[error("埋め込みフォントを読み込めませんでした / the embedded font could not be read")]
    Font,
    #[error("PDFを生成できませんでした / the PDF could not be written: {0}")]
    Pdf(String),
}

/// What a receipt (受付票) says. The applicant's name arrives already decrypted by the caller;
/// this crate never sees it encrypted and never logs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptData {
    pub reception_number: String,
    /// The issuing local government, e.g. 焼津市.
    pub tenant_name: String,
    pub procedure_title_ja: String,
    pub procedure_title_en: String,
    pub applicant_name: String,
    pub submitted_at: DateTime<Utc>,
    /// The fee in yen, or `None` for a procedure without one.
    pub fee_yen: Option<u64>,
    pub paid: bool,
    pub verification_code: VerificationCode,
    pub verify_url: String,
}

/// The outcome a notice of decision announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approved,
    Rejected,
}

impl Decision {
    fn label_ja(self) -> &'static str {
        match self {
            Decision::Approved => "承認",
            Decision::Rejected => "不承認",
        }
    }

    fn label_en(self) -> &'static str {
        match self {
            Decision::Approved => "Approved",
            Decision::Rejected => "Rejected",
        }
    }
}

/// What a notice of decision (決定通知書) says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionNoticeData {
    pub reception_number: String,
    pub tenant_name: String,
    pub procedure_title_ja: String,
    pub procedure_title_en: String,
    pub applicant_name: String,
    pub decision: Decision,
    /// Reasons for the decision, one paragraph each; they may be long and are wrapped.
    pub reasons: Vec<String>,
    pub decided_at: DateTime<Utc>,
    /// Display names of the approval chain, in order.
    pub approvers: Vec<String>,
    pub verification_code: VerificationCode,
    pub verify_url: String,
}

/// `令和8年11月26日 14時05分（2026年11月26日）` and `26 November 2026, 14:05 JST`.
fn date_time_lines(at: DateTime<Utc>) -> (String, String) {
    let local = crate::in_japan(at);
    let date = local.date_naive();
    let japanese = format!(
        "{} {}時{:02}分（西暦{}年{}月{}日）",
        jp::wareki::format_wareki(date),
        local.hour(),
        local.minute(),
        date.year(),
        date.month(),
        date.day()
    );
    let english = format!(
        "{} {} {}, {:02}:{:02} JST",
        date.day(),
        MONTHS[date.month0() as usize % 12],
        date.year(),
        local.hour(),
        local.minute()
    );
    (japanese, english)
}

/// The issue date line: `令和8年11月26日（2026年11月26日）`.
fn issue_date_line(at: DateTime<Utc>) -> String {
    let date = crate::in_japan(at).date_naive();
    format!(
        "{}（{}年{}月{}日）",
        jp::wareki::format_wareki(date),
        date.year(),
        date.month(),
        date.day()
    )
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `1,200` for 1200.
fn group_thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn fee_lines(fee_yen: Option<u64>, paid: bool) -> Vec<(String, f32)> {
    match fee_yen {
        None | Some(0) => vec![
            ("なし".to_string(), VALUE_SIZE),
            ("No fee".to_string(), EN_SIZE),
        ],
        Some(yen) => {
            let (status_ja, status_en) = if paid {
                ("納付済み", "paid")
            } else {
                ("未納", "not yet paid")
            };
            vec![
                (
                    format!("{}円（{}）", group_thousands(yen), status_ja),
                    VALUE_SIZE,
                ),
                (
                    format!("JPY {} ({})", group_thousands(yen), status_en),
                    EN_SIZE,
                ),
            ]
        }
    }
}

const TITLE_SIZE: f32 = 22.0;
const VALUE_SIZE: f32 = 11.0;
const EN_SIZE: f32 = 8.5;
const LABEL_WIDTH: f32 = 150.0;
const CELL_PADDING: f32 = 6.0;
/// Gray levels: 0 is black.
const TEXT: u8 = 0;
const SUBTLE: u8 = 90;
const LABEL_SHADE: u8 = 238;

/// One row of the field table: a Japanese and an English label, and value lines each with its
/// own size (Japanese value first, English after).
struct Row {
    label_ja: &'static str,
    label_en: &'static str,
    values: Vec<(String, f32)>,
}

fn row(label_ja: &'static str, label_en: &'static str, values: Vec<(String, f32)>) -> Row {
    Row {
        label_ja,
        label_en,
        values,
    }
}

fn line_height(size: f32) -> f32 {
    size * 1.55
}

/// Wraps the cells of a row and gives the lines with their sizes, label first, value second.
/// Lines of a cell, each with its font size.
type Lines = Vec<(String, f32)>;

fn row_lines(metrics: &Metrics, row: &Row) -> (Lines, Lines) {
    let label_width = LABEL_WIDTH - 2.0 * CELL_PADDING;
    let value_width = CONTENT_WIDTH - LABEL_WIDTH - 2.0 * CELL_PADDING;
    let mut labels = Vec::new();
    for (text, size) in [(row.label_ja, VALUE_SIZE), (row.label_en, EN_SIZE)] {
        for line in layout::wrap(metrics, text, size, label_width) {
            labels.push((line, size));
        }
    }
    let mut values = Vec::new();
    for (text, size) in &row.values {
        for line in layout::wrap(metrics, text, *size, value_width) {
            values.push((line, *size));
        }
    }
    (labels, values)
}

fn lines_height(lines: &[(String, f32)]) -> f32 {
    lines.iter().map(|(_, size)| line_height(*size)).sum()
}

/// Draws a bordered two-column table, label column shaded; a row never splits across pages.
fn table(flow: &mut Flow, rows: &[Row]) {
    let left = MARGIN;
    let split = MARGIN + LABEL_WIDTH;
    let right = MARGIN + CONTENT_WIDTH;
    let mut first_on_page = true;
    let mut page = flow.pages.len();
    for row in rows {
        let (labels, values) = row_lines(flow.metrics, row);
        let height = lines_height(&labels).max(lines_height(&values)) + 2.0 * CELL_PADDING;
        flow.ensure(height);
        if flow.pages.len() != page {
            page = flow.pages.len();
            first_on_page = true;
        }
        let top = flow.y;
        flow.push(Op::Shade {
            x: left,
            y: top,
            width: LABEL_WIDTH,
            height,
            gray: LABEL_SHADE,
        });
        if first_on_page {
            rule(flow, left, top, right, top);
            first_on_page = false;
        }
        rule(flow, left, top + height, right, top + height);
        rule(flow, left, top, left, top + height);
        rule(flow, split, top, split, top + height);
        rule(flow, right, top, right, top + height);
        for (lines, x) in [
            (&labels, left + CELL_PADDING),
            (&values, split + CELL_PADDING),
        ] {
            let mut y = top + CELL_PADDING;
            for (line, size) in lines {
                let gray = if *size < VALUE_SIZE { SUBTLE } else { TEXT };
                flow.text_at(x, y + size * 1.15, *size, gray, line);
                y += line_height(*size);
            }
        }
        flow.y = top + height;
    }
}

fn rule(flow: &mut Flow, x1: f32, y1: f32, x2: f32, y2: f32) {
    flow.push(Op::Rule {
        x1,
        y1,
        x2,
        y2,
        width: 0.6,
    });
}

/// The heading common to both documents: issuer, issue date, title in both languages.
fn heading(
    flow: &mut Flow,
    tenant_name: &str,
    issued: DateTime<Utc>,
    title_ja: &str,
    title_en: &str,
) {
    flow.right_aligned(VALUE_SIZE, TEXT, &issue_date_line(issued));
    flow.right_aligned(VALUE_SIZE, TEXT, tenant_name);
    flow.gap(10.0);
    flow.centered(TITLE_SIZE, TEXT, Role::Heading, title_ja);
    flow.centered(11.0, SUBTLE, Role::Body, title_en);
    flow.gap(12.0);
}

/// The verification block that closes every document: code, URL and what to do with them.
fn verification_block(flow: &mut Flow, code: &VerificationCode, verify_url: &str) {
    let metrics = flow.metrics;
    let inner = CONTENT_WIDTH - 2.0 * CELL_PADDING - 8.0;
    let notes = [
        (
            "この書類が本物であることは、次のURLで検証コードを入力して確認できます。",
            VALUE_SIZE - 1.5,
        ),
        (
            "To check that this document is genuine, enter the verification code at the URL below.",
            EN_SIZE,
        ),
    ];
    let mut lines: Vec<(String, f32, u8)> = Vec::new();
    lines.push((
        format!("検証コード / Verification code:  {code}"),
        14.0,
        TEXT,
    ));
    for (text, size) in notes {
        for line in layout::wrap(metrics, text, size, inner) {
            lines.push((line, size, SUBTLE));
        }
    }
    for line in layout::wrap(metrics, verify_url, VALUE_SIZE - 1.0, inner) {
        lines.push((line, VALUE_SIZE - 1.0, TEXT));
    }
    let height: f32 = lines
        .iter()
        .map(|(_, size, _)| line_height(*size))
        .sum::<f32>()
        + 2.0 * CELL_PADDING
        + 4.0;
    flow.gap(16.0);
    flow.ensure(height);
    let top = flow.y;
    let (left, right, bottom) = (MARGIN, MARGIN + CONTENT_WIDTH, top + height);
    rule(flow, left, top, right, top);
    rule(flow, left, bottom, right, bottom);
    rule(flow, left, top, left, bottom);
    rule(flow, right, top, right, bottom);
    let mut y = top + CELL_PADDING + 2.0;
    for (line, size, gray) in lines {
        flow.text_at(
            left + CELL_PADDING + 4.0,
            y + size * 1.15,
            size,
            gray,
            &line,
        );
        y += line_height(size);
    }
    flow.y = bottom;
}

/// Adds the page footer (document, reception number, page n / total) to every page.
fn footers(flow: &mut Flow, title: &str, reception_number: &str) {
    let total = flow.pages.len();
    let metrics = flow.metrics;
    for (index, page) in flow.pages.iter_mut().enumerate() {
        let text = format!(
            "{title}　受付番号 {reception_number}　{} / {total}",
            index + 1
        );
        let size = EN_SIZE;
        let width = metrics.text_width(&text, size);
        page.push(Op::Text {
            x: (PAGE_WIDTH - width) / 2.0,
            y: layout::PAGE_HEIGHT - MARGIN + 4.0,
            size,
            gray: SUBTLE,
            role: Role::Footer,
            text,
        });
    }
}

/// Renders a receipt (受付票) as an A4 PDF.
pub fn render_receipt(data: &ReceiptData) -> Result<Vec<u8>, DocumentError> {
    let metrics = Metrics::get()?;
    let mut flow = Flow::new(metrics);
    heading(
        &mut flow,
        &data.tenant_name,
        data.submitted_at,
        "受付票",
        "Receipt of Application",
    );
    flow.paragraph(0.0, VALUE_SIZE, TEXT, "次のとおり申請を受け付けました。");
    flow.paragraph(
        0.0,
        EN_SIZE,
        SUBTLE,
        "Your application has been received as follows.",
    );
    flow.gap(8.0);
    let (submitted_ja, submitted_en) = date_time_lines(data.submitted_at);
    let rows = [
        row(
            "受付番号",
            "Reception number",
            vec![(data.reception_number.clone(), VALUE_SIZE)],
        ),
        row(
            "手続名",
            "Procedure",
            vec![
                (data.procedure_title_ja.clone(), VALUE_SIZE),
                (data.procedure_title_en.clone(), EN_SIZE),
            ],
        ),
        row(
            "申請者",
            "Applicant",
            vec![(data.applicant_name.clone(), VALUE_SIZE)],
        ),
        row(
            "受付日時",
            "Received at",
            vec![(submitted_ja, VALUE_SIZE), (submitted_en, EN_SIZE)],
        ),
        row("手数料", "Fee", fee_lines(data.fee_yen, data.paid)),
        row(
            "発行者",
            "Issued by",
            vec![(data.tenant_name.clone(), VALUE_SIZE)],
        ),
    ];
    table(&mut flow, &rows);
    flow.gap(10.0);
    flow.paragraph(
        0.0,
        VALUE_SIZE - 1.5,
        TEXT,
        "お問い合わせの際は受付番号をお知らせください。この受付票は大切に保管してください。",
    );
    flow.paragraph(
        0.0,
        EN_SIZE,
        SUBTLE,
        "Please quote the reception number in any enquiry, and keep this receipt.",
    );
    verification_block(&mut flow, &data.verification_code, &data.verify_url);
    footers(&mut flow, "受付票 / Receipt", &data.reception_number);
    pdf::write(
        flow.pages,
        &format!("受付票 {} / Receipt", data.reception_number),
        data.submitted_at,
    )
}

/// Renders a notice of decision (決定通知書) as an A4 PDF.
pub fn render_decision_notice(data: &DecisionNoticeData) -> Result<Vec<u8>, DocumentError> {
    let metrics = Metrics::get()?;
    let mut flow = Flow::new(metrics);
    heading(
        &mut flow,
        &data.tenant_name,
        data.decided_at,
        "決定通知書",
        "Notice of Decision",
    );
    flow.paragraph(
        0.0,
        VALUE_SIZE,
        TEXT,
        &format!("{} 様", data.applicant_name),
    );
    flow.gap(4.0);
    let (sentence_ja, sentence_en) = match data.decision {
        Decision::Approved => (
            "あなたの申請について、次のとおり承認することに決定しましたので通知します。",
            "We hereby notify you that your application has been approved as follows.",
        ),
        Decision::Rejected => (
            "あなたの申請について、次の理由により承認しないことに決定しましたので通知します。",
            "We hereby notify you that your application has not been approved, for the reasons below.",
        ),
    };
    flow.paragraph(0.0, VALUE_SIZE, TEXT, sentence_ja);
    flow.paragraph(0.0, EN_SIZE, SUBTLE, sentence_en);
    flow.gap(8.0);
    let (decided_ja, decided_en) = date_time_lines(data.decided_at);
    let approvers = if data.approvers.is_empty() {
        "—".to_string()
    } else {
        data.approvers.join(" → ")
    };
    let rows = [
        row(
            "受付番号",
            "Reception number",
            vec![(data.reception_number.clone(), VALUE_SIZE)],
        ),
        row(
            "手続名",
            "Procedure",
            vec![
                (data.procedure_title_ja.clone(), VALUE_SIZE),
                (data.procedure_title_en.clone(), EN_SIZE),
            ],
        ),
        row(
            "申請者",
            "Applicant",
            vec![(data.applicant_name.clone(), VALUE_SIZE)],
        ),
        row(
            "決定内容",
            "Decision",
            vec![
                (data.decision.label_ja().to_string(), 13.0),
                (data.decision.label_en().to_string(), EN_SIZE),
            ],
        ),
        row(
            "決定日",
            "Decided at",
            vec![(decided_ja, VALUE_SIZE), (decided_en, EN_SIZE)],
        ),
        row("決裁", "Approved by", vec![(approvers, VALUE_SIZE)]),
        row(
            "発行者",
            "Issued by",
            vec![(data.tenant_name.clone(), VALUE_SIZE)],
        ),
    ];
    table(&mut flow, &rows);
    if !data.reasons.is_empty() {
        flow.gap(14.0);
        flow.paragraph(0.0, 12.0, TEXT, "理由 / Reasons");
        flow.gap(2.0);
        for (index, reason) in data.reasons.iter().enumerate() {
            flow.numbered(8.0, VALUE_SIZE, TEXT, &format!("{}. ", index + 1), reason);
            flow.gap(3.0);
        }
    }
    verification_block(&mut flow, &data.verification_code, &data.verify_url);
    footers(
        &mut flow,
        "決定通知書 / Notice of Decision",
        &data.reception_number,
    );
    pdf::write(
        flow.pages,
        &format!("決定通知書 {} / Notice of Decision", data.reception_number),
        data.decided_at,
    )
}
