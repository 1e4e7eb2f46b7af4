//! Fees (手数料) of a procedure: none, a fixed amount, or an amount computed from the
//! resident's answers (住民票の写し: 300 yen per copy), and when the fee is paid.
//!
//! A fee definition is data written by staff, so [`Fee::check`] rejects definitions that could
//! never be computed (bad JSON pointers, a zero unit cap, totals that could overflow) when the
//! procedure is saved, and [`Fee::amount`] reports, in Japanese and English, which answer made
//! a computation impossible. Amounts are whole yen (`u64`): the yen has no minor unit, and
//! every sum is checked, never wrapped.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a procedure charges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fee {
    /// No fee: no payment is ever started.
    None,
    /// The same amount for every application.
    Fixed { yen: u64 },
    /// `base_yen`, plus `unit_yen` for each unit counted in an answer, plus `add_yen` for each
    /// answer that equals a given value.
    Computed {
        #[serde(default)]
        base_yen: u64,
        #[serde(default)]
        per_unit: Vec<PerUnit>,
        #[serde(default)]
        when: Vec<WhenEquals>,
    },
}

/// A charge per unit counted in one answer, e.g. the number of copies requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerUnit {
    /// JSON pointer (RFC 6901) into the answers, e.g. `/copies`.
    pub field: String,
    pub unit_yen: u64,
    /// The most units one application may ask for; more is refused rather than charged,
    /// because a typo (30 copies for 3) should be caught before the resident pays.
    pub max_units: u64,
}

/// A surcharge applied when one answer equals a value, e.g. express delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhenEquals {
    /// JSON pointer (RFC 6901) into the answers.
    pub field: String,
    pub equals: Value,
    pub add_yen: u64,
}

/// When a procedure with a fee asks for payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentTiming {
    /// The application reaches reviewers only once it is paid (most certificates).
    BeforeReview,
    /// The resident pays once the application is approved (事後決済), e.g. when the amount
    /// or the decision itself is not known at submission.
    AfterApproval,
}

/// Why an amount could not be computed from a resident's answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeeError {
    MissingField { field: String },
    NotAnInteger { field: String, found: String },
    TooManyUnits { field: String, units: u64, max: u64 },
    Overflow,
}

impl FeeError {
    pub fn message_ja(&self) -> String {
        match self {
            FeeError::MissingField { field } => {
                format!("手数料の計算に必要な回答 {field} がありません")
            }
            FeeError::NotAnInteger { field, found } => {
                format!("回答 {field} は0以上の整数でなければなりません（{found}）")
            }
            FeeError::TooManyUnits { field, units, max } => {
                format!("回答 {field} は {max} 以下でなければなりません（{units}）")
            }
            FeeError::Overflow => "手数料が大きすぎて計算できません".to_owned(),
        }
    }

    pub fn message_en(&self) -> String {
        match self {
            FeeError::MissingField { field } => {
                format!("the answer {field} needed to compute the fee is missing")
            }
            FeeError::NotAnInteger { field, found } => {
                format!("the answer {field} must be a non-negative integer (got {found})")
            }
            FeeError::TooManyUnits { field, units, max } => {
                format!("the answer {field} may be at most {max} (got {units})")
            }
            FeeError::Overflow => "the fee is too large to compute".to_owned(),
        }
    }
}

impl std::fmt::Display for FeeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.message_ja(), self.message_en())
    }
}

impl std::error::Error for FeeError {}

/// Why a fee definition was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeeDefinitionError {
    InvalidPointer { field: String },
    ZeroMaxUnits { field: String },
    ZeroUnitPrice { field: String },
    ZeroFixed,
    Overflow,
}

impl FeeDefinitionError {
    pub fn message_ja(&self) -> String {
        match self {
            FeeDefinitionError::InvalidPointer { field } => {
                format!("{field} は JSON ポインタ（/ で始まる）ではありません")
            }
            FeeDefinitionError::ZeroMaxUnits { field } => {
                format!("{field} の上限数は1以上でなければなりません")
            }
            FeeDefinitionError::ZeroUnitPrice { field } => {
                format!("{field} の単価は1円以上でなければなりません")
            }
            FeeDefinitionError::ZeroFixed => {
                "固定手数料は1円以上でなければなりません（無料なら none を使います）".to_owned()
            }
            FeeDefinitionError::Overflow => "手数料の最大額が計算できる範囲を超えます".to_owned(),
        }
    }

