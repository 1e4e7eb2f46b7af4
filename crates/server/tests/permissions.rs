//! The permission matrix of the identity issue: every endpoint × every role × own and
//! other tenant, each expected to be allowed or denied, on both storage backends. The
//! expectations are written out here by hand, independently of the policy table in
//! `identity::policy`, so a change of the table that breaks a promise fails this test.
//!
//! Roles: anonymous; the platform administrator (signed in with a password, so the
//! session cookie and CSRF path is exercised); the tenant administrator, publisher,
//! reviewer, approver and resident of 焼津市 (222127), each by an API key; and a
//! publisher of 静岡県 (220001), whose municipality 焼津市 shares its data with the
//! prefecture while 浜松市 (221309) does not. "Own" is 焼津市, "other" is 浜松市.

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use identity::{Principal, Role};
use serde_json::{json, Value};
use server::admin::ops::{self, KeyRequest, TenantChange};
use std::sync::atomic::{AtomicUsize, Ordering};

const OWN: &str = "222127";
const OTHER: &str = "221309";
const PREFECTURE: &str = "220001";
const ROLES: [&str; 8] = [
    "anonymous",
    "platform_admin",
    "tenant_admin",
    "publisher",
    "reviewer",
    "approver",
    "resident",
    "prefecture_staff",
];
/// Codes the platform administrator registers, one per allowed `tenant.create`.
const SPARE_CODES: [&str; 4] = ["221007", "222038", "222054", "222062"];

fn private_id(tenant: &str) -> String {
    format!("urn:ngsi-ld:WelfareCase:{tenant}-1")
}

/// How one role sends requests.
struct Credentials {
    headers: Vec<(String, String)>,
}

impl Credentials {
    fn with_tenant(&self, tenant: &str) -> Vec<(String, String)> {
        let mut headers = self.headers.clone();
        headers.push(("NGSILD-Tenant".into(), tenant.into()));
        headers
    }
}

struct World {
    server: TestServer,
    roles: Vec<Credentials>,
    counter: AtomicUsize,
}

async fn key(s: &TestServer, tenant: &str, role: Role) -> Credentials {
    let request = KeyRequest {
        tenant: tenant.into(),
        role,
        scopes: None,
        label: "matrix".into(),
        expires_in_days: None,
    };
    let (_, token) = ops::create_key(&s.state.identity, &Principal::Operator, request)
        .await
        .unwrap();
    Credentials {
        headers: vec![("Authorization".into(), format!("Bearer {token}"))],
    }
}

