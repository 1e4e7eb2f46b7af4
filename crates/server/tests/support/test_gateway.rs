//! A small but real payment gateway for tests: an HTTP server on 127.0.0.1 speaking the
//! generic redirect-and-webhook protocol documented in `procedures::payment::generic`, with a
//! resident-facing payment page and signed callbacks to renkei.
//!
//! Include it with `#[path = "…/support/test_gateway.rs"] mod test_gateway;`. Tests drive the
//! resident's side either through the page (`GET {pay_url}`, then `POST` the form with
//! `outcome=capture|authorise|fail`, answered by a 303 to the return URL) or through the
//! handle ([`TestGateway::complete`]). How callbacks are delivered is chosen per test with
//! [`CallbackMode`]: immediately (before the resident is redirected back), held until
//! [`TestGateway::flush`] (after, or in any order), or dropped (never; reconciliation must
//! find the payment).

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use procedures::payment::{sign, SIGNATURE_HEADER};

/// How status changes are called back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackMode {
    /// Sent before the gateway answers the action that caused it.
    Immediate,
    /// Queued until [`TestGateway::flush`].
    Deferred,
    /// Never sent.
    Dropped,
}

/// What the resident does on the payment page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Authorise,
    Capture,
    Fail(String),
}

/// A callback the gateway built (and sent unless dropped).
#[derive(Debug, Clone)]
pub struct Callback {
    pub url: String,
    pub body: Vec<u8>,
    pub event_id: String,
    pub payment_id: String,
    /// HTTP status renkei answered, or `None` if not (yet) delivered or unreachable.
    pub answered: Option<u16>,
}

#[derive(Debug, Clone)]
struct GwPayment {
    reference: String,
    description: String,
    amount: u64,
    status: String,
    reason: Option<String>,
    return_url: String,
    callback_url: String,
}

struct Inner {
    secret: Vec<u8>,
    api_key: Option<String>,
    base: String,
    payments: HashMap<String, GwPayment>,
    by_idempotency_key: HashMap<String, String>,
    mode: CallbackMode,
    clock_skew_seconds: i64,
    pending: Vec<Callback>,
    log: Vec<Callback>,
    next: u64,
}

/// A running test gateway. Dropping it stops the server.
#[derive(Clone)]
pub struct TestGateway {
    inner: Arc<Mutex<Inner>>,
    client: reqwest::Client,
    addr: std::net::SocketAddr,
    _server: Arc<ServerGuard>,
}

struct ServerGuard(tokio::task::JoinHandle<()>);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl TestGateway {
    /// Starts on 127.0.0.1 with a free port. `api_key`, if given, is required as a bearer
    /// token on the protocol's endpoints.
    pub async fn start(secret: &[u8], api_key: Option<&str>) -> TestGateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind test gateway");
        let addr = listener.local_addr().expect("local addr");
        let inner = Arc::new(Mutex::new(Inner {
            secret: secret.to_vec(),
            api_key: api_key.map(str::to_owned),
            base: format!("http://{addr}"),
            payments: HashMap::new(),
            by_idempotency_key: HashMap::new(),
            mode: CallbackMode::Immediate,
            clock_skew_seconds: 0,
            pending: Vec::new(),
            log: Vec::new(),
            next: 1,
        }));
        let gateway_state = GwState {
            inner: inner.clone(),
            client: reqwest::Client::new(),
        };
        let app = Router::new()
            .route("/api/payments", post(create_payment))
            .route("/api/payments/{id}", get(get_payment))
            .route("/api/payments/{id}/refund", post(refund_payment))
            .route("/pay/{id}", get(pay_page).post(pay_submit))
            .with_state(gateway_state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestGateway {
            inner,
            client: gateway_state.client,
            addr,
            _server: Arc::new(ServerGuard(server)),
        }
    }

    /// The protocol's `{base}`, to configure `GenericRedirectProvider` with.
    pub fn base_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    pub fn set_mode(&self, mode: CallbackMode) {
        self.lock().mode = mode;
    }

    /// Signs callbacks as if the gateway's clock were off by this much.
    pub fn set_clock_skew(&self, seconds: i64) {
        self.lock().clock_skew_seconds = seconds;
    }

    /// The gateway's status word for a payment.
    pub fn status_of(&self, id: &str) -> Option<String> {
        self.lock().payments.get(id).map(|p| p.status.clone())
    }