    pub fn message_en(&self) -> String {
        match self {
            FeeDefinitionError::InvalidPointer { field } => {
                format!("{field} is not a JSON pointer (starting with /)")
            }
            FeeDefinitionError::ZeroMaxUnits { field } => {
                format!("the unit cap of {field} must be at least 1")
            }
            FeeDefinitionError::ZeroUnitPrice { field } => {
                format!("the unit price of {field} must be at least 1 yen")
            }
            FeeDefinitionError::ZeroFixed => {
                "a fixed fee must be at least 1 yen (use none for no fee)".to_owned()
            }
            FeeDefinitionError::Overflow => {
                "the largest possible fee is too large to compute".to_owned()
            }
        }
    }
}

impl std::fmt::Display for FeeDefinitionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.message_ja(), self.message_en())
    }
}

impl std::error::Error for FeeDefinitionError {}

impl Fee {
    /// The amount to pay for these answers, in yen. Zero means nothing to pay.
    pub fn amount(&self, answers: &Value) -> Result<u64, FeeError> {
        match self {
            Fee::None => Ok(0),
            Fee::Fixed { yen } => Ok(*yen),
            Fee::Computed {
                base_yen,
                per_unit,
                when,
            } => {
                let mut total = *base_yen;
                for rule in per_unit {
                    let units = unit_count(answers, &rule.field)?;
                    if units > rule.max_units {
                        return Err(FeeError::TooManyUnits {
                            field: rule.field.clone(),
                            units,
                            max: rule.max_units,
                        });
                    }
                    let part = units.checked_mul(rule.unit_yen).ok_or(FeeError::Overflow)?;
                    total = total.checked_add(part).ok_or(FeeError::Overflow)?;
                }
                for rule in when {
                    // An unanswered optional question simply does not match.
                    if answers.pointer(&rule.field) == Some(&rule.equals) {
                        total = total.checked_add(rule.add_yen).ok_or(FeeError::Overflow)?;
                    }
                }
                Ok(total)
            }
        }
    }

    /// Whether applications under this fee ever need a payment.
    pub fn is_free(&self) -> bool {
        match self {
            Fee::None => true,
            Fee::Fixed { yen } => *yen == 0,
            Fee::Computed {
                base_yen,
                per_unit,
                when,
            } => {
                *base_yen == 0
                    && per_unit.iter().all(|r| r.unit_yen == 0)
                    && when.iter().all(|r| r.add_yen == 0)
            }
        }
    }

    /// Checks a definition before it is saved, so that a well-formed set of answers can
    /// always be charged: every pointer is valid, every cap and price is positive, and even
    /// the largest possible total fits.
    pub fn check(&self) -> Result<(), FeeDefinitionError> {
        match self {
            Fee::None => Ok(()),
            Fee::Fixed { yen: 0 } => Err(FeeDefinitionError::ZeroFixed),
            Fee::Fixed { .. } => Ok(()),
            Fee::Computed {
                base_yen,
                per_unit,
                when,
            } => {
                let mut max_total = *base_yen;
                for rule in per_unit {
                    check_pointer(&rule.field)?;
                    if rule.max_units == 0 {
                        return Err(FeeDefinitionError::ZeroMaxUnits {
                            field: rule.field.clone(),
                        });
                    }
                    if rule.unit_yen == 0 {
                        return Err(FeeDefinitionError::ZeroUnitPrice {
                            field: rule.field.clone(),
                        });
                    }
                    let part = rule
                        .max_units
                        .checked_mul(rule.unit_yen)
                        .ok_or(FeeDefinitionError::Overflow)?;
                    max_total = max_total
                        .checked_add(part)
                        .ok_or(FeeDefinitionError::Overflow)?;
                }
                for rule in when {
                    check_pointer(&rule.field)?;
                    max_total = max_total
                        .checked_add(rule.add_yen)
                        .ok_or(FeeDefinitionError::Overflow)?;
                }
                Ok(())
            }
        }
    }
}

impl PaymentTiming {
    /// Whether an unpaid application must wait before reviewers see it.
    pub fn blocks_review(self) -> bool {
        self == PaymentTiming::BeforeReview
    }
}

fn unit_count(answers: &Value, field: &str) -> Result<u64, FeeError> {
    match answers.pointer(field) {
        None | Some(Value::Null) => Err(FeeError::MissingField {
            field: field.to_owned(),
        }),
        Some(value) => value.as_u64().ok_or_else(|| FeeError::NotAnInteger {
            field: field.to_owned(),
            found: truncate(&value.to_string(), 40),
        }),
    }
}

/// RFC 6901: empty (the whole document, never a count) is refused; otherwise `/`-separated
/// tokens where `~` is only allowed as `~0` or `~1`.
fn check_pointer(field: &str) -> Result<(), FeeDefinitionError> {
    let invalid = || FeeDefinitionError::InvalidPointer {
        field: field.to_owned(),
    };
    let rest = field.strip_prefix('/').ok_or_else(invalid)?;
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(invalid());
        }
    }
    Ok(())
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
