//! A resident's side of an application (start, save, resume, attach, submit, pay,
//! withdraw, follow), the reads staff share with them (show, history, documents,
//! attachments), the public verification of documents, and the payment gateway's
//! callback and return.

use super::{allowed, person, require, signed_in, tenant_name, ApiResult};
use crate::auth::AuthError;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::Extensions;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use identity::policy::Action;
use procedures::service::{ApplicationView, HistoryView, Person};
use serde::Deserialize;
use serde_json::{json, Value};
use store::applications::ApplicationFilter;

/// How the caller relates to an application.
enum Access {
    /// Its applicant, or a signed-in person the service will check is the applicant.
    Applicant(Person),
    /// Staff of its tenant who review; `sensitive` when they also decide.
    Staff { sensitive: bool },
}

async fn access(state: &AppState, extensions: &Extensions, id: &str) -> ApiResult<Access> {
    let caller = signed_in(extensions)?;
    let tenant = state.applications.tenant_of(id).await?;
    if allowed(state, &caller, &tenant, Action::ApplicationReview).await {
        let sensitive = allowed(state, &caller, &tenant, Action::ApplicationDecide).await;
        return Ok(Access::Staff { sensitive });
    }
    Ok(Access::Applicant(person(&caller, &tenant)))
}

async fn applicant(state: &AppState, extensions: &Extensions, id: &str) -> ApiResult<Person> {
    let caller = signed_in(extensions)?;
    let tenant = state.applications.tenant_of(id).await?;
    Ok(person(&caller, &tenant))
}

async fn view(state: &AppState, extensions: &Extensions, id: &str) -> ApiResult<ApplicationView> {
    Ok(match access(state, extensions, id).await? {
        Access::Applicant(person) => state.applications.view_own(id, &person).await?,
        Access::Staff { sensitive } => state.applications.view_for_staff(id, sensitive).await?,
    })
}

/// Refuses a caller who may not read the application (reading its files, history or
/// documents needs the same right as reading it).
async fn ensure_visible(state: &AppState, extensions: &Extensions, id: &str) -> ApiResult<()> {
    let applicant = match access(state, extensions, id).await? {
        Access::Applicant(person) => Some(person),
        Access::Staff { .. } => None,
    };
    Ok(state
        .applications
        .check_visible(id, applicant.as_ref())
        .await?)
}

#[derive(Deserialize)]
pub struct Start {
    #[serde(default = "empty_object")]
    answers: Value,
}

fn empty_object() -> Value {
    json!({})
}

/// `POST /tenants/{tenant}/procedures/{id}/applications`: starts a draft. An
/// `Idempotency-Key` header makes a repeated start return the first draft.
pub async fn start(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    Path((tenant, procedure)): Path<(String, String)>,
    Json(body): Json<Start>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let person = require(&state, &extensions, &tenant, Action::ApplicationSubmit).await?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (record, token) = state
        .applications
        .start_application(&tenant, &procedure, &person, body.answers, key)
        .await?;
    let view = state.applications.view_own(&record.id, &person).await?;
    let resume_url = token.map(|token| {
        format!(
            "{}/api/v1/procedures/applications/{}/resume?token={token}",
            state.config.public_url.trim_end_matches('/'),
            record.id
        )
    });
    Ok((
        StatusCode::CREATED,
        Json(json!({"application": view, "resume_url": resume_url})),
    ))
}

/// `GET /applications/mine`: the signed-in person's applications, newest first.
pub async fn mine(State(state): State<AppState>, extensions: Extensions) -> ApiResult<Json<Value>> {
    let caller = signed_in(&extensions)?;
    let me = person(&caller, "");
    let filter = ApplicationFilter {
        applicant: Some(me.user_id.clone()),
        limit: 200,
        ..ApplicationFilter::default()
    };
    let (views, total) = state
        .applications
        .list(&filter, procedures::service::Viewer::Applicant)
        .await?;
    Ok(Json(json!({"total": total, "applications": views})))
}

