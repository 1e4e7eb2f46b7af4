//! One procedure end to end through the HTTP API, on SQLite and on PostgreSQL, with the
//! real pieces around it: a payment gateway speaking the generic redirect-and-webhook
//! protocol over HTTP (its callbacks reach renkei on a real port), an SMTP receiver the
//! mails are delivered to, and the applications worker as `renkei serve` runs it.
//!
//! A resident applies for 住民票の写し with an attachment, fixes what validation finds,
//! submits (twice: one application), pays (the callback comes twice), is asked to correct
//! and resubmits; a two-step approval chain decides, its first step by a delegate (代決),
//! while an approver acting on a step that is not theirs is refused; the notice of
//! decision is downloaded and verified at the public URL; every transition is in the
//! history, the audit log and the application's NGSI-LD entity, and the applicant got mail.

mod common;

#[path = "support/test_gateway.rs"]
mod test_gateway;

#[path = "../../notifier/tests/support/smtp_sink.rs"]
mod smtp_sink;

use axum::http::{Method, StatusCode};
use common::{server_on, Backend, Reply, TestServer};
use identity::Role;
use serde_json::{json, Value};
use server::admin::ops;
use server::config::{Config, PaymentConfig};
use sha2::{Digest, Sha256};
use std::time::Duration;
use test_gateway::{Outcome, TestGateway};

const YAIZU: &str = "222127";
const PASSWORD: &str = "焼津の港で朝市を見る職員です";
const SECRET: &[u8] = b"a shared secret between renkei and the gateway";
const API: &str = "/api/v1/procedures";

/// A signed-in person: the session cookie and its CSRF token.
struct Session(Vec<(String, String)>);