    /// How many payments the gateway holds (idempotent starts do not add one).
    pub fn payment_count(&self) -> usize {
        self.lock().payments.len()
    }

    /// Every callback built so far, in order, with what renkei answered.
    pub fn callbacks(&self) -> Vec<Callback> {
        self.lock().log.clone()
    }

    /// The resident finishes at the gateway. Returns what renkei answered to the callback
    /// (`None` if deferred or dropped), or `None` for an unknown payment.
    pub async fn complete(&self, id: &str, outcome: Outcome) -> Option<u16> {
        let (status, reason) = match outcome {
            Outcome::Authorise => ("authorised", None),
            Outcome::Capture => ("captured", None),
            Outcome::Fail(reason) => ("failed", Some(reason)),
        };
        let callback = set_status(&self.inner, id, status, reason)?;
        deliver(&self.inner, &self.client, callback).await
    }

    /// Callbacks held in [`CallbackMode::Deferred`], in the order they were made.
    pub fn pending(&self) -> Vec<Callback> {
        self.lock().pending.clone()
    }

    /// Sends every deferred callback, in the given order of their event ids (`None`: the
    /// order they were made). Returns renkei's answers.
    pub async fn flush(&self, order: Option<&[&str]>) -> Vec<Option<u16>> {
        let mut pending = std::mem::take(&mut self.lock().pending);
        if let Some(order) = order {
            pending.sort_by_key(|c| order.iter().position(|id| *id == c.event_id));
        }
        let mut answers = Vec::new();
        for callback in pending {
            answers.push(send(&self.inner, &self.client, callback).await);
        }
        answers
    }

    /// Sends the latest callback for a payment again: same event id and body, signed anew
    /// (what a gateway does when it did not see renkei's answer).
    pub async fn redeliver_last(&self, id: &str) -> Option<u16> {
        let last = self
            .lock()
            .log
            .iter()
            .rev()
            .find(|c| c.payment_id == id)
            .cloned()?;
        send(&self.inner, &self.client, last).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("gateway state")
    }
}

#[derive(Clone)]
struct GwState {
    inner: Arc<Mutex<Inner>>,
    client: reqwest::Client,
}

/// Changes a payment's status and builds the callback reporting it.
fn set_status(
    inner: &Mutex<Inner>,
    id: &str,
    status: &str,
    reason: Option<String>,
) -> Option<Callback> {
    let mut g = inner.lock().expect("gateway state");
    let n = g.next;
    g.next += 1;
    let p = g.payments.get_mut(id)?;
    p.status = status.to_owned();
    p.reason = reason.clone();
    let event_id = format!("evt_{n}");
    let mut body = json!({ "event_id": event_id, "payment_id": id, "status": status });
    if let Some(reason) = reason {
        body["reason"] = Value::String(reason);
    }
    Some(Callback {
        url: p.callback_url.clone(),
        body: serde_json::to_vec(&body).expect("json"),
        event_id,
        payment_id: id.to_owned(),
        answered: None,
    })
}

/// Delivers according to the current mode.
async fn deliver(
    inner: &Mutex<Inner>,
    client: &reqwest::Client,
    callback: Callback,
) -> Option<u16> {
    let mode = inner.lock().expect("gateway state").mode;
    match mode {
        CallbackMode::Immediate => send(inner, client, callback).await,
        CallbackMode::Deferred => {
            inner.lock().expect("gateway state").pending.push(callback);
            None
        }
        CallbackMode::Dropped => {
            inner.lock().expect("gateway state").log.push(callback);
            None
        }
    }
}

async fn send(
    inner: &Mutex<Inner>,
    client: &reqwest::Client,
    mut callback: Callback,
) -> Option<u16> {
    let signature = {
        let g = inner.lock().expect("gateway state");
        let t = chrono::Utc::now().timestamp() + g.clock_skew_seconds;
        sign(&g.secret, t, &callback.body)
    };
    let answer = client
        .post(&callback.url)
        .header(SIGNATURE_HEADER, signature)
        .header(header::CONTENT_TYPE, "application/json")
        .body(callback.body.clone())
        .send()
        .await;
    callback.answered = answer.ok().map(|r| r.status().as_u16());
    let answered = callback.answered;
    inner.lock().expect("gateway state").log.push(callback);
    answered
}

fn authorised(g: &Inner, headers: &HeaderMap) -> bool {
    match &g.api_key {
        None => true,
        Some(key) => headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {key}")),
    }
}