/// `GET /applications/mine/export`: everything renkei keeps about the signed-in
/// person's applications (answers, files listed, documents, history), as one JSON
/// document they can keep (開示請求 of their own data).
pub async fn export_mine(
    State(state): State<AppState>,
    extensions: Extensions,
) -> ApiResult<Response> {
    let caller = signed_in(&extensions)?;
    let me = person(&caller, "");
    let filter = ApplicationFilter {
        applicant: Some(me.user_id.clone()),
        ..ApplicationFilter::default()
    };
    let (views, _) = state
        .applications
        .list(&filter, procedures::service::Viewer::Applicant)
        .await?;
    let mut applications = Vec::with_capacity(views.len());
    for view in views {
        let history = state.applications.history(&view.id).await?;
        applications.push(json!({"application": view, "history": history}));
    }
    let body = json!({
        "exported_at": chrono::Utc::now(),
        "applicant": me.user_id,
        "applications": applications,
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"my-applications.json\"".to_owned(),
            ),
        ],
        body.to_string(),
    )
        .into_response())
}

pub async fn show(
    State(state): State<AppState>,
    extensions: Extensions,
    Path(id): Path<String>,
) -> ApiResult<Json<ApplicationView>> {
    Ok(Json(view(&state, &extensions, &id).await?))
}

#[derive(Deserialize)]
pub struct Save {
    answers: Value,
    step: Option<String>,
}

/// `PUT /applications/{id}/answers`: keeps the answers and says what is wrong in the
/// step named (or the whole form).
pub async fn save(
    State(state): State<AppState>,
    extensions: Extensions,
    Path(id): Path<String>,
    Json(body): Json<Save>,
) -> ApiResult<Json<Value>> {
    let person = applicant(&state, &extensions, &id).await?;
    let (_, errors) = state
        .applications
        .save_draft(&id, &person, body.answers, body.step.as_deref())
        .await?;
    let view = state.applications.view_own(&id, &person).await?;
    Ok(Json(json!({"application": view, "errors": errors})))
}

#[derive(Deserialize)]
pub struct Token {
    token: String,
}

/// `GET /applications/{id}/resume?token=…`: the resume link, for its applicant once
/// signed in (it survives the sign-in) until the draft expires.
pub async fn resume(
    State(state): State<AppState>,
    extensions: Extensions,
    Path(id): Path<String>,
    Query(query): Query<Token>,
) -> ApiResult<Json<ApplicationView>> {
    let person = applicant(&state, &extensions, &id).await?;
    state
        .applications
        .resume(&id, &query.token, &person)
        .await?;
    Ok(Json(state.applications.view_own(&id, &person).await?))
}

/// `POST /applications/{id}/attachments` (multipart: `requirement`, `file`).
pub async fn attach(
    State(state): State<AppState>,
    extensions: Extensions,
    Path(id): Path<String>,
    mut multipart: Multipart,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let person = applicant(&state, &extensions, &id).await?;
    let bad = |en: String, ja: String| AuthError::bad_request(en, ja);
    let mut requirement = None;
    let mut file = None;
    while let Some(field) = multipart.next_field().await.map_err(|e| {
        bad(
            format!("the upload cannot be read: {e}"),
            format!("アップロードを読み取れません: {e}"),
        )
    })? {
        match field.name() {
            Some("requirement") => {
                requirement =
                    Some(field.text().await.map_err(|e| {
                        bad(format!("requirement: {e}"), format!("requirement: {e}"))
                    })?)
            }
            Some("file") => {
                let name = field.file_name().unwrap_or("file").to_owned();
                let declared = field
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_owned();
                let bytes = field.bytes().await.map_err(|e| {
                    bad(
                        format!("the file cannot be read: {e}"),
                        format!("ファイルを読み取れません: {e}"),
                    )
                })?;
                file = Some((name, declared, bytes));
            }
            _ => {}
        }
    }
    let (Some(requirement), Some((name, declared, bytes))) = (requirement, file) else {
        return Err(bad(
            "send the fields \"requirement\" and \"file\"".into(),
            "\"requirement\" と \"file\" を送ってください".into(),
        )
        .into());
    };
    let record = state
        .applications
        .add_attachment(&id, &person, &requirement, &name, &declared, &bytes)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": record.id, "requirement": record.requirement, "file_name": record.file_name,
            "media_type": record.media_type, "size": record.size, "sha256": record.digest,
        })),
    ))
}

