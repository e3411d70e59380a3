//! The gateway's WebSocket framing as a bare echo server, for the Autobahn
//! conformance suite (`scripts/test-autobahn`).
//!
//! Usage: `websocket_echo [PORT]` (0, the default, picks a free port);
//! prints `listening on 127.0.0.1:PORT` once it accepts.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).map_or(Ok(0), |p| p.parse()).expect("PORT must be a number");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?);
    fanfare::gateway::echo::serve(listener, 16 << 20).await
}
