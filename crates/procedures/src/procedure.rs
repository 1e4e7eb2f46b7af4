//! A procedure (手続) as a tenant defines it: its titles in Japanese, English and
//! やさしい日本語, the form, the fee and when it is paid, the approval chain, how long
//! applications are kept, and whether applicants must sign in. [`Procedure::check`]
//! gathers every problem of a definition at once, each with a path and a message in both
//! languages, so that staff fix a definition in one go.

use crate::approval::ChainDefinition;
use crate::fee::{Fee, PaymentTiming};
use crate::form::{FormDefinition, Text};
use serde::{Deserialize, Serialize};

/// Whether a procedure takes applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcedureStatus {
    /// Being written: only staff see it.
    #[default]
    Draft,
    /// Takes applications.
    Published,
    /// No new applications; those made before go on.
    Retired,
}

impl ProcedureStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcedureStatus::Draft => "draft",
            ProcedureStatus::Published => "published",
            ProcedureStatus::Retired => "retired",
        }
    }
}

/// A procedure definition: what staff send and what one version stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Procedure {
    /// Japanese, English and やさしい日本語 titles.
    pub title: Text,
    #[serde(default)]
    pub description: Option<Text>,
    /// Who may apply (対象者), shown before the form.
    #[serde(default)]
    pub eligibility: Option<Text>,
    pub form: FormDefinition,
    #[serde(default = "no_fee")]
    pub fee: Fee,
    /// When the fee is paid; ignored when there is none.
    #[serde(default = "before_review")]
    pub payment_timing: PaymentTiming,
    pub chain: ChainDefinition,
    /// Days an application is kept after it is finished (decided, completed or
    /// withdrawn) before its personal data is deleted.
    pub retention_days: u32,
    /// Days a draft lives without being touched; its resume link expires with it.
    #[serde(default = "draft_days")]
    pub draft_days: u32,
    #[serde(default = "yes")]
    pub sign_in_required: bool,
    /// The answer that holds the applicant's name (JSON pointer), printed on the
    /// receipt and the notice of decision.
    pub applicant_name_field: String,
    /// The answer that holds the applicant's e-mail address, if notifications go by mail.
    #[serde(default)]
    pub contact_email_field: Option<String>,
    /// Where back-office systems want each change of state POSTed (a webhook).
    #[serde(default)]
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub status: ProcedureStatus,
    /// Offered to the prefecture's municipalities as a template (共同利用).
    #[serde(default)]
    pub shared: bool,
}

fn no_fee() -> Fee {
    Fee::None
}
fn before_review() -> PaymentTiming {
    PaymentTiming::BeforeReview
}
fn draft_days() -> u32 {
    30
}
fn yes() -> bool {
    true
}

/// One problem in a procedure definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcedureProblem {
    /// Where: `title`, `form`, `fee`, `chain`, `retention_days`, …
    pub path: String,
    pub message_ja: String,
    pub message_en: String,
}

impl Procedure {
    /// Every problem of the definition, or `Ok` when it can take applications.
    pub fn check(&self) -> Result<(), Vec<ProcedureProblem>> {
        let mut problems = Vec::new();
        let mut add = |path: &str, ja: String, en: String| {
            problems.push(ProcedureProblem {
                path: path.to_owned(),
                message_ja: ja,
                message_en: en,
            })
        };
        if self.title.ja.trim().is_empty() {
            add(
                "title.ja",
                "日本語の名称は必須です".into(),
                "the Japanese title is required".into(),
            );
        }
        if let Err(errors) = self.form.check() {
            for error in errors {
                let (ja, en) = bilingual(&error.to_string());
                add("form", ja, en);
            }
        }
        if let Err(error) = self.fee.check() {
            let (ja, en) = bilingual(&error.to_string());
            add("fee", ja, en);
        }
        if let Err(errors) = self.chain.validate() {
            for error in errors {
                add("chain", error.message_ja(), error.message_en());
            }
        }
        for (path, pointer) in [
            ("applicant_name_field", Some(&self.applicant_name_field)),
            ("contact_email_field", self.contact_email_field.as_ref()),
        ] {
            if let Some(pointer) = pointer {
                if !self.form.has_field(pointer) {
                    add(
                        path,
                        format!("フォームに項目 {pointer} がありません"),
                        format!("the form has no field {pointer}"),
                    );
                }
            }
        }
        if !self.sign_in_required {
            // Refused rather than stored and ignored: an applicant who does not sign in
            // would need the resume token as their only credential, which is not built.
            add(
                "sign_in_required",
                "サインインせずに申請できる手続には、まだ対応していません".into(),
                "procedures that take applications without signing in are not supported yet".into(),
            );
        }
        if self.retention_days == 0 {
            add(
                "retention_days",
                "保存期間は1日以上にしてください".into(),
                "the retention period must be at least one day".into(),
            );
        }
        if self.draft_days == 0 {
            add(
                "draft_days",
                "下書きの保存期間は1日以上にしてください".into(),
                "drafts must be kept at least one day".into(),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Whether applications must be paid before anyone reviews them.
    pub fn pays_before_review(&self) -> bool {
        !self.fee.is_free() && self.payment_timing == PaymentTiming::BeforeReview
    }

    /// Whether applications are paid after approval (事後決済).
    pub fn pays_after_approval(&self) -> bool {
        !self.fee.is_free() && self.payment_timing == PaymentTiming::AfterApproval
    }
}

/// Splits a message written `日本語 / English` into its two halves.
fn bilingual(text: &str) -> (String, String) {
    match text.split_once(" / ") {
        Some((ja, en)) => (ja.to_owned(), en.to_owned()),
        None => (text.to_owned(), text.to_owned()),
    }
}

/// Procedures renkei ships as templates (the demo loads them; tenants adopt or copy
/// them): 住民票の写しの交付申請, with its form, fee and a one-step chain.
pub const JUMINHYO_TEMPLATE: &str = include_str!("../templates/juminhyo.json");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_template_is_a_valid_procedure() {
        let procedure: Procedure = serde_json::from_str(JUMINHYO_TEMPLATE).unwrap();
        assert_eq!(procedure.check(), Ok(()));
        assert!(procedure.pays_before_review());
        assert_eq!(procedure.status, ProcedureStatus::Published);
    }

    #[test]
    fn applying_without_signing_in_is_refused_not_ignored() {
        let mut procedure: Procedure = serde_json::from_str(JUMINHYO_TEMPLATE).unwrap();
        procedure.sign_in_required = false;
        let problems = procedure.check().unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "sign_in_required");
        assert!(problems[0].message_ja.contains("サインイン"));
    }
}
