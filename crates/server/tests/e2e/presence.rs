//! Presence: keyed by user, join on the first connection, leave on the last.

use fanfare_client::SubscriptionEvent;
use serde_json::json;

use crate::support::{TestServer, WAIT, token};

const CONFIG: &str = "[namespaces.team]\npresence = true\njoin_leave = true\n";

#[tokio::test]
async fn one_user_with_two_connections_joins_once_and_leaves_once() {
    let server = TestServer::with_config(CONFIG).await;
    let watcher = server.client_as(token("watcher", json!({}))).await;
    let mut events = watcher.subscribe("team:a", None).await.unwrap();

    let alice_phone = server.client_as(token("alice", json!({"info": {"name": "Alice"}}))).await;
    let alice_laptop = server.client_as(token("alice", json!({}))).await;
    let phone_sub = alice_phone.subscribe("team:a", None).await.unwrap();
    let laptop_sub = alice_laptop.subscribe("team:a", None).await.unwrap();

    let presence = watcher.presence("team:a").await.unwrap();
    let users: Vec<&str> = presence.members.iter().map(|m| m.user.as_str()).collect();
    assert_eq!(users, ["alice", "watcher"]);
    let (status, body) = server.get("/api/presence?channel=team:a").await;
    assert_eq!(status, 200);
    assert_eq!(body["members"][0]["info"], json!({"name": "Alice"}));

    drop(phone_sub);
    alice_phone.close().await;
    alice_laptop.unsubscribe("team:a").await.unwrap();
    drop(laptop_sub);
    // A marker publication: everything before it has been delivered.
    server.post("/api/publish", json!({"channel": "team:a", "data": "marker"})).await;

    let mut joins = 0;
    let mut leaves = 0;
    loop {
        match tokio::time::timeout(WAIT, events.next()).await.unwrap().unwrap() {
            SubscriptionEvent::Join(member) => {
                assert_eq!(member.user, "alice");
                joins += 1;
            }
            SubscriptionEvent::Leave { user } => {
                assert_eq!(user, "alice");
                leaves += 1;
            }
            SubscriptionEvent::Publication { .. } => break,
            _ => {}
        }
    }
    assert_eq!((joins, leaves), (1, 1));
    let presence = watcher.presence("team:a").await.unwrap();
    assert_eq!(presence.members.len(), 1);
}

#[tokio::test]
async fn presence_is_refused_where_the_namespace_has_it_off() {
    let server = TestServer::start().await;
    let (status, body) = server.get("/api/presence?channel=plain").await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "not_available");
}
