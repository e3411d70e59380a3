//! The admission limits (`limits.max_handshakes_per_second`,
//! `max_handshakes_per_ip_per_second`, `max_connections_per_ip`,
//! `max_connections_per_user`, `trusted_proxies`), each just under and
//! just over, on both protocols' upgrade paths: refused with the
//! documented status, code, `Retry-After` and `retry_after_ms`, and let in
//! again once the bucket refilled or a connection closed.

use std::time::Duration;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};

use crate::pusher_api::PusherConn;
use crate::support::{RawConn, TestServer, eventually, metric_value, token};

const APP: &str = "[[pusher.apps]]\nid = \"app-1\"\nkey = \"key-1\"\nsecret = \"secret-1\"\n";

/// A refused upgrade, as the client saw it.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub status: u16,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
    /// The JSON body's `error`.
    pub error: Value,
}

impl Refusal {
    pub fn retry_after_ms(&self) -> u64 {
        self.error["retry_after_ms"].as_u64().unwrap_or_else(|| panic!("no retry_after_ms: {self:?}"))
    }
}

/// Tries one WebSocket upgrade at `url`, as from `forwarded_for` when set;
/// the open socket, or how it was refused.
pub(crate) async fn try_upgrade(
    url: &str,
    forwarded_for: Option<&str>,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Refusal,
> {
    let mut request = url.into_client_request().unwrap();
    if let Some(addresses) = forwarded_for {
        request.headers_mut().insert("x-forwarded-for", HeaderValue::from_str(addresses).unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => {
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|value| value.to_str().unwrap().parse::<u64>().expect("Retry-After in whole seconds"));
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or(b"{}")).unwrap();
            Err(Refusal { status: response.status().as_u16(), retry_after, error: body["error"].clone() })
        }
        Err(other) => panic!("the upgrade failed without an HTTP answer: {other}"),
    }
}

fn native_url(server: &TestServer) -> String {
    server.ws_url()
}

fn pusher_url(server: &TestServer) -> String {
    format!("ws://{}/app/key-1?protocol=7&client=js&version=8.6.0", server.addr)
}

/// The value of `fanfare_handshake_failures_total{cause}`, 0 when never counted.
async fn handshake_failures(server: &TestServer, cause: &str) -> f64 {
    let metrics = server.metrics().await;
    let name = format!("fanfare_handshake_failures_total{{cause=\"{cause}\"}}");
    if metrics.contains(&format!("{name} ")) { metric_value(&metrics, &name) } else { 0.0 }
}

fn assert_refused(refusal: &Refusal, status: u16, code: &str) {
    assert_eq!(refusal.status, status, "{refusal:?}");
    assert_eq!(refusal.error["code"], code, "{refusal:?}");
    assert_eq!(refusal.error["retry"], true, "{refusal:?}");
    assert!(refusal.error["message"].as_str().is_some_and(|m| !m.is_empty()), "{refusal:?}");
    let ms = refusal.retry_after_ms();
    assert!(ms > 0, "{refusal:?}");
    assert_eq!(
        refusal.retry_after,
        Some(ms.div_ceil(1000).max(1)),
        "Retry-After is retry_after_ms rounded up"
    );
}

#[tokio::test]
async fn an_address_over_its_handshake_rate_gets_429_rate_limited_until_its_bucket_refills() {
    let server = TestServer::with_config(&format!(
        "[limits]\nmax_handshakes_per_ip_per_second = 4\nmax_handshakes_per_second = 0\n{APP}"
    ))
    .await;
    // Both protocols' upgrades draw on the one bucket of 127.0.0.1.
    let mut open = Vec::new();
    for url in [native_url(&server), pusher_url(&server), native_url(&server), pusher_url(&server)] {
        open.push(try_upgrade(&url, None).await.expect("under the rate"));
    }
    for url in [native_url(&server), pusher_url(&server)] {
        let refusal = try_upgrade(&url, None).await.unwrap_err();
        assert_refused(&refusal, 429, "rate_limited");
        assert!(refusal.retry_after_ms() <= 250, "one cell of 4/s: {refusal:?}");
    }
    assert_eq!(handshake_failures(&server, "handshake_rate_ip").await, 2.0);

    // A client that waits what it was told gets in.
    let refusal = try_upgrade(&native_url(&server), None).await.unwrap_err();
    tokio::time::sleep(Duration::from_millis(refusal.retry_after_ms())).await;
    try_upgrade(&native_url(&server), None).await.expect("the bucket refilled a cell");
}

