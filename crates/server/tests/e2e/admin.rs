//! The admin page and its API: the page loads without a key and with its
//! security headers, the API refuses without the key, the stream's `stats`
//! follow connections and publishes, its tail shows a channel's
//! publications, and a webhook dead letter gets an id and is replayed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use fanfare::pusher::webhooks::{DEAD_LETTER_FILE_MAX_BYTES, DeadLetterFile, WebhookOptions};
use fanfare_cluster::DeadLetterLog;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::support::{API_KEY, RawConn, TestServer, WAIT, eventually, http};

/// A server-sent-events response, read event by event.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    async fn open(server: &TestServer, query: &str) -> Self {
        let url = server.url(&format!("/api/admin/stream{query}"));
        let response = reqwest::Client::new().get(url).bearer_auth(API_KEY).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self { response, buffer: String::new() }
    }

    /// The next event: its name and its data as JSON.
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event: ") {
                        name = value.to_owned();
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        data.push_str(value);
                    }
                }
                if !data.is_empty() {
                    return (name, serde_json::from_str(&data).unwrap());
                }
                continue;
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk()).await.expect("no event in time");
            let chunk = chunk.unwrap().expect("the stream ended");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Skips events until one named `name` satisfies `check`.
    async fn until(&mut self, name: &str, check: impl Fn(&Value) -> bool) -> Value {
        let wait = async {
            loop {
                let (event, data) = self.next().await;
                if event == name && check(&data) {
                    return data;
                }
            }
        };
        tokio::time::timeout(WAIT, wait).await.unwrap_or_else(|_| panic!("no matching {name} event in time"))
    }
}

#[tokio::test]
async fn the_page_loads_without_a_key_and_cannot_be_framed_or_run_inline_script() {
    let server = TestServer::start().await;
    let page = http().get(server.url("/admin")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self';") && policy.contains("frame-ancestors 'none'"), "{policy}");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script src="/admin/admin.js" defer></script>"#), "{html}");
    assert!(!html.contains(API_KEY));
    for (path, kind) in [("/admin/admin.js", "text/javascript"), ("/admin/admin.css", "text/css")] {
        let asset = http().get(server.url(path)).send().await.unwrap();
        assert_eq!(asset.status(), 200, "{path}");
        assert!(asset.headers()["content-type"].to_str().unwrap().starts_with(kind), "{path}");
    }
}

#[tokio::test]
async fn the_admin_api_refuses_requests_without_the_key_or_with_a_wrong_one() {
    let server = TestServer::start().await;
    let requests = [
        ("GET", "/api/admin/stream"),
        ("GET", "/api/admin/stream?channel=news"),
        ("GET", "/api/admin/slow_consumers"),
        ("POST", "/api/webhooks/dead_letters/00000000-0000-4000-8000-000000000000/replay"),
    ];
    for (method, path) in requests {
        for key in [None, Some("wrong-key")] {
            let mut request = http().request(method.parse().unwrap(), server.url(path));
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path} with {key:?}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unauthorized", "{method} {path}");
        }
    }
    let (status, body) = server.get("/api/admin/slow_consumers").await;
    assert_eq!((status, body), (200, json!({ "slow_consumers": [] })));
}

