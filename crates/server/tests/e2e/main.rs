//! End-to-end tests: a real server on 127.0.0.1:0 (in-process, or the real
//! binary where a process must die), real sockets, real clients.

mod admin;
mod admission;
mod bad_input;
mod bench;
mod cluster;
mod cluster_failures;
mod cluster_pusher;
mod cluster_rolling;
mod content_rules;
mod deletes;
mod docs;
mod durability;
mod framing;
mod lifecycle;
mod logs;
mod metrics;
mod moderation;
mod moderation_webhook;
mod ordering;
mod plan;
mod presence;
mod process;
mod publish_limits;
mod publishing;
mod pusher_api;
mod pusher_limits;
mod pusher_user_ids;
mod recovery;
mod shadow_ban;
mod shaping;
mod slow_consumer;
mod storm;
mod support;
mod tls;
mod webhook_restarts;