async fn sign_in(s: &TestServer, username: &str) -> Session {
    let login = s
        .post(
            "/auth/login",
            json!({"username": username, "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let cookie = login
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = login.body["csrfToken"].as_str().unwrap().to_owned();
    Session(vec![
        ("Cookie".into(), cookie),
        ("X-CSRF-Token".into(), csrf),
    ])
}

async fn call(
    s: &TestServer,
    who: &Session,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let headers: Vec<(&str, &str)> = who
        .0
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    s.send(method, &format!("{API}{path}"), &headers, body)
        .await
}

fn procedure() -> Value {
    let form: Value = serde_json::from_str(include_str!(
        "../../procedures/tests/fixtures/juminhyo_form.json"
    ))
    .unwrap();
    json!({
        "id": "juminhyo",
        "title": {"ja": "住民票の写しの交付申請", "en": "Certificate of residence", "easy": "じゅうみんひょうの もうしこみ"},
        "form": form,
        "fee": {"kind": "computed", "per_unit": [{"field": "/copies", "unit_yen": 300, "max_units": 10}]},
        "payment_timing": "before_review",
        "chain": {"steps": [
            {"name_ja": "課長決裁", "name_en": "Section chief", "kind": "sequential", "approver": {"user": "kacho"}, "due_days": 5},
            {"name_ja": "部長決裁", "name_en": "Director", "kind": "sequential", "approver": {"user": "bucho"}, "due_days": 5}
        ]},
        "retention_days": 1825,
        "applicant_name_field": "/applicant/name",
        "contact_email_field": "/applicant/email",
        "status": "published"
    })
}

fn answers() -> Value {
    json!({
        "applicant": {
            "name": "焼津 太郎", "name_kana": "やいづ たろう", "birth_date": "昭和60年4月1日",
            "postal_code": "〒４２５－００２２", "address": "静岡県焼津市本町二丁目16番32号",
            "phone": "０５４－６２６－１１１１", "email": "taro@example.jp"
        },
        "relationship": "self", "copies": 2, "purpose": "employment", "delivery": "counter"
    })
}

/// A tiny but real PDF (what the form's attachment wants).
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";

async fn attach(s: &TestServer, who: &Session, id: &str, name: &str, content: &[u8]) -> Reply {
    let boundary = "renkei-test-boundary";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"requirement\"\r\n\r\nidentity_document\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/pdf\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut request = axum::http::Request::builder()
        .method(Method::POST)
        .uri(format!("{API}/applications/{id}/attachments"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        );
    for (name, value) in &who.0 {
        request = request.header(name, value);
    }
    s.send_request(request.body(axum::body::Body::from(body)).unwrap())
        .await
}

/// renkei on a real port (the gateway's callbacks must reach it), with the gateway
/// and the SMTP receiver configured, the worker running, and the people of the test.
async fn world(
    backend: Backend,
) -> (
    TestServer,
    TestGateway,
    smtp_sink::SmtpSink,
    tokio::task::JoinHandle<()>,
) {
    let gateway = TestGateway::start(SECRET, None).await;
    let sink = smtp_sink::SmtpSink::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = Config::default();
    config.rate_limits.writes_per_second = 0;
    config.public_url = format!("http://{}", listener.local_addr().unwrap());
    config.payment = Some(PaymentConfig {
        base_url: gateway.base_url(),
        secret: String::from_utf8(SECRET.to_vec()).unwrap(),
    });
    config.smtp = Some(notifier::smtp::SmtpConfig::local(
        sink.port(),
        "焼津市 <noreply@city.yaizu.example.jp>",
    ));
    config.applications_tick = Duration::from_millis(50);
    let s = server_on(backend, config).await;
    let served = server::service(s.state.clone());
    let serving = tokio::spawn(async move {
        axum::serve(
            listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                std::net::SocketAddr,
            >(served),
        )
        .await
        .unwrap();
    });
    let users = [
        ("admin", Role::TenantAdmin),
        ("taro", Role::Resident),
        ("hanako", Role::Reviewer),
        ("kacho", Role::Approver),
        ("kakaricho", Role::Approver),
        ("bucho", Role::Approver),
    ];
    common::tenant_with_users(&s.state.identity, YAIZU, &users, PASSWORD).await;
    (s, gateway, sink, serving)
}

/// Waits (a bounded while) until `done` holds; the worker runs every 50 ms.
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen");
}

async fn one_procedure_end_to_end(backend: Backend) {
    let (s, gateway, sink, _serving) = world(backend).await;
    let _worker = server::applications::worker::start(&s.state).unwrap();
    let admin = sign_in(&s, "admin").await;
    let taro = sign_in(&s, "taro").await;
    let hanako = sign_in(&s, "hanako").await;
    let kacho = sign_in(&s, "kacho").await;
    let kakaricho = sign_in(&s, "kakaricho").await;
    let bucho = sign_in(&s, "bucho").await;
    let tenant = format!("/tenants/{YAIZU}");

    // The tenant administrator defines the procedure; a resident may not.
    let refused = call(
        &s,
        &taro,
        Method::POST,
        &format!("{tenant}/procedures"),
        Some(procedure()),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let defined = call(
        &s,
        &admin,
        Method::POST,
        &format!("{tenant}/procedures"),
        Some(procedure()),
    )
    .await;
    assert_eq!(defined.status, StatusCode::CREATED, "{}", defined.body);
    assert_eq!(defined.body["version"], 1);

    // A start repeated with the same idempotency key is one draft.
    let start = |key: &'static str| {
        let headers: Vec<(String, String)> = taro
            .0
            .iter()
            .cloned()
            .chain([("Idempotency-Key".to_owned(), key.to_owned())])
            .collect();
        let s = &s;
        async move {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            s.send(
                Method::POST,
                &format!("{API}/tenants/{YAIZU}/procedures/juminhyo/applications"),
                &headers,
                Some(json!({"answers": {"copies": 2}})),
            )
            .await
        }
    };
    let first = start("double-click-1").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let second = start("double-click-1").await;
    let id = first.body["application"]["id"].as_str().unwrap().to_owned();
    assert_eq!(second.body["application"]["id"], id.as_str());
    assert!(first.body["resume_url"]
        .as_str()
        .unwrap()
        .contains("/resume?token="));
    assert!(
        second.body["resume_url"].is_null(),
        "the token is shown once"
    );
    let app = format!("/applications/{id}");

    // Submitting the incomplete draft is refused field by field; the answers stay.
    let incomplete = call(&s, &taro, Method::POST, &format!("{app}/submit"), None).await;
    assert_eq!(
        incomplete.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        incomplete.body
    );
    let pointers: Vec<&str> = incomplete.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["pointer"].as_str())
        .collect();
    assert!(pointers.contains(&"/applicant"), "{pointers:?}");
    assert!(
        pointers.contains(&"/attachments/identity_document"),
        "{pointers:?}"
    );
    assert!(incomplete.body["errors"][0]["message_ja"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    let kept = call(&s, &taro, Method::GET, &app, None).await;
    assert_eq!(kept.body["answers"]["copies"], 2, "{}", kept.body);
    assert_eq!(kept.body["state"], "draft");

    // The resume link opens the draft for its applicant only.
    let token = first.body["resume_url"]
        .as_str()
        .unwrap()
        .split("token=")
        .nth(1)
        .unwrap()
        .to_owned();
    let resumed = call(
        &s,
        &taro,
        Method::GET,
        &format!("{app}/resume?token={token}"),
        None,
    )
    .await;
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.body);
    let stranger = call(
        &s,
        &hanako,
        Method::GET,
        &format!("{app}/resume?token={token}"),
        None,
    )
    .await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND);

    // A program renamed to .pdf is refused by its content; a real PDF is accepted.
    let renamed = attach(
        &s,
        &taro,
        &id,
        "免許証.pdf",
        b"MZ\x90\x00\x03\x00\x00\x00 not a pdf",
    )
    .await;
    assert_eq!(
        renamed.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        renamed.body
    );
    let attached = attach(&s, &taro, &id, "免許証.pdf", PDF).await;
    assert_eq!(attached.status, StatusCode::CREATED, "{}", attached.body);

    // Complete answers, then submit twice: one submission, one 受付番号.
    let saved = call(
        &s,
        &taro,
        Method::PUT,
        &format!("{app}/answers"),
        Some(json!({"answers": answers()})),
    )
    .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert_eq!(saved.body["errors"], json!([]));
    let submitted = call(&s, &taro, Method::POST, &format!("{app}/submit"), None).await;
    assert_eq!(submitted.status, StatusCode::OK, "{}", submitted.body);
    let again = call(&s, &taro, Method::POST, &format!("{app}/submit"), None).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let reception = submitted.body["reception_number"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(reception.starts_with("222127-"), "{reception}");
    assert_eq!(again.body["reception_number"], reception.as_str());
    assert_eq!(submitted.body["state"], "submitted");
    assert_eq!(submitted.body["fee_yen"], 600);
    // Normalised on the server: kana, postal code and wareki date.
    assert_eq!(
        submitted.body["answers"]["applicant"]["name_kana"],
        "ヤイヅ\u{3000}タロウ"
    );
    assert_eq!(
        submitted.body["answers"]["applicant"]["postal_code"],
        "425-0022"
    );
    assert_eq!(
        submitted.body["answers"]["applicant"]["birth_date"],
        "1985-04-01"
    );

    // Unpaid, it cannot be received.
    let unpaid = call(
        &s,
        &hanako,
        Method::POST,
        &format!("{app}/commands"),
        Some(json!({"command": "receive"})),
    )
    .await;
    assert_eq!(unpaid.status, StatusCode::CONFLICT, "{}", unpaid.body);

    // Pay at the gateway: its callback (sent twice) settles the fee once, and the paid
    // application is received by the system.
    let pay = call(&s, &taro, Method::POST, &format!("{app}/payment"), None).await;
    assert_eq!(pay.status, StatusCode::CREATED, "{}", pay.body);
    assert_eq!(pay.body["amount_yen"], 600);
    let gateway_id = pay.body["redirect_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        gateway.complete(&gateway_id, Outcome::Capture).await,
        Some(204)
    );
    assert_eq!(gateway.redeliver_last(&gateway_id).await, Some(204));
    let paid = call(&s, &taro, Method::GET, &app, None).await;
    assert_eq!(paid.body["payment_settled"], true, "{}", paid.body);
    assert_eq!(paid.body["state"], "received");
    let back = s
        .get(&format!(
            "{API}/payments/{}/return",
            pay.body["payment_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(back.body["status"], "paid", "{}", back.body);

    // Review, a return for correction, and the resubmission.
    for command in [
        json!({"command": "start_review"}),
        json!({"command": "return_for_correction", "reasons": ["本人確認書類が不鮮明です。撮り直してください。"]}),
    ] {
        let done = call(
            &s,
            &hanako,
            Method::POST,
            &format!("{app}/commands"),
            Some(command),
        )
        .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    }
    let returned = call(&s, &taro, Method::GET, &app, None).await;
    assert_eq!(returned.body["state"], "returned");
    assert_eq!(
        returned.body["return_reasons"][0],
        "本人確認書類が不鮮明です。撮り直してください。"
    );
    let clearer = attach(&s, &taro, &id, "免許証-2.pdf", PDF).await;
    assert_eq!(clearer.status, StatusCode::CREATED, "{}", clearer.body);
    let resubmitted = call(&s, &taro, Method::POST, &format!("{app}/submit"), None).await;
    assert_eq!(
        resubmitted.body["state"], "submitted",
        "{}",
        resubmitted.body
    );
    assert_eq!(resubmitted.body["reception_number"], reception.as_str());
    for command in ["receive", "start_review"] {
        let done = call(
            &s,
            &hanako,
            Method::POST,
            &format!("{app}/commands"),
            Some(json!({"command": command})),
        )
        .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    }

    // The chain: bucho may not decide kacho's step; kacho is away and kakaricho decides
    // for him (代決); a reviewer cannot decide at all; bucho approves the second step.
    let approve = json!({"command": "decide", "decision": "approve"});
    let not_his = call(
        &s,
        &bucho,
        Method::POST,
        &format!("{app}/commands"),
        Some(approve.clone()),
    )
    .await;
    assert_eq!(not_his.status, StatusCode::FORBIDDEN, "{}", not_his.body);
    assert_eq!(not_his.body["type"], "urn:renkei:problem:not-your-step");
    let not_yet = call(
        &s,
        &kakaricho,
        Method::POST,
        &format!("{app}/commands"),
        Some(approve.clone()),
    )
    .await;
    assert_eq!(
        not_yet.status,
        StatusCode::FORBIDDEN,
        "without a delegation: {}",
        not_yet.body
    );
    let now = chrono::Utc::now();
    let delegation = json!({"principal": "kacho", "delegate": "kakaricho", "from": now - chrono::Duration::hours(1), "until": now + chrono::Duration::days(3)});
    let delegated = call(
        &s,
        &kacho,
        Method::POST,
        &format!("{tenant}/delegations"),
        Some(delegation),
    )
    .await;
    assert_eq!(delegated.status, StatusCode::CREATED, "{}", delegated.body);
    let reviewer = call(
        &s,
        &hanako,
        Method::POST,
        &format!("{app}/commands"),
        Some(approve.clone()),
    )
    .await;
    assert_eq!(reviewer.status, StatusCode::FORBIDDEN, "{}", reviewer.body);
    let step_one = call(
        &s,
        &kakaricho,
        Method::POST,
        &format!("{app}/commands"),
        Some(approve.clone()),
    )
    .await;
    assert_eq!(step_one.status, StatusCode::OK, "{}", step_one.body);
    assert_eq!(step_one.body["state"], "in_review");
    assert_eq!(
        step_one.body["chain"]["decisions"][0]["on_behalf_of"],
        "kacho"
    );
    let step_two = call(
        &s,
        &bucho,
        Method::POST,
        &format!("{app}/commands"),
        Some(approve),
    )
    .await;
    assert_eq!(step_two.status, StatusCode::OK, "{}", step_two.body);
    assert_eq!(step_two.body["state"], "approved");

    // Attachments are fixed once approved.
    let late = attach(&s, &taro, &id, "追加.pdf", PDF).await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.body);

    // The notice of decision: a PDF whose digest the public verification URL confirms.
    let headers: Vec<(&str, &str)> = taro
        .0
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let request = {
        let mut r = axum::http::Request::builder().uri(format!("{API}{app}/documents/decision"));
        for (n, v) in &headers {
            r = r.header(*n, *v);
        }
        r.body(axum::body::Body::empty()).unwrap()
    };
    let response = tower::ServiceExt::oneshot(server::service(s.state.clone()), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let pdf = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert!(pdf.starts_with(b"%PDF-"));
    let digest: String = Sha256::digest(&pdf)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let shown = call(&s, &taro, Method::GET, &app, None).await;
    let code = shown.body["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "decision")
        .unwrap()["verification_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let verified = s
        .get(&format!(
            "{API}/verify/{}",
            code.to_lowercase().replace('-', "")
        ))
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    assert_eq!(verified.body["sha256"], digest.as_str());
    assert_eq!(verified.body["reception_number"], reception.as_str());
    assert_eq!(verified.body["issuer"]["name"], "焼津市");
    assert_eq!(
        s.get(&format!("{API}/verify/0000-0000-0000-0000"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let completed = call(
        &s,
        &hanako,
        Method::POST,
        &format!("{app}/commands"),
        Some(json!({"command": "complete"})),
    )
    .await;
    assert_eq!(completed.body["state"], "completed", "{}", completed.body);

    // Every transition is in the history, in order.
    let history = call(&s, &taro, Method::GET, &format!("{app}/history"), None).await;
    let moves: Vec<(&str, &str)> = history
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["command"].as_str().unwrap(), h["to"].as_str().unwrap()))
        .collect();
    assert_eq!(
        moves,
        [
            ("submit", "submitted"),
            ("receive", "received"),
            ("start_review", "in_review"),
            ("return_for_correction", "returned"),
            ("resubmit", "submitted"),
            ("receive", "received"),
            ("start_review", "in_review"),
            ("approve", "approved"),
            ("complete", "completed"),
        ]
    );

    // The applicant takes away everything kept about them.
    let export = call(&s, &taro, Method::GET, "/applications/mine/export", None).await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.body);
    assert_eq!(
        export.body["applications"][0]["application"]["id"],
        id.as_str()
    );
    assert_eq!(
        export.body["applications"][0]["history"]
            .as_array()
            .map(Vec::len),
        Some(9)
    );
    assert_eq!(
        export.body["applications"][0]["application"]["answers"]["applicant"]["name"],
        "焼津 太郎"
    );
    let others = call(&s, &hanako, Method::GET, "/applications/mine/export", None).await;
    assert_eq!(
        others.body["applications"],
        json!([]),
        "a reviewer has no applications of their own"
    );

    // The decisions are in the audit log, whose chain verifies.
    let report = ops::verify_audit(s.state.identity.store().as_ref())
        .await
        .unwrap();
    assert!(report.intact, "{:?}", report.problem);
    let filter = identity::audit::AuditFilter {
        action: Some("application.command".into()),
        target: Some(format!("application:{id}")),
        limit: 100,
        ..Default::default()
    };
    let decisions: Vec<String> = s
        .state
        .identity
        .store()
        .search_audit(&filter)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.event.detail["command"]["command"] == "decide")
        .map(|r| r.event.detail["by"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        decisions,
        ["bucho", "kakaricho"],
        "newest first; refused attempts are not decisions"
    );

    // The worker delivers: the applicant's mail and the application's entity.
    eventually("mail delivery", || async { sink.received().len() >= 9 }).await;
    let mails = sink.received();
    assert!(mails
        .iter()
        .all(|m| m.rcpt_to.iter().any(|r| r.contains("taro@example.jp"))));
    let parsed = mail_parser::MessageParser::default()
        .parse(&mails[0].data)
        .unwrap();
    assert!(
        parsed.subject().unwrap().contains("住民票の写しの交付申請"),
        "{:?}",
        parsed.subject()
    );
    assert!(parsed.body_text(0).unwrap().contains(&reception));
    let entity_path = format!("/ngsi-ld/v1/entities/urn:ngsi-ld:Application:{id}");
    let admin_headers: Vec<(&str, &str)> = admin
        .0
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .chain([("NGSILD-Tenant", YAIZU)])
        .collect();
    eventually("the entity reaching completed", || {
        let (s, entity_path, admin_headers) = (&s, &entity_path, &admin_headers);
        async move {
            let entity = s.send(Method::GET, entity_path, admin_headers, None).await;
            entity.body.to_string().contains("completed")
        }
    })
    .await;
}

#[tokio::test]
async fn one_procedure_end_to_end_on_sqlite() {
    one_procedure_end_to_end(Backend::Sqlite).await;
}

#[tokio::test]
async fn one_procedure_end_to_end_on_postgres() {
    one_procedure_end_to_end(Backend::Postgres).await;
}
