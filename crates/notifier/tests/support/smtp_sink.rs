//! A small SMTP receiver (RFC 5321 subset) for tests: it listens on a loopback port, speaks
//! EHLO/HELO, MAIL FROM, RCPT TO, DATA, RSET, NOOP and QUIT, keeps every message it accepts
//! and can be told to answer RCPT TO or the end of DATA with an error such as 550 or 451.
//! It is a real server over real TCP, so the client under test runs its whole conversation.
//!
//! Include it from any crate's tests with
//! `#[path = "<relative path>/notifier/tests/support/smtp_sink.rs"] mod smtp_sink;`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One message the sink accepted: the envelope and the raw message as sent after DATA, with
/// dot-stuffing undone and line ends kept as CRLF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    pub helo: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    received: Vec<ReceivedMail>,
    connections: usize,
    /// Reply to every RCPT TO, instead of 250.
    rcpt_reply: Option<String>,
    /// Reply to the end of DATA, instead of 250.
    data_reply: Option<String>,
}

/// A running SMTP receiver; it stops when dropped.
pub struct SmtpSink {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    /// Starts a receiver on a free loopback port.
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                shared.lock().unwrap().connections += 1;
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        SmtpSink {
            address,
            state,
            task,
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Answers every RCPT TO with `reply`, e.g. `550 5.1.1 No such user`.
    pub fn reply_to_rcpt(&self, reply: &str) {
        self.state.lock().unwrap().rcpt_reply = Some(reply.to_string());
    }

    /// Answers the end of DATA with `reply`, e.g. `451 4.3.0 Try again later`.
    pub fn reply_to_data(&self, reply: &str) {
        self.state.lock().unwrap().data_reply = Some(reply.to_string());
    }

    /// Answers normally again.
    pub fn accept_all(&self) {
        let mut state = self.state.lock().unwrap();
        state.rcpt_reply = None;
        state.data_reply = None;
    }

    /// Every message accepted so far, oldest first.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.state.lock().unwrap().received.clone()
    }

    /// How many connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }
}

/// Reads one line ending in LF; `None` when the peer closed the connection.
async fn read_line(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    match reader.read_until(b'\n', &mut line).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line),
    }
}

fn argument(line: &str, prefix: &str) -> Option<String> {
    let upper = line.to_ascii_uppercase();
    upper
        .starts_with(prefix)
        .then(|| line[prefix.len()..].trim().to_string())
}

async fn serve(stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut reader = BufReader::new(stream);
    if send(&mut reader, "220 smtp-sink ESMTP ready")
        .await
        .is_err()
    {
        return;
    }
    let mut helo = String::new();
    let mut mail_from: Option<String> = None;
    let mut rcpt_to: Vec<String> = Vec::new();
    while let Some(raw) = read_line(&mut reader).await {
        let line = String::from_utf8_lossy(&raw).trim_end().to_string();
        let upper = line.to_ascii_uppercase();
        let reply = if let Some(name) = argument(&line, "EHLO ") {
            helo = name;
            "250-smtp-sink greets you\r\n250-8BITMIME\r\n250 SIZE 10485760".to_string()
        } else if let Some(name) = argument(&line, "HELO ") {
            helo = name;
            "250 smtp-sink".to_string()
        } else if let Some(from) = argument(&line, "MAIL FROM:") {
            mail_from = Some(from);
            rcpt_to.clear();
            "250 2.1.0 Ok".to_string()
        } else if let Some(to) = argument(&line, "RCPT TO:") {
            if mail_from.is_none() {
                "503 5.5.1 MAIL first".to_string()
            } else if let Some(reply) = state.lock().unwrap().rcpt_reply.clone() {
                reply
            } else {
                rcpt_to.push(to);
                "250 2.1.5 Ok".to_string()
            }
        } else if upper == "DATA" {
            if rcpt_to.is_empty() {
                "554 5.5.1 No valid recipients".to_string()
            } else {
                if send(&mut reader, "354 End data with <CR><LF>.<CR><LF>")
                    .await
                    .is_err()
                {
                    return;
                }
                let Some(data) = read_data(&mut reader).await else {
                    return;
                };
                let mut guard = state.lock().unwrap();
                if let Some(reply) = guard.data_reply.clone() {
                    reply
                } else {
                    guard.received.push(ReceivedMail {
                        helo: helo.clone(),
                        mail_from: mail_from.take().unwrap_or_default(),
                        rcpt_to: std::mem::take(&mut rcpt_to),
                        data,
                    });
                    "250 2.0.0 Ok: queued".to_string()
                }
            }
        } else if upper == "RSET" {
            mail_from = None;
            rcpt_to.clear();
            "250 2.0.0 Ok".to_string()
        } else if upper == "NOOP" {
            "250 2.0.0 Ok".to_string()
        } else if upper == "QUIT" {
            let _ = send(&mut reader, "221 2.0.0 Bye").await;
            return;
        } else {
            "502 5.5.2 Command not recognised".to_string()
        };
        if send(&mut reader, &reply).await.is_err() {
            return;
        }
    }
}

/// Reads the message after DATA up to the lone dot, undoing dot-stuffing (RFC 5321 4.5.2).
async fn read_data(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    loop {
        let line = read_line(reader).await?;
        if line == b".\r\n" || line == b".\n" {
            return Some(data);
        }
        let line = if line.starts_with(b"..") {
            &line[1..]
        } else {
            &line[..]
        };
        data.extend_from_slice(line);
    }
}

async fn send(reader: &mut BufReader<TcpStream>, reply: &str) -> std::io::Result<()> {
    let stream = reader.get_mut();
    stream.write_all(reply.as_bytes()).await?;
    stream.write_all(b"\r\n").await?;
    stream.flush().await
}
