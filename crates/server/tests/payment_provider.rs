//! GenericRedirectProvider against a real HTTP test gateway (tests/support/test_gateway.rs),
//! with a small stand-in for renkei's callback endpoint that does what the server's handler
//! will do: verify, find the payment by provider reference, apply.

#[path = "support/test_gateway.rs"]
mod test_gateway;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::{Duration, Utc};

use procedures::payment::{
    reconcile, CallbackError, GenericRedirectConfig, GenericRedirectProvider, Payment,
    PaymentEvent, PaymentProvider, PaymentState, ProviderError, ProviderStatus, ResidentView,
    StartRequest, Transition,
};
use test_gateway::{CallbackMode, Outcome, TestGateway};

const SECRET: &[u8] = b"whsec_integration";
const API_KEY: &str = "sk_test_renkei";

/// What the stand-in callback endpoint did with each delivery.
#[derive(Debug, Clone, PartialEq)]
enum Handled {
    Applied(Transition),
    Refused(String),
    Unverified(CallbackError),
    UnknownPayment,
}

#[derive(Clone)]
struct Renkei {
    provider: Arc<GenericRedirectProvider>,
    payments: Arc<Mutex<HashMap<String, Payment>>>,
    handled: Arc<Mutex<Vec<Handled>>>,
}

impl Renkei {
    fn payment(&self, id: &str) -> Payment {
        self.payments.lock().unwrap()[id].clone()
    }

    fn handled(&self) -> Vec<Handled> {
        self.handled.lock().unwrap().clone()
    }

    fn apply(&self, id: &str, event: &PaymentEvent) -> Transition {
        let mut payments = self.payments.lock().unwrap();
        payments
            .get_mut(id)
            .unwrap()
            .apply(None, event, Utc::now())
            .unwrap()
    }

    /// Creates a payment and starts it at the provider, as the apply flow would.
    async fn start_payment(&self, id: &str, amount_yen: u64, callback_url: &str) -> String {
        let payment = Payment::new(
            id,
            format!("app-{id}"),
            amount_yen,
            self.provider.name(),
            Utc::now(),
            Duration::minutes(30),
        );
        self.payments.lock().unwrap().insert(id.to_owned(), payment);
        let started = self
            .provider
            .start(&request(id, amount_yen, callback_url))
            .await
            .unwrap();
        self.payments
            .lock()
            .unwrap()
            .get_mut(id)
            .unwrap()
            .provider_ref = Some(started.provider_ref.clone());
        started.provider_ref
    }
}

fn request(id: &str, amount_yen: u64, callback_url: &str) -> StartRequest {
    StartRequest {
        payment_id: id.to_owned(),
        amount_yen,
        description: "住民票の写し 2通".into(),
        return_url: format!("https://renkei.example/procedures/payments/{id}/return"),
        callback_url: callback_url.to_owned(),
    }
}

async fn callback(State(r): State<Renkei>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let (handled, status) = match r.provider.verify_callback(&headers, &body, Utc::now()) {
        Err(e) => (Handled::Unverified(e), StatusCode::UNAUTHORIZED),
        Ok(event) => {
            let mut payments = r.payments.lock().unwrap();
            let found = payments
                .values_mut()
                .find(|p| p.provider_ref.as_deref() == Some(event.provider_ref.as_str()));
            match found {
                None => (Handled::UnknownPayment, StatusCode::NOT_FOUND),
                Some(p) => {
                    match p.apply(Some(&event.provider_event_id), &event.event, Utc::now()) {
                        Ok(t) => (Handled::Applied(t), StatusCode::OK),
                        Err(e) => (Handled::Refused(e.to_string()), StatusCode::CONFLICT),
                    }
                }
            }
        }
    };
    r.handled.lock().unwrap().push(handled);
    status
}