async fn world(backend: Backend) -> World {
    let s = secured_server(backend).await;
    let identity = &s.state.identity;
    for code in [PREFECTURE, OWN, OTHER] {
        ops::create_tenant(identity, &Principal::Operator, code)
            .await
            .unwrap();
    }
    let change = TenantChange {
        shared_with_prefecture: Some(true),
        ..Default::default()
    };
    ops::update_tenant(identity, &Principal::Operator, OWN, change)
        .await
        .unwrap();
    ops::create_platform_admin(
        identity,
        "matrix-admin",
        "Matrix Admin",
        "富士山の見える朝の試験用パスワード",
    )
    .await
    .unwrap();
    let login = s
        .post(
            "/auth/login",
            json!({"username": "matrix-admin", "password": "富士山の見える朝の試験用パスワード"}),
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
    let platform_admin = Credentials {
        headers: vec![("Cookie".into(), cookie), ("X-CSRF-Token".into(), csrf)],
    };

    let mut roles = vec![Credentials { headers: vec![] }, platform_admin];
    for role in [
        Role::TenantAdmin,
        Role::Publisher,
        Role::Reviewer,
        Role::Approver,
        Role::Resident,
    ] {
        roles.push(key(&s, OWN, role).await);
    }
    roles.push(key(&s, PREFECTURE, Role::Publisher).await);

    // A private entity in each municipality, written by its own publisher.
    for tenant in [OWN, OTHER] {
        let publisher = key(&s, tenant, Role::Publisher).await;
        let entity = json!({"id": private_id(tenant), "type": "WelfareCase", "status": {"type": "Property", "value": "open"}});
        let reply = send(
            &s,
            &publisher.with_tenant(tenant),
            Method::POST,
            "/ngsi-ld/v1/entities",
            Some(entity),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    World {
        server: s,
        roles,
        counter: AtomicUsize::new(0),
    }
}

async fn send(
    s: &TestServer,
    headers: &[(String, String)],
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    s.send(method, path, &headers, body).await
}

/// Allowed or denied, read off an answer. A denied write is 401 (anonymous) or 403;
/// a denied read looks like nothing is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Allowed,
    Denied,
}
use Outcome::{Allowed as Y, Denied as N};

fn refused(reply: &Reply) -> bool {
    matches!(
        reply.status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
    )
}

fn write_outcome(reply: &Reply) -> Outcome {
    if refused(reply) {
        N
    } else {
        assert!(
            reply.status.is_success() || reply.status == StatusCode::NOT_FOUND,
            "unexpected {} {}",
            reply.status,
            reply.body
        );
        Y
    }
}

fn lists_private(reply: &Reply) -> Outcome {
    assert!(
        !reply.status.is_server_error(),
        "{} {}",
        reply.status,
        reply.body
    );
    if reply.body.to_string().contains("WelfareCase") {
        Y
    } else {
        assert!(
            reply.status == StatusCode::OK || refused(reply),
            "{} {}",
            reply.status,
            reply.body
        );
        N
    }
}

/// One endpoint, asked of `tenant` with `headers`.
async fn call(w: &World, endpoint: &str, tenant: &str, credentials: &Credentials) -> Outcome {
    let s = &w.server;
    let n = w.counter.fetch_add(1, Ordering::SeqCst);
    let ngsi = credentials.with_tenant(tenant);
    let plain = &credentials.headers;
    match endpoint {
        "entity.retrieve" => {
            let reply = send(
                s,
                &ngsi,
                Method::GET,
                &format!("{NGSI}/entities/{}", private_id(tenant)),
                None,
            )
            .await;
            match reply.status {
                StatusCode::OK => Y,
                StatusCode::NOT_FOUND => N,
                other => panic!("retrieve answered {other}: {}", reply.body),
            }
        }
        "entity.query" => lists_private(
            &send(
                s,
                &ngsi,
                Method::GET,
                &format!("{NGSI}/entities?type=WelfareCase"),
                None,
            )
            .await,
        ),
        "entity.create" => {
            let entity =
                json!({"id": format!("urn:ngsi-ld:WelfareCase:new-{n}"), "type": "WelfareCase"});
            write_outcome(
                &send(
                    s,
                    &ngsi,
                    Method::POST,
                    &format!("{NGSI}/entities"),
                    Some(entity),
                )
                .await,
            )
        }
        "entity.update" => {
            let patch = json!({"status": {"type": "Property", "value": format!("step-{n}")}});
            write_outcome(
                &send(
                    s,
                    &ngsi,
                    Method::PATCH,
                    &format!("{NGSI}/entities/{}/attrs", private_id(tenant)),
                    Some(patch),
                )
                .await,
            )
        }
        "entity.delete" => write_outcome(
            &send(
                s,
                &ngsi,
                Method::DELETE,
                &format!("{NGSI}/entities/urn:ngsi-ld:WelfareCase:absent-{n}"),
                None,
            )
            .await,
        ),
        "batch.upsert" => {
            let entities = json!([{"id": format!("urn:ngsi-ld:WelfareCase:batch-{n}"), "type": "WelfareCase"}]);
            write_outcome(
                &send(
                    s,
                    &ngsi,
                    Method::POST,
                    &format!("{NGSI}/entityOperations/upsert"),
                    Some(entities),
                )
                .await,
            )
        }
        "batch.query" => lists_private(
            &send(
                s,
                &ngsi,
                Method::POST,
                &format!("{NGSI}/entityOperations/query"),
                Some(json!({"type": "Query", "entities": [{"type": "WelfareCase"}]})),
            )
            .await,
        ),
        "types" => {
            lists_private(&send(s, &ngsi, Method::GET, &format!("{NGSI}/types"), None).await)
        }
        "context.add" => {
            let context = json!({"@context": {"term": format!("https://example.org/term-{n}")}});
            write_outcome(
                &send(
                    s,
                    plain,
                    Method::POST,
                    &format!("{NGSI}/jsonldContexts"),
                    Some(context),
                )
                .await,
            )
        }
        "subscription.create" => {
            let subscription = json!({
                "type": "Subscription",
                "entities": [{"type": "WelfareCase"}],
                "notification": {"endpoint": {"uri": format!("http://127.0.0.1:9/n{n}")}}
            });
            write_outcome(
                &send(
                    s,
                    &ngsi,
                    Method::POST,
                    &format!("{NGSI}/subscriptions"),
                    Some(subscription),
                )
                .await,
            )
        }
        "tenant.show" => write_outcome(
            &send(
                s,
                plain,
                Method::GET,
                &format!("/admin/v1/tenants/{tenant}"),
                None,
            )
            .await,
        ),
        "tenant.configure" => {
            let shared = tenant == OWN;
            write_outcome(
                &send(
                    s,
                    plain,
                    Method::PATCH,
                    &format!("/admin/v1/tenants/{tenant}"),
                    Some(json!({"sharedWithPrefecture": shared})),
                )
                .await,
            )
        }
        "tenant.resume" => write_outcome(
            &send(
                s,
                plain,
                Method::PATCH,
                &format!("/admin/v1/tenants/{tenant}"),
                Some(json!({"suspended": false})),
            )
            .await,
        ),
        "tenant.create" => {
            let used = w.counter.load(Ordering::SeqCst);
            let code = SPARE_CODES[used % SPARE_CODES.len()];
            let reply = send(
                s,
                plain,
                Method::POST,
                "/admin/v1/tenants",
                Some(json!({"code": code})),
            )
            .await;
            // A code registered by an earlier allowed call is a conflict, still allowed.
            if reply.status == StatusCode::CONFLICT {
                Y
            } else {
                write_outcome(&reply)
            }
        }
        "key.create" => write_outcome(
            &send(
                s,
                plain,
                Method::POST,
                &format!("/admin/v1/tenants/{tenant}/keys"),
                Some(json!({"role": "publisher", "label": "matrix"})),
            )
            .await,
        ),
        "key.list" => write_outcome(
            &send(
                s,
                plain,
                Method::GET,
                &format!("/admin/v1/tenants/{tenant}/keys"),
                None,
            )
            .await,
        ),
        "user.create" => {
            let user = json!({"username": format!("user-{n}"), "displayName": "職員", "roles": ["reviewer"]});
            write_outcome(
                &send(
                    s,
                    plain,
                    Method::POST,
                    &format!("/admin/v1/tenants/{tenant}/users"),
                    Some(user),
                )
                .await,
            )
        }
        "audit.search" => write_outcome(
            &send(
                s,
                plain,
                Method::GET,
                &format!("/admin/v1/audit?tenant={tenant}"),
                None,
            )
            .await,
        ),
        other => panic!("no endpoint {other}"),
    }
}

/// What each role may do: one row per endpoint, the columns in [`ROLES`] order
/// (anonymous, platform admin, tenant admin, publisher, reviewer, approver, resident,
/// prefecture staff); first in the own tenant 焼津市, then in the other, 浜松市.
/// `None`: the endpoint acts on the platform, not on a tenant.
/// An endpoint, its outcomes by role in the own tenant, and in the other (if any).
type Row = (&'static str, [Outcome; 8], Option<[Outcome; 8]>);

#[rustfmt::skip]
const MATRIX: &[Row] = &[
    //                  anon padm tadm pub rev appr res pref          anon padm tadm pub rev appr res pref
    ("entity.retrieve",  [N, Y, Y, Y, Y, Y, N, Y], Some([N, Y, N, N, N, N, N, N])),
    ("entity.query",     [N, Y, Y, Y, Y, Y, N, Y], Some([N, Y, N, N, N, N, N, N])),
    ("batch.query",      [N, Y, Y, Y, Y, Y, N, Y], Some([N, Y, N, N, N, N, N, N])),
    ("types",            [N, Y, Y, Y, Y, Y, N, Y], Some([N, Y, N, N, N, N, N, N])),
    ("entity.create",    [N, Y, Y, Y, N, N, N, N], Some([N, Y, N, N, N, N, N, N])),
    ("entity.update",    [N, Y, Y, Y, N, N, N, N], Some([N, Y, N, N, N, N, N, N])),
    ("entity.delete",    [N, Y, Y, Y, N, N, N, N], Some([N, Y, N, N, N, N, N, N])),
    ("batch.upsert",     [N, Y, Y, Y, N, N, N, N], Some([N, Y, N, N, N, N, N, N])),
    ("subscription.create", [N, Y, Y, Y, Y, Y, N, N], Some([N, Y, N, N, N, N, N, N])),
    ("tenant.show",      [N, Y, Y, N, N, N, N, N], Some([N, Y, N, N, N, N, N, N])),
    ("tenant.configure", [N, Y, Y, N, N, N, N, N], Some([N, Y, N, N, N, N, N, N])),
    ("key.create",       [N, Y, Y, N, N, N, N, N], Some([N, Y, N, N, N, N, N, N])),
    ("key.list",         [N, Y, Y, N, N, N, N, N], Some([N, Y, N, N, N, N, N, N])),
    ("user.create",      [N, Y, Y, N, N, N, N, N], Some([N, Y, N, N, N, N, N, N])),
    ("audit.search",     [N, Y, Y, N, N, N, N, N], Some([N, Y, N, N, N, N, N, N])),
    ("tenant.resume",    [N, Y, N, N, N, N, N, N], Some([N, Y, N, N, N, N, N, N])),
    ("tenant.create",    [N, Y, N, N, N, N, N, N], None),
    ("context.add",      [N, Y, Y, Y, N, N, N, Y], None),
];

async fn walk_the_matrix(backend: Backend) {
    let w = world(backend).await;
    let mut mismatches = Vec::new();
    let mut cells = 0;
    for (endpoint, own, other) in MATRIX {
        for (tenant, expected) in [(OWN, Some(own)), (OTHER, other.as_ref())] {
            let Some(expected) = expected else { continue };
            for (role, credentials) in ROLES.iter().zip(&w.roles) {
                let index = ROLES.iter().position(|r| r == role).unwrap();
                let got = call(&w, endpoint, tenant, credentials).await;
                cells += 1;
                if got != expected[index] {
                    mismatches.push(format!(
                        "{endpoint} in {tenant} as {role}: expected {:?}, got {got:?}",
                        expected[index]
                    ));
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {cells} cells differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert_eq!(cells, 8 * (16 * 2 + 2));
}

#[tokio::test]
async fn every_endpoint_role_and_tenant_is_allowed_or_denied_as_promised_on_sqlite() {
    walk_the_matrix(Backend::Sqlite).await;
}

#[tokio::test]
async fn every_endpoint_role_and_tenant_is_allowed_or_denied_as_promised_on_postgres() {
    walk_the_matrix(Backend::Postgres).await;
}

/// The matrix's denials are the right refusals: 401 for nobody, 403 for a known caller.
#[tokio::test]
async fn anonymous_writes_are_401_and_foreign_writes_403() {
    let w = world(Backend::Sqlite).await;
    let entity = json!({"id": "urn:ngsi-ld:WelfareCase:x", "type": "WelfareCase"});
    let anonymous = send(
        &w.server,
        &w.roles[0].with_tenant(OWN),
        Method::POST,
        &format!("{NGSI}/entities"),
        Some(entity.clone()),
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(anonymous.header("www-authenticate").is_some());
    let foreign = send(
        &w.server,
        &w.roles[3].with_tenant(OTHER),
        Method::POST,
        &format!("{NGSI}/entities"),
        Some(entity),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert_eq!(foreign.problem_type(), "urn:renkei:problem:Forbidden");
}

/// `RENKEI_ALLOW_ANONYMOUS_WRITES` opens the broker of every tenant, and nothing else.
#[tokio::test]
async fn anonymous_writes_mode_opens_the_broker_only() {
    let config = server::config::Config {
        allow_anonymous_writes: true,
        ..Default::default()
    };
    let s = server_on(Backend::Sqlite, config).await;
    let entity = json!({"id": "urn:ngsi-ld:Sensor:1", "type": "Sensor"});
    let created = s
        .send(
            Method::POST,
            &format!("{NGSI}/entities"),
            &[("NGSILD-Tenant", "any-tenant")],
            Some(entity),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let admin = s.post("/admin/v1/tenants", json!({"code": OWN})).await;
    assert_eq!(admin.status, StatusCode::UNAUTHORIZED);
}

/// A tenant administrator grants a role through the API; the user's next request
/// acts with it, and with it taken away the private data is hidden again. Each
/// change is in the audit log.
#[tokio::test]
async fn roles_granted_and_revoked_through_the_api_take_effect_at_once() {
    let w = world(Backend::Sqlite).await;
    let s = &w.server;
    let tenant_admin = &w.roles[2];
    let password = "焼津の港で朝市を見る職員です";
    let user = json!({"username": "suzuki", "displayName": "鈴木", "password": password});
    let created = send(
        s,
        &tenant_admin.headers,
        Method::POST,
        &format!("/admin/v1/tenants/{OWN}/users"),
        Some(user),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let login = s
        .post(
            "/auth/login",
            json!({"username": "suzuki", "password": password}),
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
    let suzuki = Credentials {
        headers: vec![("Cookie".into(), cookie)],
    };
    assert_eq!(call(&w, "entity.retrieve", OWN, &suzuki).await, N);

    let grant = json!({"username": "suzuki", "role": "reviewer"});
    let granted = send(
        s,
        &tenant_admin.headers,
        Method::POST,
        &format!("/admin/v1/tenants/{OWN}/grants"),
        Some(grant.clone()),
    )
    .await;
    assert_eq!(granted.status, StatusCode::NO_CONTENT, "{}", granted.body);
    assert_eq!(call(&w, "entity.retrieve", OWN, &suzuki).await, Y);
    // A reviewer of 焼津市 is still nobody in 浜松市.
    assert_eq!(call(&w, "entity.retrieve", OTHER, &suzuki).await, N);

    let revoked = send(
        s,
        &tenant_admin.headers,
        Method::DELETE,
        &format!("/admin/v1/tenants/{OWN}/grants"),
        Some(grant),
    )
    .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    assert_eq!(call(&w, "entity.retrieve", OWN, &suzuki).await, N);

    let audit = send(
        s,
        &tenant_admin.headers,
        Method::GET,
        &format!("/admin/v1/audit?tenant={OWN}&action=role.revoke"),
        None,
    )
    .await;
    assert_eq!(audit.status, StatusCode::OK);
    assert_eq!(
        audit.body.as_array().map(Vec::len),
        Some(1),
        "{}",
        audit.body
    );
    assert_eq!(audit.body[0]["event"]["detail"]["role"], "reviewer");
}
