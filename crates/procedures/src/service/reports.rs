//! Reports over a procedure's applications: monthly statistics for the dashboards, the
//! staff's CSV export (sensitive fields left out unless the role may see them), and the
//! retention job that anonymises finished applications and expired drafts.

use super::lifecycle::Stored;
use super::{Applications, ServiceError};
use crate::application::{ApplicationState, CommandKind, HistoryEntry};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use store::applications::ApplicationFilter;

/// One month (JST) of a procedure's statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatisticsMonth {
    /// `2026-11`.
    pub month: String,
    /// Applications started (drafts created).
    pub started: u64,
    /// First submissions.
    pub submitted: u64,
    pub completed: u64,
    /// Drafts started this month that were never submitted and have expired.
    pub abandoned: u64,
    /// Approvals and rejections.
    pub decided: u64,
    /// Median days from first submission to decision, of those decided this month.
    pub median_days_to_decision: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcedureStatistics {
    pub tenant: String,
    pub procedure_id: String,
    pub months: Vec<StatisticsMonth>,
}

/// What a retention run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// Finished applications whose retention period ended.
    pub anonymised: usize,
    /// Drafts whose resume period ended.
    pub expired_drafts: usize,
}

fn month_of(at: DateTime<Utc>) -> String {
    crate::in_japan(at).format("%Y-%m").to_string()
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

impl Applications {
    /// Every application of a procedure (limit 0: no limit).
    async fn applications_of(
        &self,
        tenant: &str,
        procedure_id: &str,
    ) -> Result<Vec<store::applications::ApplicationRecord>, ServiceError> {
        Ok(self
            .store
            .list_applications(&ApplicationFilter {
                tenant: Some(tenant.to_owned()),
                procedure_id: Some(procedure_id.to_owned()),
                ..ApplicationFilter::default()
            })
            .await?)
    }

    /// Monthly statistics of a procedure (all its versions).
    pub async fn statistics(
        &self,
        tenant: &str,
        procedure_id: &str,
    ) -> Result<ProcedureStatistics, ServiceError> {
        let mut months: BTreeMap<String, StatisticsMonth> = BTreeMap::new();
        fn month_in(
            months: &mut BTreeMap<String, StatisticsMonth>,
            key: String,
        ) -> &mut StatisticsMonth {
            months
                .entry(key.clone())
                .or_insert_with(|| StatisticsMonth {
                    month: key,
                    ..StatisticsMonth::default()
                })
        }
        let now = Utc::now();
        let applications = self.applications_of(tenant, procedure_id).await?;
        for record in &applications {
            let entry = month_in(&mut months, month_of(record.created_at));
            entry.started += 1;
            let stored: Stored =
                serde_json::from_value(record.document.clone()).unwrap_or_default();
            if record.state == ApplicationState::Draft.as_str()
                && stored.resume_expires_at.is_none_or(|until| until <= now)
            {
                entry.abandoned += 1;
            }
        }
        let mut first_submitted: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
        let mut days: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut history = self.store.procedure_history(tenant, procedure_id).await?;
        history.sort_by_key(|h| h.at);
        for record in history {
            let Ok(entry) = serde_json::from_value::<HistoryEntry>(record.entry) else {
                continue;
            };
            let key = month_of(entry.at);
            match entry.command {
                CommandKind::Submit => {
                    first_submitted
                        .entry(record.application_id.clone())
                        .or_insert(entry.at);
                    month_in(&mut months, key).submitted += 1;
                }
                CommandKind::Approve | CommandKind::Reject => {
                    month_in(&mut months, key.clone()).decided += 1;
                    if let Some(from) = first_submitted.get(&record.application_id) {
                        let span = (entry.at - *from).num_seconds() as f64 / 86_400.0;
                        days.entry(key).or_default().push(span);
                    }
                }
                CommandKind::Complete => month_in(&mut months, key).completed += 1,
                _ => {}
            }
        }
        for (key, mut spans) in days {
            month_in(&mut months, key).median_days_to_decision = median(&mut spans);
        }
        Ok(ProcedureStatistics {
            tenant: tenant.to_owned(),
            procedure_id: procedure_id.to_owned(),
            months: months.into_values().collect(),
        })
    }

    /// The CSV of a procedure's submitted applications for staff: reception number,
    /// state, dates and one column per answer field; fields the form marks sensitive are
    /// left out unless `sensitive` (then they are opened).
    pub async fn export_csv(
        &self,
        tenant: &str,
        procedure_id: &str,
        sensitive: bool,
    ) -> Result<String, ServiceError> {
        let definition = self.procedure(tenant, procedure_id, None).await?;
        // Fields the form marks sensitive (and every マイナンバー field).
        let hidden: BTreeSet<String> = definition
            .procedure
            .form
            .sensitive_fields()
            .into_iter()
            .collect();
        let records = self.applications_of(tenant, procedure_id).await?;
        let mut rows: Vec<(Vec<String>, BTreeMap<String, String>)> = Vec::new();
        let mut columns: BTreeSet<String> = BTreeSet::new();
        for record in records.iter().filter(|r| r.reception_number.is_some()) {
            let loaded = self.loaded(record.clone()).await?;
            if loaded.stored.anonymised {
                continue;
            }
            let answers = if sensitive {
                self.open_answers_with_sensitive(&loaded)?
            } else {
                self.open_answers(&loaded)?
            };
            let mut cells = BTreeMap::new();
            flatten("", &answers, &mut cells);
            cells.retain(|pointer, _| {
                sensitive
                    || (!hidden.contains(pointer) && !loaded.stored.sensitive.contains_key(pointer))
            });
            columns.extend(cells.keys().cloned());
            let fixed = vec![
                record.reception_number.clone().unwrap_or_default(),
                record.state.clone(),
                loaded
                    .stored
                    .submitted_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
                loaded
                    .stored
                    .decided_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
            ];
            rows.push((fixed, cells));
        }
        let mut out = String::new();
        let mut header: Vec<String> = [
            "受付番号 reception_number",
            "状態 state",
            "申請日時 submitted_at",
            "決定日時 decided_at",
        ]
        .map(str::to_owned)
        .to_vec();
        header.extend(columns.iter().cloned());
        push_csv_row(&mut out, &header);
        for (fixed, cells) in rows {
            let mut line = fixed;
            line.extend(
                columns
                    .iter()
                    .map(|c| cells.get(c).cloned().unwrap_or_default()),
            );
            push_csv_row(&mut out, &line);
        }
        Ok(out)
    }

    /// Anonymises finished applications whose retention period has ended and drafts whose
    /// resume period has ended: answers, attachments and documents go; the history (which
    /// holds no answers) and the dates stay for statistics.
    pub async fn run_retention(&self, now: DateTime<Utc>) -> Result<RetentionReport, ServiceError> {
        let mut report = RetentionReport::default();
        let states = [
            ApplicationState::Draft,
            ApplicationState::Rejected,
            ApplicationState::Completed,
            ApplicationState::Withdrawn,
        ];
        let candidates = self
            .store
            .list_applications(&ApplicationFilter {
                states: states.iter().map(|s| s.as_str().to_owned()).collect(),
                ..ApplicationFilter::default()
            })
            .await?;
        for record in candidates {
            let stored: Stored = match serde_json::from_value(record.document.clone()) {
                Ok(stored) => stored,
                Err(_) => continue,
            };
            if stored.anonymised {
                continue;
            }
            let due = if record.state == ApplicationState::Draft.as_str() {
                stored.resume_expires_at.is_some_and(|until| until <= now)
            } else {
                let days = self
                    .procedure(
                        &record.tenant,
                        &record.procedure_id,
                        Some(record.procedure_version),
                    )
                    .await?
                    .procedure
                    .retention_days;
                stored
                    .finished_at
                    .is_some_and(|at| at + Duration::days(days.into()) <= now)
            };
            if !due {
                continue;
            }
            let anonymised = json!({
                "anonymised": true,
                "fee_yen": stored.fee_yen,
                "payment_settled": stored.payment_settled,
                "submitted_at": stored.submitted_at,
                "decided_at": stored.decided_at,
                "finished_at": stored.finished_at,
            });
            if self
                .store
                .anonymise_application(&record.id, &anonymised)
                .await?
            {
                if record.state == ApplicationState::Draft.as_str() {
                    report.expired_drafts += 1;
                } else {
                    report.anonymised += 1;
                }
            }
        }
        Ok(report)
    }
}

/// Leaves of a JSON value by JSON pointer.
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                flatten(&format!("{prefix}/{key}"), child, out);
            }
        }
        Value::Null => {}
        Value::String(text) => {
            out.insert(prefix.to_owned(), text.clone());
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

/// One CSV line (RFC 4180): every field quoted, quotes doubled; CRLF line end.
fn push_csv_row(out: &mut String, fields: &[String]) {
    let quoted: Vec<String> = fields
        .iter()
        .map(|f| {
            // A leading = + - @ makes spreadsheets run the cell as a formula.
            let guard = if f.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                "'"
            } else {
                ""
            };
            format!("\"{guard}{}\"", f.replace('"', "\"\""))
        })
        .collect();
    out.push_str(&quoted.join(","));
    out.push_str("\r\n");
}
