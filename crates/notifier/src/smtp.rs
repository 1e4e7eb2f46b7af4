//! E-mail delivery over SMTP (RFC 5321) for notifications to people: an application received,
//! a decision made. A [`Mailer`] talks to one relay, the municipality's own mail server in a
//! closed network, plainly on a trusted local link or upgraded with STARTTLS.
//!
//! Mail is Japanese, so every message is UTF-8: the subject is an RFC 2047 encoded word and
//! the body is sent in a transfer encoding (quoted-printable or base64, whichever is shorter)
//! that survives relays that only carry 7-bit text. Failures say whether trying again can help
//! ([`MailError::is_permanent`]): a 5xx reply will be the same tomorrow, while a refused
//! connection, a timeout or a 4xx reply (greylisting, a full queue) may pass later. Errors
//! never carry addresses or message text, which are personal data.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Where and how to hand mail over. Its `Debug` form hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// Host name or IP address of the relay.
    pub host: String,
    pub port: u16,
    /// The sender, `noreply@city.example.lg.jp` or `焼津市 <noreply@city.example.lg.jp>`.
    pub from: String,
    /// Require STARTTLS (with the relay's certificate checked against the public web roots)
    /// before anything else is sent; off for a relay on the same host or a trusted link.
    pub starttls: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Limit on one whole delivery: connecting, the conversation and the transfer. A mail
    /// that times out after its data was sent may still have been accepted, so a retry can
    /// deliver it twice (at least once, never lost).
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("from", &self.from)
            .field("starttls", &self.starttls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SmtpConfig {
    /// A relay on this machine without TLS or authentication, the usual set-up for a local
    /// MTA (Postfix, OpenSMTPD) that forwards onwards.
    pub fn local(port: u16, from: impl Into<String>) -> Self {
        Self {
            host: "127.0.0.1".to_string(),
            port,
            from: from.into(),
            starttls: false,
            username: None,
            password: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// One plain-text e-mail to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text_body: String,
}

/// Why a mail was not delivered. Messages are Japanese first, then English.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    #[error("メール送信の設定が正しくありません / the mail settings are invalid: {0}")]
    Config(String),
    #[error(
        "宛先のメールアドレスが正しくありません / the recipient is not a valid e-mail address"
    )]
    InvalidRecipient,
    #[error("メールを作成できませんでした / the message could not be built")]
    Build,
    /// A 5xx reply: the server will not take this mail, and retrying will not change that.
    #[error(
        "SMTPサーバーがメールを拒否しました（{code}）。再送しても届きません / \
         the SMTP server rejected the mail permanently ({code}); do not retry"
    )]
    Rejected { code: u16 },
    /// A 4xx reply: the server cannot take the mail now (greylisting, a full queue).
    #[error(
        "SMTPサーバーが一時的にメールを受け付けませんでした（{code}）。後で再送してください / \
         the SMTP server deferred the mail ({code}); retry later"
    )]
    Deferred { code: u16 },
    /// The server could not be reached or the conversation broke off: connection refused,
    /// a timeout, a failed TLS handshake, an unreadable reply.
    #[error("SMTPサーバーと通信できませんでした / could not talk to the SMTP server: {0}")]
    Unreachable(String),
}

impl MailError {
    /// Whether sending the same mail again can never succeed; such a mail should be marked
    /// failed instead of being queued for another attempt.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            MailError::Config(_)
                | MailError::InvalidRecipient
                | MailError::Build
                | MailError::Rejected { .. }
        )
    }

    /// Whether a later attempt may succeed.
    pub fn is_transient(&self) -> bool {
        !self.is_permanent()
    }

    /// The SMTP reply code, when the server gave one.
    pub fn smtp_code(&self) -> Option<u16> {
        match self {
            MailError::Rejected { code } | MailError::Deferred { code } => Some(*code),
            _ => None,
        }
    }
}

/// Classifies a failed SMTP conversation by what retrying can achieve.
fn classify(error: lettre::transport::smtp::Error) -> MailError {
    match error.status() {
        Some(code) if error.is_permanent() => MailError::Rejected {
            code: u16::from(code),
        },
        Some(code) => MailError::Deferred {
            code: u16::from(code),
        },
        None if error.is_timeout() => MailError::Unreachable("timed out".to_string()),
        None => {
            // The underlying error says why (refused, reset, TLS); it names no person.
            let mut reason = String::new();
            let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&error);
            while let Some(inner) = source {
                reason = inner.to_string();
                source = inner.source();
            }
            if reason.is_empty() {
                reason = if error.is_tls() {
                    "TLS failed".to_string()
                } else {
                    "connection failed".to_string()
                };
            }
            MailError::Unreachable(reason)
        }
    }
}

/// Sends mail through one SMTP relay. Each [`Mailer::send`] opens its own connection, so a
/// relay restart between mails costs nothing, and a `Mailer` can be shared by reference.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").finish_non_exhaustive()
    }
}

impl Mailer {
    pub fn new(config: &SmtpConfig) -> Result<Self, MailError> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| MailError::Config("from is not a valid e-mail address".to_string()))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .timeout(Some(config.timeout));
        if config.starttls {
            let parameters = TlsParameters::new(config.host.clone())
                .map_err(|_| MailError::Config("TLS settings are invalid".to_string()))?;
            builder = builder.tls(Tls::Required(parameters));
        } else {
            builder = builder.tls(Tls::None);
        }
        match (&config.username, &config.password) {
            (Some(username), Some(password)) => {
                builder = builder.credentials(Credentials::new(username.clone(), password.clone()));
            }
            (None, None) => {}
            _ => {
                return Err(MailError::Config(
                    "username and password must be given together".to_string(),
                ))
            }
        }
        Ok(Self {
            transport: builder.build(),
            from,
            timeout: config.timeout,
        })
    }

    /// The message as it goes on the wire (headers and encoded body), for logs of size and
    /// for tests; sending builds the same message.
    pub fn format(&self, mail: &Mail) -> Result<Vec<u8>, MailError> {
        Ok(self.message(mail)?.formatted())
    }

    fn message(&self, mail: &Mail) -> Result<Message, MailError> {
        let to: Mailbox = mail.to.parse().map_err(|_| MailError::InvalidRecipient)?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .message_id(None)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.text_body.clone())
            .map_err(|_| MailError::Build)
    }

    /// Delivers one mail to the relay. `Ok` means the relay accepted responsibility for it
    /// (250 after DATA); delivery onwards is the relay's job.
    pub async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = self.message(mail)?;
        // lettre bounds only the TCP connect; a server that accepts and then stalls would
        // otherwise hold this delivery, and its worker, for ever.
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Ok(result) => result.map(|_| ()).map_err(classify),
            Err(_) => Err(MailError::Unreachable("timed out".to_string())),
        }
    }
}