/// Starts the gateway and the callback endpoint; returns them with the callback URL.
async fn setup() -> (TestGateway, Renkei, String) {
    let gateway = TestGateway::start(SECRET, Some(API_KEY)).await;
    let provider = GenericRedirectProvider::new(GenericRedirectConfig {
        name: "generic-test".into(),
        base_url: gateway.base_url(),
        secret: SECRET.to_vec(),
        api_key: Some(API_KEY.into()),
        tolerance_seconds: 300,
        request_timeout: StdDuration::from_secs(10),
    })
    .unwrap();
    let renkei = Renkei {
        provider: Arc::new(provider),
        payments: Arc::default(),
        handled: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/callbacks/payment",
        listener.local_addr().unwrap()
    );
    let app = Router::new()
        .route("/callbacks/payment", post(callback))
        .with_state(renkei.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (gateway, renkei, url)
}

#[tokio::test]
async fn start_is_idempotent_and_status_reads_the_gateway() {
    let (gateway, renkei, url) = setup().await;
    let provider_ref = renkei.start_payment("p1", 600, &url).await;
    // A retried start (say the first answer was lost) finds the same gateway payment.
    let again = renkei
        .provider
        .start(&request("p1", 600, &url))
        .await
        .unwrap();
    assert_eq!(again.provider_ref, provider_ref);
    assert_eq!(gateway.payment_count(), 1);
    assert!(again.redirect_url.contains(&format!("/pay/{provider_ref}")));
    assert_eq!(
        renkei.provider.status(&provider_ref).await.unwrap(),
        ProviderStatus::Pending
    );
    gateway.complete(&provider_ref, Outcome::Authorise).await;
    assert_eq!(
        renkei.provider.status(&provider_ref).await.unwrap(),
        ProviderStatus::Authorised
    );
}

#[tokio::test]
async fn resident_pays_on_the_page_and_the_callback_beats_the_redirect() {
    let (gateway, renkei, url) = setup().await;
    let provider_ref = renkei.start_payment("p1", 600, &url).await;
    let started = renkei
        .provider
        .start(&request("p1", 600, &url))
        .await
        .unwrap();

    // The resident's browser: open the gateway's page, press pay, get sent back.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = browser
        .get(&started.redirect_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("600円") && page.contains("住民票の写し"));
    let back = browser
        .post(&started.redirect_url)
        .form(&[("outcome", "capture")])
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 303);
    assert_eq!(
        back.headers()["location"],
        "https://renkei.example/procedures/payments/p1/return"
    );
    // By the time the browser returns, the signed callback has already been applied; the
    // return page only reads it.
    let payment = renkei.payment("p1");
    assert_eq!(payment.state, PaymentState::Captured);
    assert_eq!(payment.resident_view(), ResidentView::Paid);
    assert_eq!(
        gateway.status_of(&provider_ref).as_deref(),
        Some("captured")
    );

    // The gateway did not see our answer and delivers the same callback again.
    assert_eq!(gateway.redeliver_last(&provider_ref).await, Some(200));
    let handled = renkei.handled();
    assert_eq!(handled.len(), 2);
    assert!(matches!(
        handled[0],
        Handled::Applied(Transition::Applied {
            from: PaymentState::Pending,
            to: PaymentState::Captured,
            late: false
        })
    ));
    assert_eq!(handled[1], Handled::Applied(Transition::Unchanged));
    assert_eq!(renkei.payment("p1").state, PaymentState::Captured);
}

#[tokio::test]
async fn a_callback_that_never_comes_is_found_by_reconcile() {
    let (gateway, renkei, url) = setup().await;
    gateway.set_mode(CallbackMode::Dropped);
    let provider_ref = renkei.start_payment("p2", 300, &url).await;
    let quiet = renkei.start_payment("p3", 300, &url).await;
    assert_eq!(
        gateway.complete(&provider_ref, Outcome::Capture).await,
        None
    );
    assert!(renkei.handled().is_empty());
    assert_eq!(renkei.payment("p2").state, PaymentState::Pending);

    let payments: Vec<Payment> = vec![renkei.payment("p2"), renkei.payment("p3")];
    let grace = Duration::minutes(5);
    // Within the grace period the callback may still come: nobody is asked.
    let early = reconcile(renkei.provider.as_ref(), &payments, Utc::now(), grace).await;
    assert!(early.events.is_empty() && early.failures.is_empty());

    let later = Utc::now() + Duration::minutes(10);
    let report = reconcile(renkei.provider.as_ref(), &payments, later, grace).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    // p3 is still pending at the gateway and not yet past its deadline: nothing to do.
    assert_eq!(
        report.events,
        vec![("p2".to_owned(), PaymentEvent::ProviderCaptured)]
    );
    assert_eq!(gateway.status_of(&quiet).as_deref(), Some("pending"));
    for (id, event) in &report.events {
        renkei.apply(id, event);
    }
    assert_eq!(renkei.payment("p2").state, PaymentState::Captured);

    // Once captured, the payment is no longer polled.
    let payments: Vec<Payment> = vec![renkei.payment("p2")];
    let again = reconcile(renkei.provider.as_ref(), &payments, later, grace).await;
    assert!(again.events.is_empty());
}

