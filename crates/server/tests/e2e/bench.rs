//! `fanfare bench` at a tiny scale against a real in-process server:
//! every scenario runs end to end, nothing is lost, duplicated or
//! reordered, and the report carries its numbers. No timing is asserted.

use std::time::Duration;

use fanfare_bench::{BenchOptions, LiveReport, Protocol, PublishFrom, PusherApp, Report, Scenario};

use crate::support::{API_KEY, JWT_SECRET, TestServer};

const PUSHER_APP: &str = r#"
[[pusher.apps]]
id = "bench-app"
key = "bench-key"
secret = "bench-secret"
"#;

/// 20 connections, 50 publications, this process as the server's pid.
fn tiny(server: &TestServer, scenario: Scenario) -> BenchOptions {
    let mut options = BenchOptions::new(scenario, format!("http://{}", server.addr));
    options.api_key = Some(API_KEY.to_string());
    options.connections = 20;
    options.messages = Some(50);
    options.duration = Duration::from_secs(5);
    options.in_flight = 8;
    options.drain_timeout = Duration::from_secs(10);
    options.timeout = Some(Duration::from_secs(60));
    options.server_pid = Some(std::process::id());
    options.progress = false;
    options
}

async fn run(options: &BenchOptions) -> Report {
    let report = fanfare_bench::run(options).await.unwrap();
    println!("{report}");
    report
}

