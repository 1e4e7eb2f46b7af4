//! The audit log's hash chain. Every record carries the SHA-256 of its own content and
//! of the record before it, so changing, inserting or deleting a record anywhere but
//! at the very end breaks the chain at that point. (Cutting the tail is caught by
//! comparing the head hash with one kept elsewhere: `renkei audit verify` prints it.)
//!
//! The hash covers a canonical form of the record — fixed field order, object keys
//! sorted, timestamps in microseconds — so it does not depend on how a backend stores
//! JSON (PostgreSQL's jsonb reorders keys).

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened: who did what to what, in which tenant. `detail` never holds personal
/// data itself (only identifiers of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub at: DateTime<Utc>,
    pub tenant: Option<String>,
    /// `user:<id>`, `key:<id>`, `cli` or `anonymous`.
    pub actor: String,
    /// A stable name: `tenant.create`, `key.revoke`, `role.grant`, `application.decide`…
    pub action: String,
    /// What was acted on: `tenant:222127`, `key:…`, `user:…`, `application:…`.
    pub target: String,
    pub detail: Value,
}

impl AuditEvent {
    pub fn new(
        tenant: Option<&str>,
        actor: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
        detail: Value,
    ) -> AuditEvent {
        AuditEvent {
            // Microseconds: what every backend keeps, so the hash is reproducible.
            at: Utc::now().trunc_subsecs(6),
            tenant: tenant.map(str::to_owned),
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            detail,
        }
    }
}

/// A stored record: the event, its place in the log, and the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 1, 2, 3, … without gaps.
    pub seq: i64,
    pub event: AuditEvent,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// Chains `event` after the record whose hash is `prev_hash` (or [`GENESIS`]).
    pub fn chain(seq: i64, prev_hash: &str, event: AuditEvent) -> AuditRecord {
        let hash = chain_hash(seq, prev_hash, &event);
        AuditRecord {
            seq,
            event,
            prev_hash: prev_hash.to_owned(),
            hash,
        }
    }
}

/// The hash of a record: SHA-256 over the previous hash and the canonical record.
pub fn chain_hash(seq: i64, prev_hash: &str, event: &AuditEvent) -> String {
    let canonical = serde_json::json!([
        seq,
        prev_hash,
        event.at.to_rfc3339_opts(SecondsFormat::Micros, true),
        event.tenant,
        event.actor,
        event.action,
        event.target,
        canonical_json(&event.detail),
    ]);
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value with every object's keys sorted.
fn canonical_json(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), canonical_json(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical_json).collect()),
        other => other.clone(),
    }
}

/// Where verification has got to: the next expected sequence number and the hash the
/// next record must point back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCursor {
    pub next_seq: i64,
    pub prev_hash: String,
    pub verified: u64,
}

impl Default for ChainCursor {
    fn default() -> Self {
        ChainCursor {
            next_seq: 1,
            prev_hash: GENESIS.to_owned(),
            verified: 0,
        }
    }
}

/// Where and how the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("record {found} follows record {} (a record is missing)", expected - 1)]
    Gap { expected: i64, found: i64 },
    #[error("record {seq} does not point back to the record before it")]
    BrokenLink { seq: i64 },
    #[error("record {seq} was changed after it was written")]
    Altered { seq: i64 },
}

impl ChainCursor {
    /// Checks the next records in order (a page at a time for long logs).
    pub fn verify<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a AuditRecord>,
    ) -> Result<(), ChainBreak> {
        for record in records {
            if record.seq != self.next_seq {
                return Err(ChainBreak::Gap {
                    expected: self.next_seq,
                    found: record.seq,
                });
            }
            if record.prev_hash != self.prev_hash {
                return Err(ChainBreak::BrokenLink { seq: record.seq });
            }
            if chain_hash(record.seq, &record.prev_hash, &record.event) != record.hash {
                return Err(ChainBreak::Altered { seq: record.seq });
            }
            self.next_seq += 1;
            self.prev_hash = record.hash.clone();
            self.verified += 1;
        }
        Ok(())
    }
}

/// A search of the audit log; every field narrows it. Newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    pub tenant: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub action: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only records with a smaller sequence number (paging backwards).
    pub before_seq: Option<i64>,
    pub limit: usize,
}

impl AuditFilter {
    pub fn matches(&self, record: &AuditRecord) -> bool {
        let event = &record.event;
        self.tenant
            .as_ref()
            .is_none_or(|t| event.tenant.as_ref() == Some(t))
            && self.actor.as_ref().is_none_or(|a| &event.actor == a)
            && self.target.as_ref().is_none_or(|t| &event.target == t)
            && self.action.as_ref().is_none_or(|a| &event.action == a)
            && self.from.is_none_or(|from| event.at >= from)
            && self.to.is_none_or(|to| event.at < to)
            && self.before_seq.is_none_or(|before| record.seq < before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain_of(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let event = AuditEvent::new(
                    Some("222127"),
                    "user:u1",
                    "key.create",
                    format!("key:{seq}"),
                    json!({"role": "publisher", "b": 1, "a": [{"y": 1, "x": 2}]}),
                );
                let record = AuditRecord::chain(seq, &prev, event);
                prev = record.hash.clone();
                record
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies_in_pages() {
        let records = chain_of(5);
        let mut cursor = ChainCursor::default();
        cursor.verify(&records[..2]).unwrap();
        cursor.verify(&records[2..]).unwrap();
        assert_eq!(cursor.verified, 5);
        assert_eq!(cursor.prev_hash, records[4].hash);
    }

    #[test]
    fn changes_deletions_and_forged_links_are_found() {
        let mut changed = chain_of(4);
        changed[2].event.target = "key:other".into();
        assert_eq!(
            ChainCursor::default().verify(&changed),
            Err(ChainBreak::Altered { seq: 3 })
        );

        let mut deleted = chain_of(4);
        deleted.remove(1);
        assert_eq!(
            ChainCursor::default().verify(&deleted),
            Err(ChainBreak::Gap {
                expected: 2,
                found: 3
            })
        );

        // Rewriting a record and its own hash still breaks the next link.
        let mut rehashed = chain_of(4);
        rehashed[1].event.actor = "user:someone-else".into();
        rehashed[1].hash = chain_hash(2, &rehashed[1].prev_hash, &rehashed[1].event);
        assert_eq!(
            ChainCursor::default().verify(&rehashed),
            Err(ChainBreak::BrokenLink { seq: 3 })
        );
    }

    #[test]
    fn key_order_of_the_detail_does_not_change_the_hash() {
        let mut event = AuditEvent::new(
            None,
            "cli",
            "tenant.create",
            "tenant:222127",
            json!({"a": 1, "b": 2}),
        );
        let first = chain_hash(1, GENESIS, &event);
        event.detail = serde_json::from_str(r#"{"b": 2, "a": 1}"#).unwrap();
        assert_eq!(first, chain_hash(1, GENESIS, &event));
    }
}