#[tokio::test]
async fn an_unpaid_payment_expires_and_a_late_capture_still_wins() {
    let (gateway, renkei, url) = setup().await;
    let provider_ref = renkei.start_payment("p4", 300, &url).await;
    let after_deadline = Utc::now() + Duration::minutes(31);
    let payments = vec![renkei.payment("p4")];
    let report = reconcile(
        renkei.provider.as_ref(),
        &payments,
        after_deadline,
        Duration::minutes(5),
    )
    .await;
    assert_eq!(report.events, vec![("p4".to_owned(), PaymentEvent::Expire)]);
    renkei.apply("p4", &PaymentEvent::Expire);
    assert_eq!(renkei.payment("p4").resident_view(), ResidentView::NotPaid);

    // The resident had the gateway page open all along and pays after all.
    assert_eq!(
        gateway.complete(&provider_ref, Outcome::Capture).await,
        Some(200)
    );
    let payment = renkei.payment("p4");
    assert_eq!(payment.state, PaymentState::Captured);
    assert!(
        payment.late,
        "staff must see that this one was paid after expiry"
    );
}

#[tokio::test]
async fn an_authorised_payment_past_its_deadline_is_not_expired() {
    let (gateway, renkei, url) = setup().await;
    gateway.set_mode(CallbackMode::Dropped);
    let provider_ref = renkei.start_payment("p5", 300, &url).await;
    let never_started = Payment::new(
        "p6",
        "app-p6",
        300,
        renkei.provider.name(),
        Utc::now(),
        Duration::minutes(30),
    );
    gateway.complete(&provider_ref, Outcome::Authorise).await;
    let payments = vec![renkei.payment("p5"), never_started];
    let report = reconcile(
        renkei.provider.as_ref(),
        &payments,
        Utc::now() + Duration::minutes(31),
        Duration::minutes(5),
    )
    .await;
    // p5: the gateway holds the money, so we learn of the authorisation instead of expiring.
    // p6: the start call never succeeded, so it expires without asking the gateway.
    assert_eq!(
        report.events,
        vec![
            ("p5".to_owned(), PaymentEvent::ProviderAuthorised),
            ("p6".to_owned(), PaymentEvent::Expire),
        ]
    );
}

#[tokio::test]
async fn callbacks_out_of_order_end_in_the_right_state() {
    let (gateway, renkei, url) = setup().await;
    gateway.set_mode(CallbackMode::Deferred);
    let provider_ref = renkei.start_payment("p7", 300, &url).await;
    gateway.complete(&provider_ref, Outcome::Authorise).await;
    gateway.complete(&provider_ref, Outcome::Capture).await;
    assert!(renkei.handled().is_empty());
    let pending = gateway.pending();
    assert_eq!(pending.len(), 2);
    // Deliver the capture first, then the (stale) authorisation.
    let reversed = [pending[1].event_id.as_str(), pending[0].event_id.as_str()];
    let answers = gateway.flush(Some(&reversed)).await;
    assert_eq!(answers, vec![Some(200), Some(200)]);
    assert!(gateway.pending().is_empty());
    let handled = renkei.handled();
    assert!(matches!(
        handled[0],
        Handled::Applied(Transition::Applied {
            to: PaymentState::Captured,
            ..
        })
    ));
    assert_eq!(handled[1], Handled::Applied(Transition::Unchanged));
    assert_eq!(renkei.payment("p7").state, PaymentState::Captured);
}