/// Every subscriber got every publication of its channel, once, in order.
fn assert_delivered_intact(report: &Report, expected: u64) {
    let delivery = report.delivery.as_ref().expect("a delivery report");
    assert_eq!(delivery.expected, expected, "{report}");
    assert_eq!(delivery.delivered, expected, "{report}");
    assert_eq!((delivery.lost, delivery.duplicated, delivery.out_of_order), (0, 0, 0), "{report}");
    assert_eq!(delivery.caught_up, delivery.subscribers, "{report}");
    assert_eq!(delivery.latency.count, expected, "every delivery has a latency");
    assert!(delivery.latency.p50_us > 0 && delivery.latency.max_us >= delivery.latency.p99_us);
    assert!(delivery.per_second > 0.0);
    // CPU time comes in 10 ms ticks: a tiny run may not use one, so only
    // the server's part of the report must be there.
    assert!(report.server.as_ref().is_some_and(|s| s.cpu_seconds >= 0.0), "{report}");
    assert!(report.integrity_ok());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_report_memory_per_connection_and_connect_rate() {
    let server = TestServer::start().await;
    let mut options = tiny(&server, Scenario::Idle);
    options.duration = Duration::from_millis(300);
    let report = run(&options).await;

    let connect = report.connect.as_ref().unwrap();
    assert_eq!((connect.attempted, connect.connected, connect.failed), (20, 20, 0));
    assert!(connect.per_second > 0.0);
    let server_report = report.server.as_ref().expect("--server-pid gives a server report");
    assert_eq!(server_report.pid, std::process::id());
    assert!(server_report.rss_before_kib > 0 && server_report.rss_per_connection_kib.is_some());
    assert!(report.tool.rss_per_connection_kib.is_some());
    assert!(report.delivery.is_none());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_delivers_every_publication_to_every_subscriber_in_order() {
    let server = TestServer::start().await;
    let report = run(&tiny(&server, Scenario::Fanout)).await;

    let publish = report.publish.as_ref().unwrap();
    assert_eq!((publish.acked, publish.failed), (50, 0));
    assert!(publish.ack_latency.count == 50);
    assert_delivered_intact(&report, 20 * 50);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_at_a_fixed_rate_publishes_for_the_duration() {
    let server = TestServer::start().await;
    let mut options = tiny(&server, Scenario::Fanout);
    options.messages = None;
    options.rate = 100.0;
    options.duration = Duration::from_millis(500);
    let report = run(&options).await;

    let acked = report.publish.as_ref().unwrap().acked;
    assert!(acked > 0 && acked <= 50, "100/s for 0.5 s published {acked}");
    assert_delivered_intact(&report, 20 * acked);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_spread_publications_over_small_channels() {
    let server = TestServer::start().await;
    let mut options = tiny(&server, Scenario::Rooms);
    options.connections = 21;
    options.messages = Some(70);
    let report = run(&options).await;

    assert_eq!(report.channels, 7, "3 subscribers per room by default");
    assert_delivered_intact(&report, 70 * 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_from_clients_is_checked_like_publishing_from_the_api() {
    let server = TestServer::with_config("[namespaces.bench]\npublish = \"anyone\"\n").await;
    let mut options = tiny(&server, Scenario::Fanout);
    options.publish_from = PublishFrom::Clients;
    options.publishers = 2;
    options.channel_prefix = "bench:".into();
    let report = run(&options).await;

    assert_eq!(report.publish.as_ref().unwrap().acked, 50);
    assert_delivered_intact(&report, 20 * 50);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_storm_recovers_every_client_without_gap_or_duplicate() {
    let server = TestServer::start().await;
    let mut options = tiny(&server, Scenario::ReconnectStorm);
    options.messages = None;
    options.rate = 100.0;
    options.duration = Duration::from_millis(1500);
    options.cut_after = Duration::from_millis(500);
    options.backoff_initial = Duration::from_millis(20);
    options.backoff_max = Duration::from_millis(200);
    let report = run(&options).await;

    let recovery = report.recovery.as_ref().unwrap();
    assert_eq!((recovery.clients, recovery.recovered, recovery.recovered_false), (20, 20, 0), "{report}");
    assert!(recovery.all_recovered_after_ms.is_some());
    assert_eq!(recovery.time_to_recover.count, 20);
    assert!(recovery.reconnect_attempts >= 20);
    let delivery = report.delivery.as_ref().unwrap();
    assert_eq!(delivery.reconnects, 20, "one reconnect each, for the cut");
    let acked = report.publish.as_ref().unwrap().acked;
    assert!(acked > 50, "publishing went on through the storm: {acked}");
    assert_delivered_intact(&report, 20 * acked);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_through_the_server_appends_then_reads_gap_free_pages() {
    let server = TestServer::start().await;
    let mut options = tiny(&server, Scenario::History);
    options.channels = Some(5);
    options.duration = Duration::from_millis(300);
    options.read_limit = 10;
    let report = run(&options).await;

    let history = report.history.as_ref().unwrap();
    assert_eq!(history.mode, "http");
    assert_eq!((history.appends, history.append_failures), (50, 0));
    assert_eq!(history.append_latency.count, 50);
    assert!(history.reads > 0 && history.read_failures == 0, "{report}");
    assert_eq!(history.publications_read, history.reads * 10, "each channel holds 10: full pages");
    assert!(history.reads_per_second > 0.0 && history.read_latency.count == history.reads);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_in_process_measures_the_embedded_store_and_cleans_up() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut options = tiny(&server, Scenario::History);
    options.data_dir = Some(dir.path().to_path_buf());
    options.api_key = None;
    options.messages = Some(200);
    options.channels = Some(4);
    options.duration = Duration::from_millis(300);
    let report = run(&options).await;

    let history = report.history.as_ref().unwrap();
    assert_eq!(history.mode, "embedded");
    assert_eq!((history.appends, history.append_failures), (200, 0));
    assert!(history.reads > 0 && history.read_failures == 0, "{report}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the store's directory is removed");
    server.stop().await;
}

/// A small fan-out over the Pusher protocol, as the app of `PUSHER_APP`.
fn pusher_options(server: &TestServer) -> BenchOptions {
    let mut options = tiny(server, Scenario::Fanout);
    options.protocol = Protocol::Pusher;
    options.api_key = None;
    options.pusher_app =
        Some(PusherApp { id: "bench-app".into(), key: "bench-key".into(), secret: "bench-secret".into() });
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pusher_fanout_is_measured_the_same_way() {
    let server = TestServer::with_config(PUSHER_APP).await;
    let report = run(&pusher_options(&server)).await;

    assert_eq!(report.publish.as_ref().unwrap().acked, 50, "{report}");
    assert_delivered_intact(&report, 20 * 50);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pusher_batches_of_ten_deliver_and_count_every_event() {
    let server = TestServer::with_config(PUSHER_APP).await;
    let mut options = pusher_options(&server);
    options.pusher_batch = Some(10);
    // Five full batches and a short one.
    options.messages = Some(55);
    let report = run(&options).await;

    assert_eq!(report.pusher_batch, Some(10));
    let publish = report.publish.as_ref().unwrap();
    assert_eq!((publish.attempted, publish.acked, publish.failed), (55, 55, 0), "{report}");
    assert_eq!(publish.ack_latency.count, 55, "every event is acknowledged with its batch");
    assert_delivered_intact(&report, 20 * 55);
    server.stop().await;
}

#[tokio::test]
async fn a_host_outside_loopback_is_refused_before_any_connection() {
    let options = BenchOptions::new(Scenario::Idle, "http://192.0.2.1:6001");
    let error = fanfare_bench::run(&options).await.unwrap_err();
    assert!(error.to_string().contains("--allow-remote"), "{error}");
}

/// A room of 200 viewers on `live:stage` for 3 s: 100 comments/s from two
/// publishing connections, a priority publication every 250 ms, viewers
/// with signed tokens of their own.
fn live_room(server: &TestServer, reaction_rate: f64) -> BenchOptions {
    let mut options = tiny(server, Scenario::Live);
    options.connections = 200;
    options.messages = None;
    options.rate = 100.0;
    options.publishers = 2;
    options.duration = Duration::from_secs(3);
    options.jwt_secret = Some(JWT_SECRET.to_string());
    options.live.reaction_rate = reaction_rate;
    options.live.priority_interval = Duration::from_millis(250);
    options
}

/// Every priority publication reached every viewer once, in order.
fn assert_priority_reached_everyone(report: &Report) -> &LiveReport {
    let live = report.live.as_ref().expect("a live report");
    assert_eq!(live.viewers, 200, "{report}");
    assert!(live.priority.sent >= 8 && live.priority.failed == 0, "{report}");
    assert_eq!(live.priority.lost, 0, "{report}");
    assert!(live.priority.received_by_every_viewer, "{report}");
    assert_eq!(live.priority.received, 200 * live.priority.sent, "{report}");
    assert_eq!((live.priority.duplicated, live.priority.out_of_order), (0, 0), "{report}");
    assert_eq!(live.priority.latency.count, live.priority.received, "every one has a latency");
    assert_eq!(live.caught_up, 200, "{report}");
    assert!(live.deliveries_per_second > 0.0 && live.server_cores.is_some(), "{report}");
    live
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_room_without_shaping_delivers_every_comment_to_every_viewer() {
    let server = TestServer::with_config("[namespaces.live]\npublish = \"anyone\"\n").await;
    let report = run(&live_room(&server, 0.0)).await;

    let live = assert_priority_reached_everyone(&report);
    let comments = &live.ordinary;
    assert!(comments.published > 250 && comments.failed == 0, "{report}");
    assert_eq!(comments.delivered, 200 * comments.published, "{report}");
    assert_eq!(comments.skipped, 0, "no shaping, nothing skipped");
    assert!(comments.adds_up && comments.unreported == 0, "{report}");
    assert_eq!(live.priority.flagged, 0, "no shaping, no lane marks");
    assert!(live.consistent(), "{report}");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shaped_live_room_keeps_viewers_in_budget_and_accounts_for_every_comment() {
    let server = TestServer::with_config(
        "[namespaces.live]\npublish = \"anyone\"\n[namespaces.live.shaping]\nbudget = 20\nwindow = \"1s\"\nreactions = \"250ms\"\n",
    )
    .await;
    let report = run(&live_room(&server, 100.0)).await;

    let live = assert_priority_reached_everyone(&report);
    assert_eq!(live.priority.flagged, live.priority.received, "the server marks its lane");
    let comments = &live.ordinary;
    assert!(comments.published > 250 && comments.failed == 0, "{report}");
    assert!(comments.skipped > 0, "100/s against a budget of 20/s: {report}");
    assert!(comments.adds_up, "delivered + skipped = published for every viewer: {report}");
    assert_eq!((comments.unreported, comments.overreported, comments.repeated), (0, 0, 0), "{report}");
    assert_eq!(comments.flagged_priority, 0, "{report}");
    // 20 per 1 s window; a wall-clock second may straddle two windows.
    assert!(comments.per_viewer_per_second_max <= 20.0 * 1.5, "{report}");
    assert!(comments.busiest_second_max <= 2 * 20, "{report}");
    let reactions = &live.reactions;
    assert!(reactions.sent > 150 && reactions.refused == 0, "{report}");
    assert_eq!(reactions.acked, reactions.sent, "{report}");
    assert!(reactions.aggregates > 0, "{report}");
    assert_eq!(
        reactions.received_per_viewer_min, reactions.sent,
        "every viewer counted every reaction: {report}"
    );
    assert_eq!(reactions.received_per_viewer_max, reactions.sent, "{report}");
    assert!(live.consistent(), "{report}");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    server.stop().await;
}

/// A messenger of 40 users and 200 direct channels (10 per user), 40
/// messages/s from the users for 3 s, each user on its feed only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_messenger_notices_every_message_on_the_other_members_feed_and_reads_catch_up() {
    let server = TestServer::start().await;
    let mut options = tiny(&server, Scenario::Dm);
    options.connections = 40;
    options.channels = Some(200);
    options.messages = None;
    options.rate = 40.0;
    options.duration = Duration::from_secs(3);
    options.jwt_secret = Some(JWT_SECRET.to_string());
    let report = run(&options).await;

    let dm = report.dm.as_ref().expect("a dm report");
    assert_eq!(dm.users, 40, "{report}");
    let channels = &dm.channels;
    assert_eq!((channels.created, channels.failed), (200, 0), "{report}");
    assert_eq!(channels.per_user, 10.0);
    assert_eq!(channels.notices_appended, 400, "both members noticed of each first message: {report}");
    assert_eq!(channels.notices_dropped, 0, "{report}");
    assert!(channels.server_rss_per_channel_bytes.is_some() && dm.server_rss_per_user_bytes.is_some());
    assert!(channels.second_half_rss_per_channel_bytes.is_some(), "{report}");

    let messages = &dm.messages;
    assert!(messages.acked >= 60 && messages.failed == 0, "about 120 messages: {report}");
    assert_eq!(messages.sent, messages.acked, "{report}");
    assert_eq!(messages.notices_received, messages.acked, "one notice per message: {report}");
    assert_eq!(messages.notices_appended, messages.acked, "{report}");
    assert_eq!(messages.latency.count, messages.notices_received, "every notice has a latency");
    assert_eq!(messages.untimed, 0, "{report}");
    assert!(messages.drained && dm.intact(), "{report}");
    assert!(messages.deliveries_per_second > 0.0 && messages.server_cores.is_some(), "{report}");

    let catch_up = &dm.catch_up;
    assert_eq!((catch_up.listed, catch_up.list_refused), (40, 0), "{report}");
    // Every user is in 10 channels, each with an unread first message,
    // except where its own later message moved its cursor.
    assert!(catch_up.unread_channels > 200 && catch_up.unread_channels <= 400, "{report}");
    assert_eq!(catch_up.reads_sent, catch_up.unread_channels, "{report}");
    assert_eq!(catch_up.reads_moved, catch_up.reads_sent, "each read moved its cursor: {report}");
    assert_eq!((catch_up.reads_not_moved, catch_up.reads_refused), (0, 0), "{report}");
    assert!(catch_up.reads_per_second > 0.0, "{report}");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    server.stop().await;
}

#[tokio::test]
async fn a_messenger_needs_signed_users_and_distinct_pairs() {
    let server = TestServer::start().await;
    let mut options = tiny(&server, Scenario::Dm);
    let refused = |options: &BenchOptions| {
        let options = options.clone();
        async move { fanfare_bench::run(&options).await.unwrap_err().to_string() }
    };
    assert!(refused(&options).await.contains("--jwt-secret"));
    options.jwt_secret = Some(JWT_SECRET.to_string());
    options.channels = Some(200);
    assert!(refused(&options).await.contains("distinct two-member channels"), "20 users, 10 rounds");
    server.stop().await;
}
