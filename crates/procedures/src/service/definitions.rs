//! Procedure definitions: create, revise (every change is a new version, applications
//! keep theirs), read, list, and adopt a template another tenant shares (共同利用).

use super::{Applications, ServiceError};
use crate::procedure::{Procedure, ProcedureStatus};
use chrono::{DateTime, Utc};
use serde::Serialize;
use store::applications::ProcedureRecord;

/// One version of a procedure as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcedureView {
    pub tenant: String,
    pub id: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    #[serde(flatten)]
    pub procedure: Procedure,
}

impl ProcedureView {
    pub(crate) fn from_record(record: &ProcedureRecord) -> Result<ProcedureView, ServiceError> {
        let procedure: Procedure = serde_json::from_value(record.document.clone())
            .map_err(|e| ServiceError::internal(format!("stored procedure {}: {e}", record.id)))?;
        Ok(ProcedureView {
            tenant: record.tenant.clone(),
            id: record.id.clone(),
            version: record.version,
            created_at: record.created_at,
            procedure,
        })
    }
}

/// A procedure id: lower-case letters, digits and hyphens, as in a URL.
fn check_id(id: &str) -> Result<(), ServiceError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ServiceError::bad_request(
            "InvalidProcedureId",
            format!("手続IDは英小文字・数字・ハイフンの64文字以内にしてください: {id:?}"),
            format!("a procedure id is 1–64 lower-case letters, digits or hyphens: {id:?}"),
        ))
    }
}

impl Applications {
    /// Creates version 1 of a new procedure.
    pub async fn create_procedure(
        &self,
        tenant: &str,
        id: &str,
        procedure: Procedure,
    ) -> Result<ProcedureView, ServiceError> {
        check_id(id)?;
        procedure.check().map_err(ServiceError::InvalidProcedure)?;
        if self.store.get_procedure(tenant, id, None).await?.is_some() {
            return Err(ServiceError::conflict(
                "ProcedureExists",
                format!("手続 {id} は既にあります。変更は新しい版として登録してください"),
                format!("procedure {id} exists; send changes as a new version"),
            ));
        }
        self.insert_version(tenant, id, 1, procedure).await
    }

    /// Stores a changed definition as the next version.
    pub async fn revise_procedure(
        &self,
        tenant: &str,
        id: &str,
        procedure: Procedure,
    ) -> Result<ProcedureView, ServiceError> {
        procedure.check().map_err(ServiceError::InvalidProcedure)?;
        let latest = self
            .store
            .get_procedure(tenant, id, None)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("procedure {id}")))?;
        self.insert_version(tenant, id, latest.version + 1, procedure)
            .await
    }

    async fn insert_version(
        &self,
        tenant: &str,
        id: &str,
        version: i64,
        procedure: Procedure,
    ) -> Result<ProcedureView, ServiceError> {
        let record = ProcedureRecord {
            tenant: tenant.to_owned(),
            id: id.to_owned(),
            version,
            shared: procedure.shared,
            status: procedure.status.as_str().to_owned(),
            created_at: Utc::now(),
            document: serde_json::to_value(&procedure).map_err(ServiceError::internal)?,
        };
        self.store.insert_procedure(&record).await?;
        ProcedureView::from_record(&record)
    }

    /// A procedure at a version (the latest when `None`).
    pub async fn procedure(
        &self,
        tenant: &str,
        id: &str,
        version: Option<i64>,
    ) -> Result<ProcedureView, ServiceError> {
        let record = self
            .store
            .get_procedure(tenant, id, version)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("procedure {id}")))?;
        ProcedureView::from_record(&record)
    }

    /// The latest version of each of a tenant's procedures; residents see only the
    /// published ones.
    pub async fn procedures(
        &self,
        tenant: &str,
        published_only: bool,
    ) -> Result<Vec<ProcedureView>, ServiceError> {
        let records = self.store.list_procedures(tenant, false).await?;
        records
            .iter()
            .filter(|r| !published_only || r.status == ProcedureStatus::Published.as_str())
            .map(ProcedureView::from_record)
            .collect()
    }

    /// The templates other tenants share (their latest versions).
    pub async fn templates(&self, tenant: &str) -> Result<Vec<ProcedureView>, ServiceError> {
        let records = self.store.list_procedures(tenant, true).await?;
        records
            .iter()
            .filter(|r| r.shared && r.tenant != tenant)
            .map(ProcedureView::from_record)
            .collect()
    }

    /// Copies another tenant's shared procedure into `tenant` as a new draft procedure.
    pub async fn adopt_template(
        &self,
        tenant: &str,
        from_tenant: &str,
        template_id: &str,
        new_id: &str,
    ) -> Result<ProcedureView, ServiceError> {
        let template = self.procedure(from_tenant, template_id, None).await?;
        if !template.procedure.shared {
            return Err(ServiceError::NotFound(format!("template {template_id}")));
        }
        let mut procedure = template.procedure;
        procedure.shared = false;
        procedure.status = ProcedureStatus::Draft;
        procedure.webhook_url = None;
        self.create_procedure(tenant, new_id, procedure).await
    }
}
