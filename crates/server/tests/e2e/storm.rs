//! A reconnect storm against a node limited to 1,000 handshakes a second
//! (issue 12): 5,000 clients try to connect within one second; the excess
//! gets 503 with `Retry-After` and comes back after the wait it was told
//! (with jitter of its own) until every one is connected, while one
//! subscribed client receives every publication of a steady publisher,
//! in order. The figures it prints go to `docs/benchmarks.md`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::admission::try_upgrade;
use crate::support::{API_KEY, RawConn, TestServer, http, metric_value};

const CLIENTS: usize = 5_000;
const NODE_RATE: u64 = 1_000;
/// The clients' first attempts are spread over this.
const LAUNCH_SPREAD: Duration = Duration::from_secs(1);
/// The whole storm, retries included, must be over by then.
const STORM_BOUND: Duration = Duration::from_secs(60);

/// What one storm client went through.
struct Outcome {
    /// 503s it got before it was let in.
    refusals: u32,
    /// When (since the storm began) its first attempt was answered.
    first_answered_at: Duration,
    /// From its first attempt to its `connect` reply.
    until_connected: Duration,
    /// The last attempt's handshake, request to `101`.
    handshake: Duration,
    /// When (since the storm began) its upgrade was let in.
    admitted_at: Duration,
    _socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

/// Connects, and on a 503 waits what `retry_after_ms` says plus up to
/// 250 ms of jitter, then tries again; checks every refusal's code and
/// `Retry-After` on the way.
async fn storm_client(url: String, start: Instant, delay: Duration) -> Outcome {
    tokio::time::sleep(delay).await;
    let first_attempt = Instant::now();
    let mut refusals = 0;
    let mut first_answered_at = None;
    loop {
        let attempt = Instant::now();
        let answer = try_upgrade(&url, None).await;
        let first_answered_at = *first_answered_at.get_or_insert_with(|| start.elapsed());
        match answer {
            Ok(mut socket) => {
                let handshake = attempt.elapsed();
                let admitted_at = start.elapsed();
                socket.send(Message::text(json!({"id": 1, "type": "connect"}).to_string())).await.unwrap();
                let reply = socket.next().await.expect("closed before the connect reply").unwrap();
                let reply: Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
                assert!(reply.get("result").is_some(), "{reply}");
                let until_connected = first_attempt.elapsed();
                return Outcome {
                    refusals,
                    first_answered_at,
                    until_connected,
                    handshake,
                    admitted_at,
                    _socket: socket,
                };
            }
            Err(refusal) => {
                assert_eq!((refusal.status, refusal.error["code"].as_str()), (503, Some("unavailable")));
                let wait = refusal.retry_after_ms();
                assert!(wait >= 1000, "{refusal:?}");
                assert_eq!(refusal.retry_after, Some(wait.div_ceil(1000)), "{refusal:?}");
                refusals += 1;
                let jitter = rand::random_range(0..250);
                tokio::time::sleep(Duration::from_millis(wait + jitter)).await;
            }
        }
    }
}

/// Publishes 1, 2, 3 … every 5 ms until `stop`, each with its time since
/// `epoch` in microseconds; returns how many. One HTTP client, so its
/// connection is open before the storm and does not queue behind the
/// storm's in the listener's backlog.
async fn steady_publisher(
    server: Arc<TestServer>,
    channel: &'static str,
    stop: Arc<AtomicBool>,
    epoch: Instant,
) -> u64 {
    let published = AtomicU64::new(0);
    let client = http();
    let url = server.url("/api/publish");
    let mut every = tokio::time::interval(Duration::from_millis(5));
    while !stop.load(Ordering::Acquire) {
        every.tick().await;
        let n = published.load(Ordering::Relaxed) + 1;
        let sent_us = epoch.elapsed().as_micros() as u64;
        let body = json!({ "channel": channel, "data": { "n": n, "sent_us": sent_us } });
        let response = client.post(&url).bearer_auth(API_KEY).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
        published.store(n, Ordering::Relaxed);
    }
    published.load(Ordering::Relaxed)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// What a storm left behind, for the assertions and the figures.
struct Storm {
    server: Arc<TestServer>,
    outcomes: Vec<Outcome>,
    all_connected: Duration,
    published: u64,
    /// Publish request sent to delivery at the subscriber, sorted.
    latencies: Vec<Duration>,
}

/// Runs the storm against a node limited to `node_rate` handshakes a
/// second (0: none) and checks what holds at any rate: every client
/// connected, and the subscriber got every publication in order.
async fn run_storm(node_rate: u64) -> Storm {
    let server = Arc::new(
        TestServer::with_config(&format!(
            "[limits]\nmax_handshakes_per_second = {node_rate}\nhandshake_timeout = \"60s\"\n"
        ))
        .await,
    );
    let mut subscriber = RawConn::connected(&server, None).await;
    let reply = subscriber.command(json!({"type": "subscribe", "channel": "storm"})).await;
    assert!(reply.get("result").is_some(), "{reply}");
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let publisher = tokio::spawn(steady_publisher(server.clone(), "storm", stop.clone(), epoch));

    // The subscriber reads all along, so the storm cannot stall it unseen;
    // each publication is stamped with when it arrived.
    let (deliveries, mut delivered) = mpsc::channel::<(Value, Duration)>(1 << 16);
    let reading = tokio::spawn(async move {
        while let Ok(message) = subscriber.next().await {
            if message["type"] == "publication" && deliveries.send((message, epoch.elapsed())).await.is_err()
            {
                return;
            }
        }
    });

    let start = Instant::now();
    let url = server.ws_url();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let delay = LAUNCH_SPREAD.mul_f64(i as f64 / CLIENTS as f64);
            tokio::spawn(storm_client(url.clone(), start, delay))
        })
        .collect();
    let mut outcomes = Vec::with_capacity(CLIENTS);
    for client in clients {
        let outcome = tokio::time::timeout_at((start + STORM_BOUND).into(), client)
            .await
            .expect("the storm was not over in time")
            .unwrap();
        outcomes.push(outcome);
    }
    let all_connected = start.elapsed();
    stop.store(true, Ordering::Release);
    let published = publisher.await.unwrap();

