//! Numeric user ids (Laravel's are integers) as the Pusher protocol carries
//! them: one member with `"1"`, echoed to Pusher clients in the type the
//! joining connection sent, and always a string for native clients, the
//! HTTP API and webhooks.

use fanfare_protocol::pusher::sign;
use serde_json::{Value, json};

use crate::pusher_api::{PusherConn, Sdk, native_subscriber};
use crate::support::TestServer;

const APP: &str = r#"
[[pusher.apps]]
id = "app-1"
key = "key-1"
secret = "secret-1"
client_events = true
"#;

/// Joins `channel` with this exact `channel_data` user id (a JSON value).
async fn join(conn: &mut PusherConn, channel: &str, user_id: Value) {
    let channel_data = json!({ "user_id": user_id }).to_string();
    let signature = sign("secret-1", &format!("{}:{channel}:{channel_data}", conn.socket_id));
    conn.subscribe(channel, &format!("key-1:{signature}"), Some(&channel_data)).await;
}

fn inner(frame: &Value) -> Value {
    serde_json::from_str(frame["data"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn a_numeric_id_reaches_pusher_clients_as_a_number_and_everyone_else_as_text() {
    let server = TestServer::with_config(APP).await;
    let mut native = native_subscriber(&server, "presence-room").await;
    let mut two = PusherConn::open(&server, "key-1").await;
    join(&mut two, "presence-room", json!(2)).await;

    let mut one = PusherConn::open(&server, "key-1").await;
    join(&mut one, "presence-room", json!(1)).await;
    let added = two.next_event("pusher_internal:member_added").await;
    assert_eq!(inner(&added)["user_id"], json!(1), "{added}");
    let joined = loop {
        let push = native.next_json().await.expect("native closed");
        if push["type"] == "join" && push["user"] == "1" {
            break push;
        }
    };
    assert_eq!(joined["user"], json!("1"), "native clients get strings");

    one.send(json!({"event": "client-hi", "channel": "presence-room", "data": {}})).await;
    let event = two.next_event("client-hi").await;
    assert_eq!(event["user_id"], json!(1), "{event}");

    // The same user written as a string on another connection is the same member.
    let mut one_again = PusherConn::open(&server, "key-1").await;
    join(&mut one_again, "presence-room", json!("1")).await;
    let sdk = Sdk { server: &server, app_id: "app-1", key: "key-1", secret: "secret-1" };
    let (status, users) = sdk.get("/channels/presence-room/users", &[]).await;
    assert_eq!((status, users), (200, json!({"users": [{"id": "1"}, {"id": "2"}]})), "the API shows text");
    drop(one_again);
    drop(one);
    // Once both are gone; in the form of whichever connection left last.
    let removed = inner(&two.next_event("pusher_internal:member_removed").await);
    assert!([json!(1), json!("1")].contains(&removed["user_id"]), "{removed}");
}
