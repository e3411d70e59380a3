//! Operating the server: health, readiness, metrics, OpenAPI, and the
//! graceful shutdown.

use serde_json::json;

use crate::support::{RawConn, TestServer, WAIT, http, metric_value};

#[tokio::test]
async fn health_ready_metrics_and_openapi_answer() {
    let server = TestServer::start().await;
    let health = http().get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = http().get(server.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    server.publish("m", json!(1)).await;
    let metrics = server.metrics().await;
    for name in ["fanfare_publications_total", "fanfare_connections", "fanfare_publish_fanout_seconds"] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
    let build_info = format!("fanfare_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"));
    assert_eq!(metric_value(&metrics, &build_info), 1.0);
    assert_eq!(metric_value(&metrics, "fanfare_history_append_seconds_count"), 1.0, "one publish, one group");
    assert_eq!(server.get("/api/history?channel=m").await.0, 200);
    let metrics = server.metrics().await;
    assert_eq!(metric_value(&metrics, "fanfare_history_read_seconds_count"), 1.0);
    let openapi: serde_json::Value =
        http().get(server.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(openapi["paths"]["/api/publish"].is_object(), "the OpenAPI document describes the API");
    server.stop().await;
}

#[tokio::test]
async fn socket_writes_and_frames_written_are_counted() {
    let server = TestServer::start().await;
    let mut conn = RawConn::connected(&server, None).await;
    conn.command(json!({"type": "subscribe", "channel": "w"})).await;
    // Each publication waited for, so each is its own write: more than one
    // thread's batch of 64 (the test runs on one thread).
    for n in 0..100 {
        server.publish("w", json!(n)).await;
        assert_eq!(conn.publications("w", 1).await[0]["data"], n);
    }
    let metrics = server.metrics().await;
    let writes = metric_value(&metrics, "fanfare_ws_writes_total");
    let frames = metric_value(&metrics, "fanfare_ws_frames_written_total");
    assert!(writes >= 64.0, "writes {writes}");
    assert!(frames >= writes, "frames {frames}, writes {writes}");
    server.stop().await;
}

/// One observation per socket write that carries a live publication;
/// replies and history replayed on subscribe are not deliveries.
#[tokio::test]
async fn each_write_of_a_live_publication_observes_its_delivery_latency() {
    let server = TestServer::start().await;
    let mut conn = RawConn::connected(&server, None).await;
    let reply = conn.command(json!({"type": "subscribe", "channel": "d"})).await;
    let epoch = reply["result"]["epoch"].clone();
    for n in 0..5 {
        server.publish("d", json!(n)).await;
        assert_eq!(conn.publications("d", 1).await[0]["data"], n);
    }
    let mut late = RawConn::connected(&server, None).await;
    let since = json!({"epoch": epoch, "offset": 0});
    let reply = late.command(json!({"type": "subscribe", "channel": "d", "since": since})).await;
    assert_eq!(reply["result"]["recovered"], true, "{reply}");
    assert_eq!(late.publications("d", 5).await.len(), 5, "history replayed");
    let metrics = server.metrics().await;
    assert_eq!(metric_value(&metrics, "fanfare_delivery_latency_seconds_count"), 5.0, "{metrics}");
    let seconds = metric_value(&metrics, "fanfare_delivery_latency_seconds_sum");
    assert!(seconds > 0.0 && seconds < 5.0 * WAIT.as_secs_f64(), "sum {seconds}");
    server.stop().await;
}

/// The gauges read off the node at each scrape.
#[tokio::test]
async fn a_scrape_reports_the_store_the_data_directory_disk_and_the_memory() {
    let server = TestServer::start().await;
    let metrics = server.metrics().await;
    assert_eq!(metric_value(&metrics, "fanfare_store_up"), 1.0);
    assert_eq!(metric_value(&metrics, "fanfare_outbox_frames"), 0.0);
    assert_eq!(metric_value(&metrics, "fanfare_outbox_frames_max"), 0.0);
    let disk = metric_value(&metrics, "fanfare_data_dir_disk_used_ratio");
    assert!(disk > 0.0 && disk <= 1.0, "disk {disk}");
    let memory = metric_value(&metrics, "fanfare_process_resident_memory_bytes");
    assert!(memory > 1_048_576.0, "memory {memory}");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_tells_clients_to_reconnect_stops_accepting_and_finishes() {
    let mut server = TestServer::start().await;
    let mut conn = RawConn::connected(&server, None).await;
    conn.command(json!({"type": "subscribe", "channel": "a"})).await;
    let addr = server.addr;
    let done = server.begin_shutdown();
    let (code, push) = conn.until_closed().await;
    assert_eq!(code, 4500);
    let push = push.expect("a disconnect push precedes the close");
    assert_eq!(push["reconnect"], true);
    assert!(push["reconnect_after_ms"].is_u64());
    tokio::time::timeout(WAIT, done).await.unwrap().unwrap().unwrap();
    let refused = tokio_tungstenite::connect_async(format!("ws://{addr}/connection/websocket")).await;
    assert!(refused.is_err(), "no new connections after shutdown");
}

/// A node near its connection limit says it is not ready (open connections
/// stay); at the limit it answers an upgrade 503 with `Retry-After`, native
/// and Pusher alike; a closed connection frees its place.
#[tokio::test]
async fn a_node_at_its_connection_limit_refuses_upgrades_and_is_not_ready_near_it() {
    let server = TestServer::with_config(
        "[limits]\nmax_connections = 3\nready_below_percent = 60\n\
         [[pusher.apps]]\nid = \"app-1\"\nkey = \"key-1\"\nsecret = \"secret-1\"\n",
    )
    .await;
    let ready = || async { server.get("/ready").await };
    let utilisation = || async {
        let text = server.metrics().await;
        metric_value(&text, "fanfare_connection_utilisation_ratio")
    };
    assert_eq!(ready().await.0, 200);
    assert_eq!(metric_value(&server.metrics().await, "fanfare_ready"), 1.0);
    let first = RawConn::connected(&server, None).await;
    assert_eq!(ready().await.0, 200, "1 of 3 is below 60 %");
    let mut second = RawConn::connected(&server, None).await;
    let (status, body) = ready().await;
    assert_eq!((status, body["status"].as_str()), (503, Some("near connection limit")));
    assert!((utilisation().await - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(
        metric_value(&server.metrics().await, "fanfare_ready"),
        0.0,
        "the gauge says what /ready says"
    );
    let third = RawConn::connected(&server, None).await;

    for path in ["/connection/websocket", "/app/key-1?protocol=7"] {
        let url = format!("ws://{}{path}", server.addr);
        let Err(tokio_tungstenite::tungstenite::Error::Http(response)) =
            tokio_tungstenite::connect_async(url).await
        else {
            panic!("a fourth connection on {path} was accepted");
        };
        assert_eq!(response.status().as_u16(), 503, "{path}");
        assert_eq!(response.headers()["retry-after"], "1");
    }
    let reply = second.command(json!({"type": "subscribe", "channel": "news"})).await;
    assert!(reply.get("result").is_some(), "an open connection keeps working: {reply}");

    drop((first, third));
    crate::support::eventually("the closed connections' places freed", || async { ready().await.0 == 200 })
        .await;
    let _again = RawConn::connected(&server, None).await;
    assert_eq!(ready().await.0, 503);
}

/// Opens, closes by reason, their durations and refused handshakes are
/// counted as they happen.
#[tokio::test]
async fn connection_opens_closes_and_refused_handshakes_are_counted() {
    let server =
        TestServer::with_config("[[pusher.apps]]\nid = \"app-1\"\nkey = \"key-1\"\nsecret = \"secret-1\"\n")
            .await;

    let mut leaving = RawConn::connected(&server, None).await;
    leaving.socket.close(None).await.unwrap();
    // Gone at once, so the server need not wait for the TCP close.
    drop(leaving);
    let mut rude = RawConn::connected(&server, None).await;
    rude.send_text("not json").await;
    assert_eq!(rude.until_closed().await.0, 4000);
    drop(rude);
    let (pusher, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/app/key-1?protocol=7", server.addr)).await.unwrap();
    drop(pusher);
    let (mut unknown, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/app/nope?protocol=7", server.addr)).await.unwrap();
    let _ = futures_util::StreamExt::next(&mut unknown).await;
    assert_eq!(http().get(server.ws_url().replace("ws://", "http://")).send().await.unwrap().status(), 400);

    let closed = |reason: &str| format!("fanfare_connections_closed_total{{reason=\"{reason}\"}}");
    crate::support::eventually("every close counted", || async {
        let text = server.metrics().await;
        text.contains(&closed("client_closed"))
            && text.contains(&closed("bad_frame"))
            && text.contains(&closed("client_gone"))
    })
    .await;
    let text = server.metrics().await;
    assert_eq!(metric_value(&text, "fanfare_connections_opened_total{protocol=\"native\"}"), 2.0);
    assert_eq!(
        metric_value(&text, "fanfare_connections_opened_total{protocol=\"pusher\"}"),
        1.0,
        "a refused one is not opened"
    );
    assert_eq!(metric_value(&text, &closed("client_closed")), 1.0);
    assert_eq!(metric_value(&text, &closed("bad_frame")), 1.0);
    assert_eq!(metric_value(&text, &closed("client_gone")), 1.0);
    assert_eq!(metric_value(&text, "fanfare_connection_duration_seconds_count"), 3.0);
    assert_eq!(metric_value(&text, "fanfare_handshake_failures_total{cause=\"app_not_found\"}"), 1.0);
    assert_eq!(
        metric_value(&text, "fanfare_handshake_failures_total{cause=\"not_a_websocket_upgrade\"}"),
        1.0
    );
}
