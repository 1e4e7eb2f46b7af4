//! renkei killed with SIGKILL in the middle of a stream of changes, then started
//! again on the same database, delivers a notification for every change it had
//! acknowledged, in order — on SQLite and on PostgreSQL. The real binary runs as a
//! child process; the receiver is a real HTTP server in the test. The same child
//! process shows how the binary sets up its process (transparent huge pages off).

mod common;

use common::receiver::Receiver;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Renkei {
    child: Child,
    base: String,
}

impl Drop for Renkei {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One field-encryption key for every start in this test run, so that no key file is
/// generated in the working directory.
fn test_keys() -> &'static str {
    static KEYS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| field_crypto::Keyring::generate_key_entry("test").unwrap())
}

async fn start(database_url: &str, port: u16) -> Renkei {
    // Waited for by `Renkei`'s Drop, or by the test after killing it.
    #[allow(clippy::zombie_processes)]
    let mut child = Command::new(env!("CARGO_BIN_EXE_renkei"))
        .arg("serve")
        .env("RENKEI_DATABASE_URL", database_url)
        .env("RENKEI_ENCRYPTION_KEYS", test_keys())
        .env("RENKEI_LISTEN", format!("127.0.0.1:{port}"))
        .env("RENKEI_ALLOW_ANONYMOUS_WRITES", "1")
        .env("RENKEI_RATE_LIMIT_WRITES_PER_SECOND", "0")
        .env("RENKEI_REMOTE_CONTEXTS", "false")
        .env("RENKEI_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the renkei binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client.get(format!("{base}/health")).send().await.is_ok() {
            return Renkei { child, base };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("renkei did not start on port {port}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends one change; true when renkei acknowledged it.
async fn change(client: &reqwest::Client, base: &str, value: u64) -> bool {
    let body = json!({"count": {"type": "Property", "value": value}});
    client
        .patch(format!(
            "{base}/ngsi-ld/v1/entities/urn:ngsi-ld:Counter:1/attrs"
        ))
        .json(&body)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

async fn every_acknowledged_change_survives_a_kill(database_url: &str) {
    let receiver = Receiver::start().await;
    // Slow enough that notifications are still queued and one is in flight when the
    // kill comes: it must be sent again after its claim lapses.
    receiver.slow_down(50);
    let client = reqwest::Client::new();
    let port = free_port();
    let mut renkei = start(database_url, port).await;
    let entity = json!({"id": "urn:ngsi-ld:Counter:1", "type": "Counter", "count": {"type": "Property", "value": 0}});
    let created = client
        .post(format!("{}/ngsi-ld/v1/entities", renkei.base))
        .json(&entity)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let subscription = json!({
        "type": "Subscription",
        "entities": [{"type": "Counter"}],
        "watchedAttributes": ["count"],
        "notification": {"endpoint": {"uri": receiver.url, "accept": "application/json"}}
    });
    let made = client
        .post(format!("{}/ngsi-ld/v1/subscriptions", renkei.base))
        .json(&subscription)
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);

    let mut acknowledged = Vec::new();
    for value in 1..=150u64 {
        if value == 100 {
            // SIGKILL: no shutdown, whatever was in flight is cut off.
            renkei.child.kill().unwrap();
            renkei.child.wait().unwrap();
        }
        if change(&client, &renkei.base, value).await {
            acknowledged.push(value);
        }
    }
    assert_eq!(
        acknowledged.len(),
        99,
        "the writes after the kill must fail"
    );
    renkei = start(database_url, port).await;
    for value in 151..=200u64 {
        assert!(change(&client, &renkei.base, value).await);
        acknowledged.push(value);
    }

    // At least once: every acknowledged value arrives; duplicates are allowed, but the
    // first arrival of each value keeps the order of the changes.
    let mut firsts: Vec<u64> = Vec::new();
    // A notification in flight when renkei was killed is sent again once its claim
    // lapses (20 s), so allow well beyond that.
    for _ in 0..900 {
        let received = receiver.received();
        firsts.clear();
        for (_, body) in &received {
            if let Some(value) = body["data"][0]["count"]["value"].as_u64() {
                if !firsts.contains(&value) {
                    firsts.push(value);
                }
            }
        }
        if acknowledged.iter().all(|v| firsts.contains(v)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let missing: Vec<u64> = acknowledged
        .iter()
        .copied()
        .filter(|v| !firsts.contains(v))
        .collect();
    assert!(missing.is_empty(), "lost notifications for {missing:?}");
    let acknowledged_order: Vec<u64> = firsts
        .iter()
        .copied()
        .filter(|v| acknowledged.contains(v))
        .collect();
    assert_eq!(
        acknowledged_order, acknowledged,
        "notifications out of order"
    );
    drop(renkei);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_delivers_every_acknowledged_change_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("renkei.db").display());
    every_acknowledged_change_survives_a_kill(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_delivers_every_acknowledged_change_after_sigkill() {
    let server_url = store_postgres::testing::test_server_url();
    let database = store_postgres::testing::TestDatabase::create(&server_url)
        .await
        .unwrap();
    let base = server_url
        .rsplit_once('/')
        .map(|(base, _)| base)
        .unwrap_or(&server_url);
    let url = format!("{base}/{}", database.name());
    every_acknowledged_change_survives_a_kill(&url).await;
}

/// The binary opts out of transparent huge pages (`allocator::configure`): with them, mimalloc's
/// touched 2 MiB regions were resident whole and a million stored entities took the
/// process over its 150 MB memory target.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_runs_without_transparent_huge_pages() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("renkei.db").display());
    let renkei = start(&url, free_port()).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", renkei.child.id())).unwrap();
    let thp = status
        .lines()
        .find_map(|line| line.strip_prefix("THP_enabled:"))
        .map(str::trim);
    assert_eq!(thp, Some("0"), "{status}");
}