pub async fn attachment(
    State(state): State<AppState>,
    extensions: Extensions,
    Path((id, attachment)): Path<(String, String)>,
) -> ApiResult<Response> {
    ensure_visible(&state, &extensions, &id).await?;
    let (name, media_type, content) = state
        .applications
        .attachment_content(&id, &attachment)
        .await?;
    let disposition = format!(
        "attachment; filename*=UTF-8''{}",
        url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
    );
    Ok((
        [
            (header::CONTENT_TYPE, media_type),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        content,
    )
        .into_response())
}

pub async fn detach(
    State(state): State<AppState>,
    extensions: Extensions,
    Path((id, attachment)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let person = applicant(&state, &extensions, &id).await?;
    state
        .applications
        .remove_attachment(&id, &person, &attachment)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /applications/{id}/submit`: submits or resubmits; a repeat returns the same.
pub async fn submit(
    State(state): State<AppState>,
    extensions: Extensions,
    Path(id): Path<String>,
) -> ApiResult<Json<ApplicationView>> {
    let person = applicant(&state, &extensions, &id).await?;
    let tenant = state.applications.tenant_of(&id).await?;
    let name = tenant_name(&state, &tenant).await;
    state.applications.submit(&id, &person, &name).await?;
    Ok(Json(state.applications.view_own(&id, &person).await?))
}

#[derive(Deserialize, Default)]
pub struct Withdraw {
    reason: Option<String>,
}

pub async fn withdraw(
    State(state): State<AppState>,
    extensions: Extensions,
    Path(id): Path<String>,
    body: Option<Json<Withdraw>>,
) -> ApiResult<Json<ApplicationView>> {
    let person = applicant(&state, &extensions, &id).await?;
    let reason = body.and_then(|Json(b)| b.reason);
    state.applications.withdraw(&id, &person, reason).await?;
    Ok(Json(state.applications.view_own(&id, &person).await?))
}

/// `POST /applications/{id}/payment`: where to send the applicant to pay.
pub async fn pay(
    State(state): State<AppState>,
    extensions: Extensions,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<procedures::service::PaymentStart>)> {
    let person = applicant(&state, &extensions, &id).await?;
    let start = state.applications.start_payment(&id, &person).await?;
    Ok((StatusCode::CREATED, Json(start)))
}

pub async fn history(
    State(state): State<AppState>,
    extensions: Extensions,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<HistoryView>>> {
    ensure_visible(&state, &extensions, &id).await?;
    Ok(Json(state.applications.history(&id).await?))
}

/// `GET /applications/{id}/documents/{receipt|decision}`: the PDF.
pub async fn document(
    State(state): State<AppState>,
    extensions: Extensions,
    Path((id, kind)): Path<(String, String)>,
) -> ApiResult<Response> {
    ensure_visible(&state, &extensions, &id).await?;
    let document = state.applications.document_of(&id, &kind).await?;
    let file = format!("{}-{kind}.pdf", document.reception_number);
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{file}\""),
            ),
        ],
        document.pdf,
    )
        .into_response())
}

/// `GET /verify/{code}`: public; what the code was issued for and the PDF's SHA-256.
pub async fn verify(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> ApiResult<Json<Value>> {
    let (document, reception_number, tenant) = state.applications.verify(&code).await?;
    let issuer = tenant_name(&state, &tenant).await;
    Ok(Json(json!({
        "valid": true,
        "kind": document.kind,
        "verification_code": document.verification_code,
        "reception_number": reception_number,
        "issuer": {"code": tenant, "name": issuer},
        "issued_at": document.issued_at,
        "sha256": document.sha256,
    })))
}

/// `POST /payments/callback`: the gateway's signed notification.
pub async fn payment_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    state.applications.payment_callback(&pairs, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /payments/{id}/return`: where the resident lands after paying; it only reads.
pub async fn payment_return(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (status, application_id) = state.applications.payment_return(&id).await?;
    Ok(Json(
        json!({"payment_id": id, "status": status, "application_id": application_id}),
    ))
}
