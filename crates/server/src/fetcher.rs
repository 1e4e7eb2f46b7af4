//! Fetching remote JSON-LD contexts over HTTP(S), with a time-out, for the broker's
//! context cache. Only used when remote contexts are enabled.

use async_trait::async_trait;
use serde_json::Value;
use std::time::Duration;

pub struct HttpContextFetcher {
    client: reqwest::Client,
}

impl HttpContextFetcher {
    pub fn new(timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()?;
        Ok(HttpContextFetcher { client })
    }
}

#[async_trait]
impl broker::ContextFetcher for HttpContextFetcher {
    async fn fetch(&self, url: &str) -> Result<Value, String> {
        // The broker refuses other schemes first; this keeps the file system and other
        // protocols out of reach should a caller ever skip that check.
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "only http and https @context URLs can be fetched, not {}:",
                parsed.scheme()
            ));
        }
        let response = self
            .client
            .get(parsed)
            .header("Accept", "application/ld+json, application/json")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("the server answered {}", response.status()));
        }
        response
            .json::<Value>()
            .await
            .map_err(|e| format!("not a JSON document: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use broker::ContextFetcher;

    #[tokio::test]
    async fn other_schemes_than_http_are_refused_before_any_request() {
        let fetcher = HttpContextFetcher::new(Duration::from_secs(1)).unwrap();
        for url in [
            "file:///etc/passwd",
            "gopher://127.0.0.1:6379/_INFO",
            "../../Cargo.toml",
        ] {
            let refusal = fetcher.fetch(url).await.unwrap_err();
            assert!(
                refusal.contains("only http and https") || refusal.contains("not a URL"),
                "{url}: {refusal}"
            );
        }
    }
}