#[tokio::test]
async fn the_stream_counts_a_new_connection_and_the_publish_rate_moves_when_publishing() {
    let server = TestServer::start().await;
    let mut stream = EventStream::open(&server, "").await;
    let first = stream.until("stats", |_| true).await;
    assert_eq!(first["node"], Value::Null);
    assert_eq!(first["connections"], 0);
    assert_eq!(first["tail_dropped"], 0);

    let mut subscriber = RawConn::connected(&server, None).await;
    subscriber.command(json!({"type": "subscribe", "channel": "news"})).await;
    stream.until("stats", |s| s["connections"] == 1 && s["channels"] == 1).await;

    // Publish until a second's sample shows it: each stats event covers
    // the second before it.
    let publishing = async {
        loop {
            assert_eq!(server.publish("news", json!({"n": 1})).await.0, 200);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let moved = stream.until("stats", |s| {
        s["publications_per_s"].as_f64().unwrap() > 0.0 && s["deliveries_per_s"].as_f64().unwrap() > 0.0
    });
    tokio::select! {
        stats = moved => assert!(stats["publications_per_s"].as_f64().unwrap() >= 1.0, "{stats}"),
        () = publishing => unreachable!(),
    }
}

#[tokio::test]
async fn the_stream_tails_the_publications_of_one_channel() {
    let server = TestServer::start().await;
    let mut stream = EventStream::open(&server, "?channel=news").await;
    stream.until("stats", |_| true).await;
    let (_, channels) = server.get("/api/channels").await;
    assert_eq!(channels["channels"][0]["channel"], "news", "the tail is a subscriber: {channels}");

    server.publish("other", json!("not this one")).await;
    let (status, published) = server.publish("news", json!({"hello": "tail"})).await;
    assert_eq!(status, 200);
    let publication = stream.until("publication", |_| true).await;
    assert_eq!(publication["type"], "publication");
    assert_eq!(publication["channel"], "news");
    assert_eq!(publication["data"], json!({"hello": "tail"}));
    assert_eq!(publication["offset"], published["offset"]);

    let refused = http()
        .get(server.url("/api/admin/stream?channel=bad%20name"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_channel");
}

#[tokio::test]
async fn a_closed_stream_unsubscribes_its_tail() {
    let server = TestServer::start().await;
    let mut stream = EventStream::open(&server, "?channel=news").await;
    stream.until("stats", |_| true).await;
    drop(stream);
    eventually("the tail to leave the channel", || async {
        server.get("/api/channels").await.1["channels"] == json!([])
    })
    .await;
}

/// A webhook receiver whose answer can be changed, reporting each POST
/// with the status it answered.
async fn switchable_receiver(status: Arc<AtomicU16>) -> (String, mpsc::Receiver<(u16, Value)>) {
    type Shared = (Arc<AtomicU16>, mpsc::Sender<(u16, Value)>);
    async fn receive(State((status, posts)): State<Shared>, body: Bytes) -> StatusCode {
        let answer = status.load(Ordering::SeqCst);
        let _ = posts.send((answer, serde_json::from_slice(&body).unwrap())).await;
        StatusCode::from_u16(answer).unwrap()
    }
    let (tx, rx) = mpsc::channel(1000);
    let app = axum::Router::new().route("/hooks", axum::routing::post(receive)).with_state((status, tx));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

fn app_with_webhook(url: &str) -> String {
    format!(
        "[[pusher.apps]]\nid = \"app-1\"\nkey = \"key-1\"\nsecret = \"secret-1\"\n\
         [[pusher.apps.webhooks]]\nurl = \"{url}\"\nevents = [\"channel_occupied\"]\n"
    )
}

fn short_retries(options: &mut WebhookOptions) {
    options.batch_window = Duration::from_millis(20);
    options.retry_initial = Duration::from_millis(20);
    options.retry_max_delay = Duration::from_millis(40);
    options.retry_for = Duration::from_millis(150);
}

/// The next POST the receiver answered with `status`.
async fn next_answered(posts: &mut mpsc::Receiver<(u16, Value)>, status: u16) -> Value {
    let wait = async {
        loop {
            let (answered, body) = posts.recv().await.unwrap();
            if answered == status {
                return body;
            }
        }
    };
    tokio::time::timeout(WAIT, wait).await.expect("no such webhook POST in time")
}

#[tokio::test]
async fn a_dead_letter_has_an_id_and_replaying_it_delivers_the_same_events_again() {
    let status = Arc::new(AtomicU16::new(500));
    let (url, mut posts) = switchable_receiver(status.clone()).await;
    let server = TestServer::with_webhooks(&app_with_webhook(&url), short_retries).await;
    let _subscriber = crate::pusher_api::native_subscriber(&server, "news").await;

    let letters = tokio::time::timeout(WAIT, async {
        loop {
            let letters = server.get("/api/webhooks/dead_letters").await.1["dead_letters"].clone();
            if letters.as_array().is_some_and(|l| !l.is_empty()) {
                return letters;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("no dead letter was written");
    let letter = &letters[0];
    let id = letter["id"].as_str().expect("the letter has an id").to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(letter["url"], url.as_str());
    let event = letter["events"][0].clone();
    assert_eq!(event["name"], "channel_occupied");

    status.store(200, Ordering::SeqCst);
    for _ in 0..2 {
        let (code, body) = server.post(&format!("/api/webhooks/dead_letters/{id}/replay"), json!(null)).await;
        assert_eq!((code, body), (202, json!({ "id": id, "events": 1 })));
        let delivered = next_answered(&mut posts, 200).await;
        assert_eq!(delivered["events"], json!([event]), "the same event, with the same id");
    }

    let (code, body) = server.post("/api/webhooks/dead_letters/no-such-id/replay", json!(null)).await;
    assert_eq!(code, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_dead_letter_whose_webhook_is_no_longer_configured_is_not_replayed() {
    let (url, _posts) = switchable_receiver(Arc::new(AtomicU16::new(200))).await;
    let server = TestServer::with_webhooks(&app_with_webhook(&url), short_retries).await;
    let file = DeadLetterFile::new(&server.app.settings.data_dir, DEAD_LETTER_FILE_MAX_BYTES);
    let id = "5b0e7c52-9c1f-4a57-8d8e-7f3c1a2b4c5d";
    let gone = json!({
        "id": id, "time_ms": 1, "app_id": "app-1", "url": "http://127.0.0.1:1/gone", "attempts": 3,
        "error": "HTTP 500", "events": [{"name": "channel_occupied", "id": "e1", "channel": "news"}],
    });
    let old =
        json!({ "time_ms": 1, "app_id": "app-1", "url": url, "attempts": 1, "error": "x", "events": [] });
    file.append(Bytes::from(gone.to_string())).await.unwrap();
    file.append(Bytes::from(old.to_string())).await.unwrap();

    let (_, listed) = server.get("/api/webhooks/dead_letters").await;
    assert_eq!(listed["dead_letters"][0], old, "a letter from before ids is listed as it is");
    let (code, body) = server.post(&format!("/api/webhooks/dead_letters/{id}/replay"), json!(null)).await;
    assert_eq!(code, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("no longer configured"), "{message}");
}
