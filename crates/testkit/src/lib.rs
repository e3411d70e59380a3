//! What the cluster tests need to fail for real: private engines and links
//! that can break.
//!
//! - [`RedisServer`]: a `redis-server` of its own on a free loopback port,
//!   in a temporary directory, that a test can kill (`SIGKILL`), restart
//!   on the same port and data, or configure (persistence).
//! - [`CutLink`]: a TCP proxy in front of a server, so a test can cut every
//!   connection through it and refuse new ones, then heal it.
//!
//! In CI (`CI=true`) a missing `redis-server` binary is a failure; outside
//! CI, [`RedisServer::start_or_skip`] returns `None` and prints why.

mod link;
mod redis_server;

pub use link::CutLink;
pub use redis_server::{Persistence, RedisServer};

/// Whether this run is CI's, where every engine must be present.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A free loopback port (bound, then released, so a child can take it).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("a bound address").port()
}