#[tokio::test]
async fn refund_moves_to_refunded_once() {
    let (gateway, renkei, url) = setup().await;
    let provider_ref = renkei.start_payment("p8", 900, &url).await;
    // Not captured yet: the gateway refuses the refund.
    assert!(matches!(
        renkei.provider.refund(&provider_ref, 900).await,
        Err(ProviderError::Status { status: 409 })
    ));
    gateway.complete(&provider_ref, Outcome::Capture).await;
    let status = renkei.provider.refund(&provider_ref, 900).await.unwrap();
    assert_eq!(status, ProviderStatus::Refunded);
    // The gateway's refund callback got there first; the refund answer is then a repeat.
    assert_eq!(renkei.payment("p8").state, PaymentState::Refunded);
    let event = status.event().unwrap();
    assert_eq!(renkei.apply("p8", &event), Transition::Unchanged);
    assert_eq!(renkei.payment("p8").resident_view(), ResidentView::Refunded);
}

#[tokio::test]
async fn refused_calls_and_callbacks() {
    let (gateway, renkei, url) = setup().await;
    let provider_ref = renkei.start_payment("p9", 300, &url).await;

    assert!(matches!(
        renkei.provider.status("gw_does_not_exist").await,
        Err(ProviderError::NotFound(id)) if id == "gw_does_not_exist"
    ));
    // A provider ref is a path segment, never a path.
    assert!(matches!(
        renkei.provider.status("../payments").await,
        Err(ProviderError::NotFound(_))
    ));

    let wrong_key = GenericRedirectProvider::new(GenericRedirectConfig {
        name: "generic-test".into(),
        base_url: gateway.base_url(),
        secret: SECRET.to_vec(),
        api_key: Some("sk_wrong".into()),
        tolerance_seconds: 300,
        request_timeout: StdDuration::from_secs(10),
    })
    .unwrap();
    assert!(matches!(
        wrong_key.status(&provider_ref).await,
        Err(ProviderError::Status { status: 401 })
    ));

    // A gateway whose clock is 10 minutes off signs callbacks we refuse as stale.
    gateway.set_clock_skew(-600);
    assert_eq!(
        gateway.complete(&provider_ref, Outcome::Capture).await,
        Some(401)
    );
    assert!(matches!(
        renkei.handled().last(),
        Some(Handled::Unverified(CallbackError::StaleTimestamp { .. }))
    ));
    assert_eq!(renkei.payment("p9").state, PaymentState::Pending);
    // Once the clock is right, the retry goes through.
    gateway.set_clock_skew(0);
    assert_eq!(gateway.redeliver_last(&provider_ref).await, Some(200));
    assert_eq!(renkei.payment("p9").state, PaymentState::Captured);

    // A body we did not receive from the gateway: signature of another body.
    let client = reqwest::Client::new();
    let forged = client
        .post(&url)
        .header(
            "X-Payment-Signature",
            procedures::payment::sign(b"guessed", Utc::now().timestamp(), b"{}"),
        )
        .body(format!(
            r#"{{"event_id":"x","payment_id":"{provider_ref}","status":"refunded"}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(renkei.payment("p9").state, PaymentState::Captured);
}

#[tokio::test]
async fn money_after_a_decline_or_after_expiry_is_found_even_without_callbacks() {
    let (gateway, renkei, url) = setup().await;
    let declined = renkei.start_payment("p10", 300, &url).await;
    let expired = renkei.start_payment("p11", 300, &url).await;
    gateway
        .complete(&declined, Outcome::Fail("card declined".into()))
        .await;
    assert_eq!(renkei.payment("p10").state, PaymentState::Failed);
    renkei.apply("p11", &PaymentEvent::Expire);

    // Both residents then pay at the gateway, and both callbacks are lost.
    gateway.set_mode(CallbackMode::Dropped);
    gateway.complete(&declined, Outcome::Capture).await;
    gateway.complete(&expired, Outcome::Capture).await;

    let payments = vec![renkei.payment("p10"), renkei.payment("p11")];
    let report = reconcile(
        renkei.provider.as_ref(),
        &payments,
        Utc::now() + Duration::minutes(10),
        Duration::minutes(5),
    )
    .await;
    assert_eq!(
        report.events,
        vec![
            ("p10".to_owned(), PaymentEvent::ProviderCaptured),
            ("p11".to_owned(), PaymentEvent::ProviderCaptured),
        ]
    );
    for (id, event) in &report.events {
        renkei.apply(id, event);
    }
    assert!(!renkei.payment("p10").late);
    assert!(renkei.payment("p11").late);
    assert_eq!(renkei.payment("p11").state, PaymentState::Captured);
}
