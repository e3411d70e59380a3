//! The client against a fake server the test drives step by step.

mod fake_server;

use std::time::Duration;

use fake_server::{FakeConnection, FakeServer, PATIENCE};
use fanfare_client::{
    Client, ClientError, ClientOptions, ConnectionState, Epoch, ErrorCode, ErrorInfo, HistoryParams,
    HistoryResult, PublishOptions, PublishResult, StreamPosition, Subscription, SubscriptionEvent,
    UnsubscribeReason,
};
use fanfare_protocol::CloseCode;
use fanfare_protocol::native::{self, Command, CommandBody};
use tokio::time::timeout;

async fn connected(server: &mut FakeServer) -> (Client, FakeConnection) {
    let options = server.options();
    connected_with(server, options).await
}

async fn connected_with(server: &mut FakeServer, options: ClientOptions) -> (Client, FakeConnection) {
    let (client, connection) = tokio::join!(Client::connect(options), async {
        let mut connection = server.accept().await;
        connection.accept_connect("c1").await;
        connection
    });
    (client.expect("connect"), connection)
}

/// Subscribes to `channel`; the server answers with the channel at `(e1, offset)`.
async fn subscribed(
    client: &Client,
    connection: &mut FakeConnection,
    channel: &str,
    offset: u64,
) -> Subscription {
    let (subscription, _since) =
        tokio::join!(client.subscribe(channel, None), connection.accept_subscribe("e1", offset, None));
    let mut subscription = subscription.expect("subscribe");
    assert!(matches!(next_event(&mut subscription).await, SubscriptionEvent::Subscribed { .. }));
    subscription
}

async fn next_event(subscription: &mut Subscription) -> SubscriptionEvent {
    timeout(PATIENCE, subscription.next()).await.expect("no event in time").expect("subscription ended")
}

async fn next_offset(subscription: &mut Subscription) -> u64 {
    match next_event(subscription).await {
        SubscriptionEvent::Publication { publication, .. } => publication.offset,
        other => panic!("expected a publication, got {other:?}"),
    }
}

async fn wait_for_state(client: &Client, wanted: impl Fn(&ConnectionState) -> bool) -> ConnectionState {
    let mut states = client.state_changes();
    let state = timeout(PATIENCE, states.wait_for(|state| wanted(state))).await.expect("state in time");
    state.expect("state sender alive").clone()
}

fn position(epoch: &str, offset: u64) -> StreamPosition {
    StreamPosition::new(Epoch::new(epoch), offset)
}

#[tokio::test]
async fn connect_sends_the_token_and_exposes_the_connect_result() {
    let mut server = FakeServer::start().await;
    let options = ClientOptions { token: Some("jwt".to_string()), ..server.options() };
    let (client, _connection) = tokio::join!(Client::connect(options), async {
        let mut connection = server.accept().await;
        let command = connection.recv().await;
        assert_eq!(command.body, CommandBody::Connect { token: Some("jwt".to_string()) });
        let result = native::ConnectResult {
            client: "c9".into(),
            user: "alice".into(),
            version: "1".into(),
            ping_interval_ms: 25_000,
        };
        connection.reply(command.id, &result).await;
        connection
    });
    let client = client.unwrap();
    assert_eq!(client.user(), "alice");
    assert_eq!(client.connect_result().client, "c9");
    assert_eq!(client.state(), ConnectionState::Connected { client_id: "c9".into() });
}

