//! A pub/sub server just smart enough to misbehave on purpose, for the
//! faults a real Redis will not produce on demand.

use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use tokio::time::Instant;

use super::PROMPT;

/// A pub/sub server just smart enough to misbehave on purpose. It confirms
/// `SUBSCRIBE` and `UNSUBSCRIBE`, answers `PING` and `CLIENT`; while
/// *wedged* it stops answering at the first live channel asked for; while
/// *holding* it keeps replies about live channels until released.
pub struct FakeRedis {
    port: u16,
    state: Arc<FakeState>,
    kick: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

struct FakeState {
    wedged: std::sync::atomic::AtomicBool,
    holding: std::sync::atomic::AtomicBool,
    accepted: std::sync::atomic::AtomicUsize,
    held: std::sync::atomic::AtomicUsize,
    release: tokio::sync::Semaphore,
}

impl Default for FakeState {
    fn default() -> Self {
        Self {
            wedged: false.into(),
            holding: false.into(),
            accepted: 0.into(),
            held: 0.into(),
            release: tokio::sync::Semaphore::new(0),
        }
    }
}

impl FakeRedis {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(FakeState::default());
        let (kick, _) = tokio::sync::watch::channel(0);
        let task = tokio::spawn({
            let (state, kick) = (state.clone(), kick.clone());
            async move {
                while let Ok((socket, _)) = listener.accept().await {
                    state.accepted.fetch_add(1, SeqCst);
                    let (state, mut kicked) = (state.clone(), kick.subscribe());
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = serve_pubsub(socket, state) => {}
                            _ = kicked.changed() => {}
                        }
                    });
                }
            }
        });
        Self { port, state, kick, task }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn wedge(&self, on: bool) {
        self.state.wedged.store(on, SeqCst);
    }

    pub fn hold(&self, on: bool) {
        self.state.holding.store(on, SeqCst);
    }

    /// Waits until `count` replies are held.
    pub async fn wait_for_held(&self, count: usize) {
        let deadline = Instant::now() + PROMPT;
        while self.state.held.load(SeqCst) < count {
            assert!(Instant::now() < deadline, "the bus never sent request {count}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Sends the oldest `count` held replies.
    pub fn release(&self, count: usize) {
        self.state.release.add_permits(count);
    }

    pub fn drop_connections(&self) {
        self.kick.send_modify(|n| *n += 1);
    }

    pub fn connections(&self) -> usize {
        self.state.accepted.load(SeqCst)
    }
}

impl Drop for FakeRedis {
    fn drop(&mut self) {
        self.task.abort();
        self.drop_connections();
    }
}

/// Reads commands and writes replies in order; a reply about a live
/// channel waits for a release while the server holds (commands are still
/// read meanwhile).
async fn serve_pubsub(socket: tokio::net::TcpStream, state: Arc<FakeState>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
    let (reader, mut writer) = socket.into_split();
    let mut reader = BufReader::new(reader);
    let (replies, mut queue) = tokio::sync::mpsc::channel::<(bool, String)>(64);
    let reading = async {
        let mut subscribed = 0;
        while let Some(parts) = read_command(&mut reader).await {
            let live = parts.iter().any(|part| part.ends_with(":live"));
            if live && state.wedged.load(SeqCst) {
                // Keep the connection open, answer nothing more.
                let _ = reader.read_to_end(&mut Vec::new()).await;
                return;
            }
            let held = live && state.holding.load(SeqCst);
            if held {
                state.held.fetch_add(1, SeqCst);
            }
            if replies.send((held, fake_reply(&parts, &mut subscribed))).await.is_err() {
                return;
            }
        }
    };
    let writing = async {
        while let Some((held, reply)) = queue.recv().await {
            if held {
                state.release.acquire().await.unwrap().forget();
            }
            if writer.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = reading => {}
        () = writing => {}
    }
}

async fn read_command(reader: &mut (impl tokio::io::AsyncBufRead + Unpin)) -> Option<Vec<String>> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    // *<n>, then n times $<len> and the bytes.
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let count: usize = line.trim().trim_start_matches('*').parse().ok()?;
    let mut parts = Vec::with_capacity(count);
    for _ in 0..count {
        line.clear();
        reader.read_line(&mut line).await.ok()?;
        let len: usize = line.trim().trim_start_matches('$').parse().ok()?;
        let mut part = vec![0; len + 2];
        reader.read_exact(&mut part).await.ok()?;
        part.truncate(len);
        parts.push(String::from_utf8(part).ok()?);
    }
    Some(parts)
}

fn fake_reply(parts: &[String], subscribed: &mut usize) -> String {
    let mut reply = String::new();
    match parts[0].to_ascii_uppercase().as_str() {
        "CLIENT" => reply.push_str("+OK\r\n"),
        "PING" => reply.push_str("*2\r\n$4\r\npong\r\n$0\r\n\r\n"),
        verb @ ("SUBSCRIBE" | "UNSUBSCRIBE") => {
            let kind = verb.to_ascii_lowercase();
            for name in &parts[1..] {
                *subscribed =
                    if verb == "SUBSCRIBE" { *subscribed + 1 } else { subscribed.saturating_sub(1) };
                let (kind_len, name_len) = (kind.len(), name.len());
                reply +=
                    &format!("*3\r\n${kind_len}\r\n{kind}\r\n${name_len}\r\n{name}\r\n:{subscribed}\r\n");
            }
        }
        other => reply += &format!("-ERR {other} is not served here\r\n"),
    }
    reply
}