fn status_json(id: &str, p: &GwPayment) -> Value {
    let mut v =
        json!({ "id": id, "status": p.status, "amount": p.amount, "reference": p.reference });
    if let Some(reason) = &p.reason {
        v["reason"] = Value::String(reason.clone());
    }
    v
}

#[derive(Deserialize)]
struct CreateBody {
    reference: String,
    amount: u64,
    currency: String,
    #[serde(default)]
    description: String,
    return_url: String,
    callback_url: String,
}

async fn create_payment(
    State(s): State<GwState>,
    headers: HeaderMap,
    Json(body): Json<CreateBody>,
) -> Response {
    let mut g = s.inner.lock().expect("gateway state");
    if !authorised(&g, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if body.currency != "JPY" || body.amount == 0 {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount must be positive JPY",
        )
            .into_response();
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let id = match key.as_ref().and_then(|k| g.by_idempotency_key.get(k)) {
        Some(id) => id.clone(),
        None => {
            let id = format!("gw_{}", g.next);
            g.next += 1;
            g.payments.insert(
                id.clone(),
                GwPayment {
                    reference: body.reference,
                    description: body.description,
                    amount: body.amount,
                    status: "pending".into(),
                    reason: None,
                    return_url: body.return_url,
                    callback_url: body.callback_url,
                },
            );
            if let Some(k) = key {
                g.by_idempotency_key.insert(k, id.clone());
            }
            id
        }
    };
    let redirect_url = format!("{}/pay/{id}", g.base);
    (
        StatusCode::CREATED,
        Json(json!({ "id": id, "redirect_url": redirect_url })),
    )
        .into_response()
}

async fn get_payment(
    State(s): State<GwState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let g = s.inner.lock().expect("gateway state");
    if !authorised(&g, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match g.payments.get(&id) {
        Some(p) => Json(status_json(&id, p)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[derive(Deserialize)]
struct RefundBody {
    amount: u64,
}

async fn refund_payment(
    State(s): State<GwState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<RefundBody>,
) -> Response {
    {
        let g = s.inner.lock().expect("gateway state");
        if !authorised(&g, &headers) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        match g.payments.get(&id) {
            None => return StatusCode::NOT_FOUND.into_response(),
            Some(p) if p.status != "captured" || p.amount != body.amount => {
                return StatusCode::CONFLICT.into_response()
            }
            Some(_) => {}
        }
    }
    if let Some(callback) = set_status(&s.inner, &id, "refunded", None) {
        deliver(&s.inner, &s.client, callback).await;
    }
    let g = s.inner.lock().expect("gateway state");
    match g.payments.get(&id) {
        Some(p) => Json(status_json(&id, p)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn pay_page(State(s): State<GwState>, Path(id): Path<String>) -> Response {
    let g = s.inner.lock().expect("gateway state");
    let Some(p) = g.payments.get(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    Html(format!(
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>テスト決済 / Test payment</title></head>\
         <body><h1>テスト決済 / Test payment</h1><p id=\"description\">{description}</p><p id=\"amount\">{amount}円</p>\
         <form method=\"post\" action=\"/pay/{id}\">\
         <button name=\"outcome\" value=\"capture\">支払う / Pay</button>\
         <button name=\"outcome\" value=\"fail\">カード拒否 / Decline</button>\
         </form></body></html>",
        amount = p.amount,
        description = p.description.replace('&', "&amp;").replace('<', "&lt;"),
    ))
    .into_response()
}

#[derive(Deserialize)]
struct PayForm {
    outcome: String,
}

async fn pay_submit(
    State(s): State<GwState>,
    Path(id): Path<String>,
    Form(form): Form<PayForm>,
) -> Response {
    let (status, reason) = match form.outcome.as_str() {
        "capture" => ("captured", None),
        "authorise" => ("authorised", None),
        "fail" => ("failed", Some("card declined".to_owned())),
        _ => return StatusCode::UNPROCESSABLE_ENTITY.into_response(),
    };
    let Some(callback) = set_status(&s.inner, &id, status, reason) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let return_url = s.inner.lock().expect("gateway state").payments[&id]
        .return_url
        .clone();
    // In Immediate mode the callback is answered before the resident's browser is sent back.
    deliver(&s.inner, &s.client, callback).await;
    Redirect::to(&return_url).into_response()
}