#[tokio::test]
async fn a_refused_connect_surfaces_as_a_server_error_with_its_code() {
    let mut server = FakeServer::start().await;
    let (client, _connection) = tokio::join!(Client::connect(server.options()), async {
        let mut connection = server.accept().await;
        let (id, _token) = connection.expect_connect().await;
        connection.reply_error(id, ErrorInfo::new(ErrorCode::TokenExpired, "token expired")).await;
        connection
    });
    match client {
        Err(ClientError::Server(info)) => assert_eq!(info.code, ErrorCode::TokenExpired),
        other => panic!("expected a server error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_close_during_connect_surfaces_with_its_close_code() {
    let mut server = FakeServer::start().await;
    let (client, ()) = tokio::join!(Client::connect(server.options()), async {
        let mut connection = server.accept().await;
        connection.expect_connect().await;
        connection.close(CloseCode::Unauthorized.code(), "unauthorized").await;
    });
    assert!(matches!(client, Err(ClientError::Closed { code: 4001, .. })), "{client:?}");
}

#[tokio::test]
async fn an_unreachable_server_is_a_connect_error_and_a_bad_url_an_invalid_url() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/connection", listener.local_addr().unwrap());
    drop(listener);
    let result = Client::connect(ClientOptions::new(url)).await;
    assert!(matches!(result, Err(ClientError::Connect(_))), "{result:?}");
    let result = Client::connect(ClientOptions::new("not a url")).await;
    assert!(matches!(result, Err(ClientError::InvalidUrl { .. })), "{result:?}");
}

#[tokio::test]
async fn subscribing_yields_subscribed_then_publications_and_tracks_the_position() {
    let mut server = FakeServer::start().await;
    let (client, mut connection) = connected(&mut server).await;
    let (subscription, since) =
        tokio::join!(client.subscribe("news", None), connection.accept_subscribe("e1", 4, None));
    assert_eq!(since, None);
    let mut news = subscription.unwrap();
    let subscribed = SubscriptionEvent::Subscribed { position: position("e1", 4), recovered: None };
    assert_eq!(next_event(&mut news).await, subscribed);
    assert_eq!(news.position(), &position("e1", 4));
    connection.publish("news", "e1", 5).await;
    assert_eq!(next_offset(&mut news).await, 5);
    assert_eq!(news.position(), &position("e1", 5));
}

#[tokio::test]
async fn publish_and_history_return_the_decoded_results() {
    let mut server = FakeServer::start().await;
    let (client, mut connection) = connected(&mut server).await;
    let options = PublishOptions { idempotency_key: Some("k1".into()), ephemeral: false };
    let data = serde_json::json!({"a": 1});
    let (published, ()) = tokio::join!(client.publish("news", &data, options), async {
        let command = connection.recv().await;
        let CommandBody::Publish { data, idempotency_key, ephemeral, .. } = command.body else { panic!() };
        assert_eq!((data.as_str(), idempotency_key.as_deref(), ephemeral), (r#"{"a":1}"#, Some("k1"), false));
        let result = PublishResult { epoch: Some(Epoch::new("e1")), offset: Some(7) };
        connection.reply(command.id, &result).await;
    });
    assert_eq!(published.unwrap().offset, Some(7));
    let (history, ()) = tokio::join!(client.history("news", HistoryParams::default()), async {
        let command = connection.recv().await;
        let result = HistoryResult { epoch: Epoch::new("e1"), top_offset: 7, publications: vec![] };
        connection.reply(command.id, &result).await;
    });
    assert_eq!(history.unwrap().top_offset, 7);
}

#[tokio::test]
async fn after_the_socket_drops_the_client_resubscribes_from_the_last_delivered_position() {
    let mut server = FakeServer::start().await;
    let (client, mut connection) = connected(&mut server).await;
    let mut news = subscribed(&client, &mut connection, "news", 0).await;
    for offset in 1..=3 {
        connection.publish("news", "e1", offset).await;
        assert_eq!(next_offset(&mut news).await, offset);
    }
    connection.drop_abruptly();

    let mut connection = server.accept().await;
    connection.accept_connect("c2").await;
    let since = connection.accept_subscribe("e1", 5, Some(true)).await;
    assert_eq!(since, Some(position("e1", 3)));
    // The replay may overlap what the client already has: only 4 and 5 are new.
    for offset in [3, 4, 5] {
        connection.publish("news", "e1", offset).await;
    }
    let subscribed = SubscriptionEvent::Subscribed { position: position("e1", 5), recovered: Some(true) };
    assert_eq!(next_event(&mut news).await, subscribed);
    assert_eq!(next_offset(&mut news).await, 4);
    assert_eq!(next_offset(&mut news).await, 5);
    assert_eq!(
        wait_for_state(&client, |s| matches!(s, ConnectionState::Connected { .. })).await,
        ConnectionState::Connected { client_id: "c2".into() }
    );
}

#[tokio::test]
async fn when_its_server_is_gone_the_client_resumes_on_a_fallback_url() {
    let mut first = FakeServer::start().await;
    let mut second = FakeServer::start().await;
    let options = ClientOptions { fallback_urls: vec![second.url().to_owned()], ..first.options() };
    let (client, mut connection) = connected_with(&mut first, options).await;
    let mut news = subscribed(&client, &mut connection, "news", 0).await;
    connection.publish("news", "e1", 1).await;
    assert_eq!(next_offset(&mut news).await, 1);
    drop(first);
    connection.drop_abruptly();

    let mut connection = second.accept().await;
    connection.accept_connect("c2").await;
    let since = connection.accept_subscribe("e1", 1, Some(true)).await;
    assert_eq!(since, Some(position("e1", 1)), "resumed where it stood, on the other server");
    connection.publish("news", "e1", 2).await;
    assert!(matches!(next_event(&mut news).await, SubscriptionEvent::Subscribed { .. }));
    assert_eq!(next_offset(&mut news).await, 2);
}

#[tokio::test]
async fn an_unrecovered_resubscribe_tells_the_application_and_moves_to_the_new_epoch() {
    let mut server = FakeServer::start().await;
    let (client, mut connection) = connected(&mut server).await;
    let mut news = subscribed(&client, &mut connection, "news", 8).await;
    connection.close(CloseCode::ShuttingDown.code(), "shutting down").await;

    let mut connection = server.accept().await;
    connection.accept_connect("c2").await;
    assert_eq!(connection.accept_subscribe("e2", 2, Some(false)).await, Some(position("e1", 8)));
    let subscribed = SubscriptionEvent::Subscribed { position: position("e2", 2), recovered: Some(false) };
    assert_eq!(next_event(&mut news).await, subscribed);
    assert_eq!(news.position(), &position("e2", 2));
}

#[tokio::test]
async fn close_code_4001_stops_the_client_without_reconnecting() {
    let mut server = FakeServer::start().await;
    let (client, mut connection) = connected(&mut server).await;
    let mut news = subscribed(&client, &mut connection, "news", 0).await;
    connection.close(CloseCode::Unauthorized.code(), "unauthorized").await;

    let closed = ConnectionState::Closed { code: 4001, reason: "unauthorized".into() };
    assert_eq!(wait_for_state(&client, |s| matches!(s, ConnectionState::Closed { .. })).await, closed);
    let reason = UnsubscribeReason::Closed { code: 4001, reason: "unauthorized".into() };
    assert_eq!(next_event(&mut news).await, SubscriptionEvent::Unsubscribed { reason });
    assert_eq!(news.next().await, None);
    let publish = client.publish("news", &1, PublishOptions::default()).await;
    assert!(matches!(publish, Err(ClientError::Closed { code: 4001, .. })), "{publish:?}");
    // Twenty times the longest backoff: a reconnecting client would have come back.
    assert!(!server.connects_within(Duration::from_millis(800)).await);
}

#[tokio::test]
async fn duplicate_publications_are_delivered_once() {
    let mut server = FakeServer::start().await;
    let (client, mut connection) = connected(&mut server).await;
    let mut news = subscribed(&client, &mut connection, "news", 2).await;
    for offset in [2, 3, 3, 1, 4, 4] {
        connection.publish("news", "e1", offset).await;
    }
    assert_eq!(next_offset(&mut news).await, 3);
    assert_eq!(next_offset(&mut news).await, 4);
    connection.publish("news", "e1", 5).await;
    assert_eq!(next_offset(&mut news).await, 5);
}

#[tokio::test]
async fn an_ephemeral_publication_is_delivered_without_moving_the_position() {
    let mut server = FakeServer::start().await;
    let (client, mut connection) = connected(&mut server).await;
    let mut typing = subscribed(&client, &mut connection, "typing", 3).await;
    let data = fanfare_client::JsonData::parse("\"bob\"".into()).unwrap();
    let channel = fanfare_protocol::ChannelName::new("typing").unwrap();
    connection.send(native::encode_ephemeral(&channel, 1, None, &data)).await;
    match next_event(&mut typing).await {
        SubscriptionEvent::Publication { epoch: None, publication, .. } => assert_eq!(publication.data, data),
        other => panic!("expected an ephemeral publication, got {other:?}"),
    }
    assert_eq!(typing.position(), &position("e1", 3));
}

#[tokio::test]
async fn a_pending_request_fails_with_disconnected_when_the_socket_drops() {
    let mut server = FakeServer::start().await;
    let (client, mut connection) = connected(&mut server).await;
    let (published, ()) = tokio::join!(client.publish("news", &1, PublishOptions::default()), async {
        let command = connection.recv().await;
        assert_eq!(command.body.type_name(), "publish");
        connection.drop_abruptly();
    });
    assert!(matches!(published, Err(ClientError::Disconnected)), "{published:?}");
}

#[tokio::test]
async fn calls_made_while_reconnecting_fail_at_once_with_disconnected() {
    let mut server = FakeServer::start().await;
    let backoff = fanfare_client::Backoff { initial: Duration::from_secs(60), max: Duration::from_secs(60) };
    let options = ClientOptions { backoff, ..server.options() };
    let (client, connection) = connected_with(&mut server, options).await;
    connection.drop_abruptly();
    wait_for_state(&client, |s| matches!(s, ConnectionState::Reconnecting { attempt: 1, .. })).await;
    let published = timeout(PATIENCE, client.publish("news", &1, PublishOptions::default())).await;
    assert!(matches!(published, Ok(Err(ClientError::Disconnected))), "{published:?}");
    timeout(PATIENCE, client.close()).await.expect("close in time");
}

#[tokio::test]
async fn a_disconnect_push_sets_a_lower_bound_on_the_reconnect_delay() {
    let mut server = FakeServer::start().await;
    let (client, mut connection) = connected(&mut server).await;
    connection.send(native::encode_disconnect(CloseCode::ShuttingDown, Some(300))).await;
    connection.close(CloseCode::ShuttingDown.code(), "shutting down").await;
    let state = wait_for_state(&client, |s| matches!(s, ConnectionState::Reconnecting { .. })).await;
    let ConnectionState::Reconnecting { attempt: 1, delay } = state else { panic!("{state:?}") };
    assert!(delay >= Duration::from_millis(300), "{delay:?}");
    let mut connection = server.accept().await;
    connection.accept_connect("c2").await;
    let c2 = ConnectionState::Connected { client_id: "c2".into() };
    wait_for_state(&client, |s| s == &c2).await;
}

#[tokio::test]
async fn a_silent_server_is_treated_as_dead_and_the_client_reconnects() {
    let mut server = FakeServer::start().await;
    let options = ClientOptions { ping_margin: Duration::from_millis(50), ..server.options() };
    let (client, _silent) = tokio::join!(Client::connect(options), async {
        let mut connection = server.accept().await;
        connection.accept_connect_pinging("c1", 50).await;
        connection
    });
    let client = client.unwrap();
    let mut connection = server.accept().await;
    connection.accept_connect("c2").await;
    let connected = wait_for_state(&client, |s| s == &ConnectionState::Connected { client_id: "c2".into() });
    connected.await;
}

#[tokio::test]
async fn a_reader_that_falls_behind_loses_nothing() {
    let mut server = FakeServer::start().await;
    let options = ClientOptions { subscription_buffer: 2, ..server.options() };
    let (client, mut connection) = connected_with(&mut server, options).await;
    let mut news = subscribed(&client, &mut connection, "news", 0).await;
    let pushes = tokio::spawn(async move {
        for offset in 1..=50 {
            connection.publish("news", "e1", offset).await;
        }
        connection
    });
    for offset in 1..=50 {
        assert_eq!(next_offset(&mut news).await, offset);
    }
    pushes.await.unwrap();
}

#[tokio::test]
async fn unsubscribe_ends_the_subscription_with_requested() {
    let mut server = FakeServer::start().await;
    let (client, mut connection) = connected(&mut server).await;
    let mut news = subscribed(&client, &mut connection, "news", 0).await;
    let (unsubscribed, ()) = tokio::join!(client.unsubscribe("news"), async {
        let Command { id, body } = connection.recv().await;
        assert_eq!(body.type_name(), "unsubscribe");
        connection.reply(id, &serde_json::json!({})).await;
    });
    unsubscribed.unwrap();
    let reason = UnsubscribeReason::Requested;
    assert_eq!(next_event(&mut news).await, SubscriptionEvent::Unsubscribed { reason });
}

#[tokio::test]
async fn a_dropped_subscription_is_unsubscribed_when_its_next_publication_arrives() {
    let mut server = FakeServer::start().await;
    let (client, mut connection) = connected(&mut server).await;
    drop(subscribed(&client, &mut connection, "news", 0).await);
    connection.publish("news", "e1", 1).await;
    let command = connection.recv().await;
    assert_eq!(
        command.body,
        CommandBody::Unsubscribe { channel: fanfare_protocol::ChannelName::new("news").unwrap() }
    );
}

#[tokio::test]
async fn a_permanent_refusal_to_resubscribe_ends_only_that_subscription() {
    let mut server = FakeServer::start().await;
    let (client, mut connection) = connected(&mut server).await;
    let mut news = subscribed(&client, &mut connection, "news", 0).await;
    connection.drop_abruptly();

    let mut connection = server.accept().await;
    connection.accept_connect("c2").await;
    let (id, _channel, _since) = connection.expect_subscribe().await;
    let denied = ErrorInfo::new(ErrorCode::PermissionDenied, "no longer a member");
    connection.reply_error(id, denied.clone()).await;
    let reason = UnsubscribeReason::Refused(denied);
    assert_eq!(next_event(&mut news).await, SubscriptionEvent::Unsubscribed { reason });
    assert!(matches!(client.state(), ConnectionState::Connected { .. }));
}

#[tokio::test]
async fn a_refused_reconnect_stops_the_client_as_unauthorized() {
    let mut server = FakeServer::start().await;
    let (client, connection) = connected(&mut server).await;
    connection.drop_abruptly();
    let mut connection = server.accept().await;
    let (id, _token) = connection.expect_connect().await;
    connection.reply_error(id, ErrorInfo::new(ErrorCode::TokenExpired, "token expired")).await;
    let state = wait_for_state(&client, |s| matches!(s, ConnectionState::Closed { .. })).await;
    assert!(matches!(state, ConnectionState::Closed { code: 4001, .. }), "{state:?}");
}

#[tokio::test]
async fn close_ends_subscriptions_and_later_calls_fail_with_closed() {
    let mut server = FakeServer::start().await;
    let (client, mut connection) = connected(&mut server).await;
    let mut news = subscribed(&client, &mut connection, "news", 0).await;
    timeout(PATIENCE, client.close()).await.expect("close in time");
    let reason = UnsubscribeReason::Closed { code: 1000, reason: "closed by client".into() };
    assert_eq!(next_event(&mut news).await, SubscriptionEvent::Unsubscribed { reason });
    let result = client.subscribe("other", None).await;
    assert!(matches!(result, Err(ClientError::Closed { code: 1000, .. })), "{result:?}");
}

#[tokio::test]
async fn a_request_without_reply_times_out() {
    let mut server = FakeServer::start().await;
    let options = ClientOptions { request_timeout: Duration::from_millis(100), ..server.options() };
    let (client, _connection) = connected_with(&mut server, options).await;
    let result = client.presence("news").await;
    assert!(matches!(result, Err(ClientError::Timeout)), "{result:?}");
}