#[tokio::test]
async fn a_node_over_its_handshake_rate_answers_503_unavailable_with_a_spread_retry_after() {
    let server = TestServer::with_config(&format!("[limits]\nmax_handshakes_per_second = 3\n{APP}")).await;
    let mut open = Vec::new();
    for url in [native_url(&server), pusher_url(&server), native_url(&server)] {
        open.push(try_upgrade(&url, None).await.expect("under the rate"));
    }
    let mut waits = Vec::new();
    for url in [native_url(&server), pusher_url(&server)] {
        let refusal = try_upgrade(&url, None).await.unwrap_err();
        assert_refused(&refusal, 503, "unavailable");
        // At least a second, spread over the next one.
        assert!((1000..2400).contains(&refusal.retry_after_ms()), "{refusal:?}");
        waits.push(refusal.retry_after_ms());
    }
    assert_eq!(handshake_failures(&server, "handshake_rate_node").await, 2.0);

    tokio::time::sleep(Duration::from_millis(waits[0])).await;
    try_upgrade(&pusher_url(&server), None).await.expect("the node's bucket refilled");
    let mut conn = RawConn::connected(&server, None).await;
    assert!(conn.command(json!({"type": "subscribe", "channel": "c"})).await.get("result").is_some());
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_and_each_ipv6_64_has_its_own_bucket() {
    let server = TestServer::with_config(
        "[limits]\nmax_handshakes_per_ip_per_second = 1\ntrusted_proxies = [\"127.0.0.1\"]\n",
    )
    .await;
    let url = native_url(&server);
    let _a = try_upgrade(&url, Some("203.0.113.1")).await.expect("first of 203.0.113.1");
    let refusal = try_upgrade(&url, Some("198.51.100.9, 203.0.113.1")).await.unwrap_err();
    assert_refused(&refusal, 429, "rate_limited");
    let _b = try_upgrade(&url, Some("203.0.113.2")).await.expect("another client behind the proxy");

    let _c = try_upgrade(&url, Some("2001:db8:0:1::1")).await.expect("first of its /64");
    let refusal = try_upgrade(&url, Some("2001:db8:0:1::ffff")).await.unwrap_err();
    assert_refused(&refusal, 429, "rate_limited");
    let _d = try_upgrade(&url, Some("2001:db8:0:2::1")).await.expect("the next /64 is another client");

    // The proxy's own address (no header) is one more client, 127.0.0.1.
    let _e = try_upgrade(&url, None).await.expect("the proxy itself");
}

#[tokio::test]
async fn an_untrusted_peer_cannot_pick_its_address_with_x_forwarded_for() {
    let server = TestServer::with_config("[limits]\nmax_handshakes_per_ip_per_second = 1\n").await;
    let url = native_url(&server);
    let _a = try_upgrade(&url, Some("203.0.113.1")).await.unwrap();
    let refusal = try_upgrade(&url, Some("203.0.113.2")).await.unwrap_err();
    assert_refused(&refusal, 429, "rate_limited");
}

#[tokio::test]
async fn an_address_holding_its_most_connections_gets_429_too_many_connections_until_one_closes() {
    let server = TestServer::with_config(&format!("[limits]\nmax_connections_per_ip = 2\n{APP}")).await;
    let first = RawConn::connected(&server, None).await;
    let _second = PusherConn::open(&server, "key-1").await;
    for url in [native_url(&server), pusher_url(&server)] {
        let refusal = try_upgrade(&url, None).await.unwrap_err();
        assert_refused(&refusal, 429, "too_many_connections");
        assert_eq!(refusal.retry_after_ms(), 5000);
    }
    assert_eq!(handshake_failures(&server, "connections_per_ip").await, 2.0);

    drop(first);
    eventually("the closed connection to be uncounted", || async {
        try_upgrade(&native_url(&server), None).await.is_ok()
    })
    .await;
}

#[tokio::test]
async fn a_user_holding_its_most_connections_is_refused_at_connect_with_close_4004() {
    let server = TestServer::with_config("[limits]\nmax_connections_per_user = 2\n").await;
    let alice = token("alice", json!({}));
    let first = RawConn::connected(&server, Some(&alice)).await;
    let _second = RawConn::connected(&server, Some(&alice)).await;
    let _anonymous = [RawConn::connected(&server, None).await, RawConn::connected(&server, None).await];
    let _anonymous_third = RawConn::connected(&server, None).await;
    let _bob = RawConn::connected(&server, Some(&token("bob", json!({})))).await;

    let mut third = RawConn::open(&server).await;
    let reply = third.command(json!({"type": "connect", "token": alice})).await;
    let error = &reply["error"];
    assert_eq!(error["code"], "too_many_connections", "{reply}");
    assert_eq!(
        (error["retry"].clone(), error["retry_after_ms"].clone()),
        (json!(true), json!(5000)),
        "{reply}"
    );
    let (code, disconnect) = third.until_closed().await;
    assert_eq!(code, 4004);
    assert_eq!(disconnect.expect("a disconnect push")["code"], 4004);

    drop(first);
    eventually("alice's closed connection to be uncounted", || async {
        let mut again = RawConn::open(&server).await;
        again.command(json!({"type": "connect", "token": alice})).await.get("result").is_some()
    })
    .await;
}

#[tokio::test]
async fn a_pusher_user_holding_its_most_connections_gets_pusher_error_4004_and_close_4004() {
    let server = TestServer::with_config(&format!("[limits]\nmax_connections_per_user = 1\n{APP}")).await;
    let mut first = PusherConn::open(&server, "key-1").await;
    first.sign_in("alice").await;
    let mut other = PusherConn::open(&server, "key-1").await;
    other.sign_in("bob").await;

    let mut second = PusherConn::open(&server, "key-1").await;
    let user_data = json!({"id": "alice"}).to_string();
    let signature =
        fanfare_protocol::pusher::sign("secret-1", &format!("{}::user::{user_data}", second.socket_id));
    let data = json!({"auth": format!("key-1:{signature}"), "user_data": user_data});
    second.send(json!({"event": "pusher:signin", "data": data})).await;
    let error = second.next_event("pusher:error").await;
    assert_eq!(error["data"]["code"], 4004, "{error}");
    assert!(error["data"]["message"].as_str().unwrap().contains("most connections"), "{error}");
    loop {
        match second.next().await {
            Ok(_) => {}
            Err(code) => break assert_eq!(code, 4004),
        }
    }

    drop(first);
    eventually("alice's closed connection to be uncounted", || async {
        let mut again = PusherConn::open(&server, "key-1").await;
        let signature =
            fanfare_protocol::pusher::sign("secret-1", &format!("{}::user::{user_data}", again.socket_id));
        let data = json!({"auth": format!("key-1:{signature}"), "user_data": user_data});
        again.send(json!({"event": "pusher:signin", "data": data})).await;
        matches!(again.next().await, Ok(frame) if frame["event"] == "pusher:signin_success")
    })
    .await;
}