    // Every client is connected, and the server agrees.
    assert_eq!(outcomes.len(), CLIENTS);
    assert_eq!(server.app.hub.connections().len(), CLIENTS + 1, "the storm and the subscriber");

    // The subscriber got every publication, in order, none twice.
    let mut received = Vec::new();
    while (received.len() as u64) < published {
        let message = tokio::time::timeout(Duration::from_secs(10), delivered.recv())
            .await
            .expect("the subscriber stopped receiving")
            .expect("the subscriber's connection closed");
        received.push(message);
    }
    let mut latencies: Vec<Duration> = received
        .iter()
        .map(|(m, at)| at.saturating_sub(Duration::from_micros(m["data"]["sent_us"].as_u64().unwrap())))
        .collect();
    latencies.sort_unstable();
    let received: Vec<Value> = received.into_iter().map(|(m, _)| m).collect();
    let numbers: Vec<u64> = received.iter().map(|m| m["data"]["n"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (1..=published).collect::<Vec<_>>(), "every publication, in order");
    let offsets: Vec<u64> = received.iter().map(|m| m["offset"].as_u64().unwrap()).collect();
    assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1), "offsets without a gap");
    assert!(published >= 100, "the publisher kept publishing through the storm ({published})");
    reading.abort();

    let storm = Storm { server, outcomes, all_connected, published, latencies };
    storm.print_figures(node_rate);
    storm
}

impl Storm {
    fn refusals(&self) -> u64 {
        self.outcomes.iter().map(|o| u64::from(o.refusals)).sum()
    }

