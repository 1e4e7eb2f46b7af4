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
        let response = self
            .client
            .get(url)
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
