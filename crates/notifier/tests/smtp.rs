//! SMTP delivery against a real SMTP receiver the test runs on a loopback port: Japanese mail
//! must arrive 7-bit clean and decode back to the same subject and body, and each way delivery
//! can fail must be classed correctly as permanent (do not retry) or transient (retry).

#[path = "support/smtp_sink.rs"]
mod smtp_sink;

use std::time::Duration;

use mail_parser::MessageParser;
use notifier::smtp::{Mail, MailError, Mailer, SmtpConfig};
use smtp_sink::SmtpSink;

const FROM: &str = "焼津市 電子申請 <noreply@city.yaizu.example.lg.jp>";

fn mail() -> Mail {
    Mail {
        to: "hanako.yamada@example.jp".to_string(),
        subject: "【焼津市】申請を受け付けました（受付番号 R08-000123）".to_string(),
        text_body: "山田 花子 様\n\n\
            犬の登録申請を受け付けました。受付番号は R08-000123 です。\n\
            .この行は点で始まります（ドットスタッフィングの確認）。\n\
            審査の状況は、マイページからいつでも確認できます。審査が終わりましたら、決定通知書を電子メールでお知らせします。\n\n\
            Your application has been received.\n"
            .to_string(),
    }
}

fn mailer(sink: &SmtpSink) -> Mailer {
    Mailer::new(&SmtpConfig::local(sink.port(), FROM)).expect("valid config")
}

/// Line ends as the receiver sees them are CRLF; compare text with LF line ends.
fn lf(text: &str) -> String {
    text.replace("\r\n", "\n")
}

#[tokio::test]
async fn japanese_mail_arrives_encoded_and_decodes_back() {
    let sink = SmtpSink::start().await;
    let mail = mail();
    mailer(&sink).send(&mail).await.expect("delivered");

    let received = sink.received();
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!(message.mail_from, "<noreply@city.yaizu.example.lg.jp>");
    assert_eq!(
        message.rcpt_to,
        vec!["<hanako.yamada@example.jp>".to_string()]
    );
    // Encoded for 7-bit transport: no raw UTF-8 byte on the wire.
    assert!(message.data.is_ascii(), "message is not 7-bit clean");
    let raw = String::from_utf8_lossy(&message.data);
    assert!(
        raw.contains("Subject: =?utf-8?"),
        "subject is not an RFC 2047 word:\n{raw}"
    );
    assert!(raw.to_ascii_lowercase().contains("charset=utf-8"));

    let parsed = MessageParser::default()
        .parse(&message.data)
        .expect("the message parses");
    assert_eq!(parsed.subject(), Some(mail.subject.as_str()));
    let body = parsed.body_text(0).expect("a text body");
    assert_eq!(lf(&body).trim_end(), mail.text_body.trim_end());
    let from = parsed
        .from()
        .and_then(|a| a.first())
        .expect("a From address");
    assert_eq!(from.name(), Some("焼津市 電子申請"));
    assert_eq!(from.address(), Some("noreply@city.yaizu.example.lg.jp"));
}

#[tokio::test]
async fn format_shows_the_same_message_as_is_sent() {
    let sink = SmtpSink::start().await;
    let mailer = mailer(&sink);
    let formatted = mailer.format(&mail()).unwrap();
    let parsed = MessageParser::default().parse(&formatted).unwrap();
    assert_eq!(parsed.subject(), Some(mail().subject.as_str()));
    // Formatting alone talks to no server.
    assert_eq!(sink.connections(), 0);
}

#[tokio::test]
async fn rejected_recipient_is_permanent() {
    let sink = SmtpSink::start().await;
    sink.reply_to_rcpt("550 5.1.1 <hanako.yamada@example.jp>: Recipient address rejected");
    let error = mailer(&sink).send(&mail()).await.unwrap_err();
    assert_eq!(error, MailError::Rejected { code: 550 });
    assert!(error.is_permanent());
    assert!(!error.is_transient());
    assert_eq!(error.smtp_code(), Some(550));
    // The error names no address: addresses are personal data and errors get logged.
    assert!(!error.to_string().contains('@'));
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn greylisted_recipient_is_transient_and_a_retry_succeeds() {
    let sink = SmtpSink::start().await;
    sink.reply_to_rcpt("451 4.7.1 Greylisted, try again later");
    let mailer = mailer(&sink);
    let error = mailer.send(&mail()).await.unwrap_err();
    assert_eq!(error, MailError::Deferred { code: 451 });
    assert!(error.is_transient());
    assert!(sink.received().is_empty());

    sink.accept_all();
    mailer.send(&mail()).await.expect("the retry is delivered");
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn replies_to_data_are_classified_too() {
    let sink = SmtpSink::start().await;
    sink.reply_to_data("554 5.7.1 Message rejected as spam");
    let error = mailer(&sink).send(&mail()).await.unwrap_err();
    assert_eq!(error, MailError::Rejected { code: 554 });
    assert!(error.is_permanent());

    sink.reply_to_data("452 4.3.1 Insufficient system storage");
    let error = mailer(&sink).send(&mail()).await.unwrap_err();
    assert_eq!(error, MailError::Deferred { code: 452 });
    assert!(error.is_transient());
}

#[tokio::test]
async fn refused_connection_is_transient() {
    // A port that was just free and has nobody listening.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut config = SmtpConfig::local(port, FROM);
    config.timeout = Duration::from_secs(5);
    let error = Mailer::new(&config)
        .unwrap()
        .send(&mail())
        .await
        .unwrap_err();
    assert!(matches!(error, MailError::Unreachable(_)), "{error:?}");
    assert!(error.is_transient());
    assert_eq!(error.smtp_code(), None);
}

#[tokio::test]
async fn silent_server_times_out_as_transient() {
    // Accepts the connection but never greets.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let (_stream, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let mut config = SmtpConfig::local(port, FROM);
    config.timeout = Duration::from_millis(300);
    let error = Mailer::new(&config)
        .unwrap()
        .send(&mail())
        .await
        .unwrap_err();
    assert_eq!(error, MailError::Unreachable("timed out".to_string()));
    assert!(error.is_transient());
    holder.abort();
}

#[tokio::test]
async fn invalid_recipient_fails_before_any_connection() {
    let sink = SmtpSink::start().await;
    let mut bad = mail();
    bad.to = "山田さんのアドレス".to_string();
    let error = mailer(&sink).send(&bad).await.unwrap_err();
    assert_eq!(error, MailError::InvalidRecipient);
    assert!(error.is_permanent());
    assert_eq!(sink.connections(), 0);
}

#[test]
fn incomplete_settings_are_refused() {
    let mut config = SmtpConfig::local(2525, FROM);
    config.username = Some("renkei".to_string());
    assert!(matches!(Mailer::new(&config), Err(MailError::Config(_))));
    let config = SmtpConfig::local(2525, "not an address");
    assert!(matches!(Mailer::new(&config), Err(MailError::Config(_))));
}

#[test]
fn starttls_settings_build_a_mailer() {
    let mut config = SmtpConfig::local(587, FROM);
    config.host = "smtp.city.example.lg.jp".to_string();
    config.starttls = true;
    config.username = Some("renkei".to_string());
    config.password = Some("secret".to_string());
    let mailer = Mailer::new(&config).expect("STARTTLS configuration is accepted");
    // Debug forms, which end up in logs, never show the password.
    assert!(!format!("{mailer:?}").contains("secret"));
    assert!(!format!("{config:?}").contains("secret"));
    assert!(format!("{config:?}").contains("smtp.city.example.lg.jp"));
}