    fn print_figures(&self, node_rate: u64) {
        let mut handshakes: Vec<Duration> = self.outcomes.iter().map(|o| o.handshake).collect();
        handshakes.sort_unstable();
        let mut waits: Vec<Duration> = self.outcomes.iter().map(|o| o.until_connected).collect();
        waits.sort_unstable();
        let refused_first = self.outcomes.iter().filter(|o| o.refusals > 0).count();
        eprintln!(
            "storm: {CLIENTS} clients, node limit {node_rate}/s: all connected after {:.2} s; {} 503s \
             ({refused_first} first attempts refused); handshake p50 {:.1} ms p99 {:.1} ms; \
             first attempt to connected p50 {:.2} s p99 {:.2} s; {} publications delivered in order \
             ({:.0}/s), publish to delivery p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
            self.all_connected.as_secs_f64(),
            self.refusals(),
            percentile(&handshakes, 0.5).as_secs_f64() * 1e3,
            percentile(&handshakes, 0.99).as_secs_f64() * 1e3,
            percentile(&waits, 0.5).as_secs_f64(),
            percentile(&waits, 0.99).as_secs_f64(),
            self.published,
            self.published as f64 / self.all_connected.as_secs_f64(),
            percentile(&self.latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&self.latencies, 0.99).as_secs_f64() * 1e3,
            self.latencies.last().unwrap().as_secs_f64() * 1e3,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_5000_handshakes_is_let_in_at_the_nodes_rate_while_a_subscriber_misses_nothing() {
    let storm = run_storm(NODE_RATE).await;

    // The 503s the clients saw are the ones the node counted.
    let metrics = storm.server.metrics().await;
    let name = "fanfare_handshake_failures_total{cause=\"handshake_rate_node\"}";
    let counted = if metrics.contains(name) { metric_value(&metrics, name) as u64 } else { 0 };
    assert_eq!(counted, storm.refusals());

    // 5,000 first attempts in about a second against 1,000/s (bursts of
    // 1,000): the node let in at most its burst plus its rate over the
    // time the first attempts took, and refused the rest; letting in all
    // 5,000 took at least the 4 s the rate allows after the burst. (On a
    // machine so loaded that the attempts reach the node slower than its
    // rate, nothing is refused, and the bound says so.)
    let outcomes = &storm.outcomes;
    let refused_first = outcomes.iter().filter(|o| o.refusals > 0).count() as u64;
    let first_round = outcomes.iter().map(|o| o.first_answered_at).max().unwrap();
    let admitted_first = CLIENTS as u64 - refused_first;
    let bound = NODE_RATE + (NODE_RATE as f64 * first_round.as_secs_f64()).ceil() as u64;
    assert!(storm.refusals() >= refused_first);
    if first_round < Duration::from_secs(2) {
        assert!(refused_first > 0, "the first attempts came within {first_round:?}, and none was refused");
    }
    assert!(admitted_first <= bound, "{admitted_first} let in at first, more than {bound}");
    let last_admitted = outcomes.iter().map(|o| o.admitted_at).max().unwrap();
    let paced = Duration::from_secs_f64((CLIENTS as u64 - NODE_RATE) as f64 / NODE_RATE as f64 * 0.95);
    assert!(last_admitted >= paced, "all let in after {last_admitted:?}, faster than the rate allows");
    // And never more than the burst plus a second's worth in any second
    // (with a fifth more: the clients see a 101 a little after the node
    // let it in, which bunches their timestamps).
    let mut admitted: Vec<Duration> = outcomes.iter().map(|o| o.admitted_at).collect();
    admitted.sort_unstable();
    for (i, at) in admitted.iter().enumerate() {
        let within = admitted[i..].partition_point(|t| *t < *at + Duration::from_secs(1));
        assert!(
            within as u64 <= 2 * NODE_RATE + NODE_RATE / 5,
            "{within} admitted in the second from {at:?}"
        );
    }
}

/// The same storm with no handshake limit: the baseline of
/// `docs/benchmarks.md` (run with `--run-ignored only`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark baseline, not a check"]
async fn the_same_storm_without_a_handshake_limit_for_the_benchmark_baseline() {
    let storm = run_storm(0).await;
    assert_eq!(storm.refusals(), 0);
}
