//! The HTTP binding of notifications (clause 7.2): one POST per notification to the
//! endpoint URI, success being any 2xx answer. Redirects are not followed, so a receiver
//! cannot bounce notifications (and their tenant headers) somewhere else.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::headers::{notification_body, notification_headers};
use crate::{DeliveryError, Endpoint, NotifierConfig, NotifierInitError, Outgoing};

pub(crate) struct HttpSender {
    client: reqwest::Client,
}

impl HttpSender {
    pub(crate) fn new(config: &NotifierConfig) -> Result<HttpSender, NotifierInitError> {
        let client = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .connect_timeout(config.http_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("renkei-notifier/", env!("CARGO_PKG_VERSION")))
            // Header names are case-insensitive, but receivers written in a hurry (the
            // ETSI suite's among them) look for `Link` and `Content-Type` as written in
            // the specification: send them in that case over HTTP/1.1.
            .http1_title_case_headers()
            .build()
            .map_err(|err| NotifierInitError::HttpClient(err.to_string()))?;
        Ok(HttpSender { client })
    }

    pub(crate) async fn deliver(
        &self,
        endpoint: &Endpoint,
        outgoing: Outgoing<'_>,
    ) -> Result<(), DeliveryError> {
        let headers = header_map(&notification_headers(endpoint, &outgoing))?;
        let body = serde_json::to_vec(&notification_body(endpoint, &outgoing)).map_err(|err| {
            DeliveryError::InvalidEndpoint(format!("notification not serialisable: {err}"))
        })?;
        let response = self
            .client
            .post(endpoint.uri.clone())
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(describe_send_error)?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(DeliveryError::Status(status.as_u16()))
        }
    }
}

fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, DeliveryError> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            DeliveryError::InvalidEndpoint(format!("receiverInfo key {name:?} is no header name"))
        })?;
        let header_value = HeaderValue::from_str(value).map_err(|_| {
            DeliveryError::InvalidEndpoint(format!(
                "receiverInfo value for {name:?} is no valid header value"
            ))
        })?;
        // append, not insert: a receiverInfo key may legitimately repeat a header.
        map.append(header_name, header_value);
    }
    Ok(map)
}

/// Maps a failed send to a delivery error, keeping the URL (which may carry credentials)
/// out of the message.
fn describe_send_error(err: reqwest::Error) -> DeliveryError {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_builder() {
        return DeliveryError::InvalidEndpoint("URI cannot be requested".to_owned());
    } else {
        "request failed"
    };
    let mut reason = kind.to_owned();
    let stripped = err.without_url();
    let mut source = std::error::Error::source(&stripped);
    // The innermost causes (e.g. "Connection refused") are what an operator needs.
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    DeliveryError::Unreachable(reason)
}
