//! The connection task: the one owner of the socket.
//!
//! [`Client`](crate::Client) handles send it [`Request`]s through a bounded
//! channel; it turns them into commands, matches replies to them by `id`,
//! routes pushes to subscriptions, and when the socket drops, reconnects
//! and resubscribes (see the crate docs for the algorithm).

use std::collections::HashMap;
use std::time::Duration;

use fanfare_protocol::native::{Command, CommandBody, ConnectResult, ServerMessage, SubscribeResult};
use fanfare_protocol::{ChannelName, Epoch, ErrorInfo, JsonData, Publication, StreamPosition};
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::decode_reply;
use crate::socket::{self, Incoming, SessionEnd, Socket};
use crate::subscription::SubscriptionSink;
use crate::{
    ClientError, ClientOptions, ConnectionState, Subscription, SubscriptionEvent, UnsubscribeReason,
};

/// Close code and reason the client uses when the application closes it.
const CLIENT_CLOSE: (u16, &str) = (1000, "closed by client");

/// What a [`Client`](crate::Client) handle asks of the connection task.
#[derive(Debug)]
pub(crate) enum Request {
    Subscribe {
        channel: ChannelName,
        since: Option<StreamPosition>,
        reply: oneshot::Sender<Result<Subscription, ClientError>>,
    },
    /// Any other command; the reply's `result` is returned undecoded.
    Call {
        body: CommandBody,
        reply: oneshot::Sender<Result<JsonData, ClientError>>,
    },
    Close,
}

impl Request {
    fn fail(self, error: ClientError) {
        match self {
            Request::Subscribe { reply, .. } => drop(reply.send(Err(error))),
            Request::Call { reply, .. } => drop(reply.send(Err(error))),
            Request::Close => {}
        }
    }
}

/// A command sent and waiting for its reply.
enum Pending {
    Call(oneshot::Sender<Result<JsonData, ClientError>>),
    Subscribe {
        channel: ChannelName,
        since: Option<StreamPosition>,
        reply: oneshot::Sender<Result<Subscription, ClientError>>,
    },
    /// A subscription restored after a reconnect.
    Resubscribe {
        channel: ChannelName,
    },
    /// An unsubscribe nobody waits for (the application dropped the subscription).
    Ignore,
}

/// The stop reason when the client will not reconnect.
type Stop = (u16, String);

pub(crate) struct Connection {
    options: ClientOptions,
    requests: mpsc::Receiver<Request>,
    state: watch::Sender<ConnectionState>,
    connect_result: watch::Sender<ConnectResult>,
    subscriptions: HashMap<ChannelName, SubscriptionSink>,
    pending: HashMap<u64, Pending>,
    next_id: u64,
    /// Failed reconnect attempts in a row. Reset only once a connection is
    /// fully restored (every resubscribe answered), so a server that accepts
    /// `connect` and then fails still gets growing delays.
    attempt: u32,
    /// Where in [`ClientOptions::urls`] the next connection goes: kept
    /// while connections there work, moved on after a failed attempt.
    url: usize,
}

impl Connection {
    pub(crate) fn new(
        options: ClientOptions,
        requests: mpsc::Receiver<Request>,
        state: watch::Sender<ConnectionState>,
        connect_result: watch::Sender<ConnectResult>,
        next_id: u64,
    ) -> Self {
        let (subscriptions, pending) = (HashMap::new(), HashMap::new());
        Self { options, requests, state, connect_result, subscriptions, pending, next_id, attempt: 0, url: 0 }
    }

    /// Serves connection after connection until the client stops.
    pub(crate) async fn run(mut self, mut socket: Socket) {
        loop {
            let after = match self.serve(&mut socket).await {
                SessionEnd::Lost { after } => after,
                SessionEnd::Stopped { code, reason } => {
                    socket.shutdown(code, &reason).await;
                    return self.finish(code, reason);
                }
            };
            drop(socket);
            self.fail_pending(|| ClientError::Disconnected);
            socket = match self.reconnect(after).await {
                Ok(socket) => socket,
                Err((code, reason)) => return self.finish(code, reason),
            };
        }
    }

    /// Reads the socket and the requests until the connection ends.
    async fn serve(&mut self, socket: &mut Socket) -> SessionEnd {
        loop {
            let end = tokio::select! {
                incoming = socket.next() => match incoming {
                    Incoming::Message(message) => self.on_message(message, socket).await,
                    Incoming::Ended(end) => Some(end),
                },
                request = self.requests.recv() => match request {
                    Some(request) => self.on_request(request, socket).await,
                    None => Some(stopped_by_client()),
                },
            };
            if let Some(end) = end {
                return end;
            }
        }
    }

    async fn on_request(&mut self, request: Request, socket: &mut Socket) -> Option<SessionEnd> {
        match request {
            Request::Subscribe { channel, since, reply } => {
                let body = CommandBody::Subscribe { channel: channel.clone(), since: since.clone() };
                self.send(socket, Pending::Subscribe { channel, since, reply }, body).await
            }
            Request::Call { body, reply } => {
                if let CommandBody::Unsubscribe { channel } = &body
                    && let Some(sink) = self.subscriptions.remove(channel)
                {
                    sink.end(UnsubscribeReason::Requested);
                }
                self.send(socket, Pending::Call(reply), body).await
            }
            Request::Close => Some(stopped_by_client()),
        }
    }

    /// Sends a command, its reply awaited as `pending`.
    async fn send(&mut self, socket: &mut Socket, pending: Pending, body: CommandBody) -> Option<SessionEnd> {
        let id = self.next_id;
        self.next_id += 1;
        // Registered first, so a failed send fails it with the others.
        self.pending.insert(id, pending);
        match socket.send(Command { id, body }).await {
            Ok(()) => None,
            Err(error) => {
                tracing::info!(%error, "connection lost while sending");
                Some(SessionEnd::Lost { after: None })
            }
        }
    }

    async fn on_message(&mut self, message: ServerMessage, socket: &mut Socket) -> Option<SessionEnd> {
        match message {
            ServerMessage::Reply { id, outcome } => return self.on_reply(id, outcome, socket).await,
            ServerMessage::Publication { channel, epoch, publication, skipped } => {
                return self.on_publication(channel, epoch, publication, skipped, socket).await;
            }
            ServerMessage::Join { channel, member } => {
                return self.deliver(channel, SubscriptionEvent::Join(member), socket).await;
            }
            ServerMessage::Leave { channel, user } => {
                return self.deliver(channel, SubscriptionEvent::Leave { user }, socket).await;
            }
            // The socket keeps the advice for when the close follows.
            ServerMessage::Disconnect { .. } => {}
        }
        None
    }

    async fn on_publication(
        &mut self,
        channel: ChannelName,
        epoch: Option<Epoch>,
        publication: Publication,
        skipped: u64,
        socket: &mut Socket,
    ) -> Option<SessionEnd> {
        // Pushes for a channel just unsubscribed can still be on the way.
        let sink = self.subscriptions.get_mut(&channel)?;
        match sink.publication(epoch, publication, skipped).await {
            Ok(()) => None,
            Err(_gone) => self.forget(channel, socket).await,
        }
    }

    async fn deliver(
        &mut self,
        channel: ChannelName,
        event: SubscriptionEvent,
        socket: &mut Socket,
    ) -> Option<SessionEnd> {
        let sink = self.subscriptions.get(&channel)?;
        match sink.send(event).await {
            Ok(()) => None,
            Err(_gone) => self.forget(channel, socket).await,
        }
    }

    /// The application dropped the subscription: unsubscribe, answer unread.
    async fn forget(&mut self, channel: ChannelName, socket: &mut Socket) -> Option<SessionEnd> {
        self.subscriptions.remove(&channel);
        self.send(socket, Pending::Ignore, CommandBody::Unsubscribe { channel }).await
    }

    async fn on_reply(
        &mut self,
        id: u64,
        outcome: Result<JsonData, ErrorInfo>,
        socket: &mut Socket,
    ) -> Option<SessionEnd> {
        match self.pending.remove(&id) {
            Some(Pending::Call(reply)) => drop(reply.send(outcome.map_err(ClientError::Server))),
            Some(Pending::Subscribe { channel, since, reply }) => {
                return self.on_subscribed(channel, since, decode_reply(outcome), reply, socket).await;
            }
            Some(Pending::Resubscribe { channel }) => {
                return self.on_resubscribed(channel, outcome, socket).await;
            }
            Some(Pending::Ignore) => {}
            None => tracing::debug!(id, "reply to no pending command"),
        }
        None
    }

    async fn on_subscribed(
        &mut self,
        channel: ChannelName,
        since: Option<StreamPosition>,
        result: Result<SubscribeResult, ClientError>,
        reply: oneshot::Sender<Result<Subscription, ClientError>>,
        socket: &mut Socket,
    ) -> Option<SessionEnd> {
        let result = match result {
            Ok(result) => result,
            Err(error) => {
                let _ = reply.send(Err(error));
                return None;
            }
        };
        let buffer = self.options.subscription_buffer;
        let (sink, subscription) = SubscriptionSink::open(channel.clone(), since.as_ref(), &result, buffer);
        if reply.send(Ok(subscription)).is_err() {
            // The caller gave up waiting (timeout): nobody will read it.
            return self.send(socket, Pending::Ignore, CommandBody::Unsubscribe { channel }).await;
        }
        self.subscriptions.insert(channel, sink);
        None
    }

    /// A retryable refusal or an unreadable reply costs the connection (the
    /// reconnect retries with backoff); any other refusal ends just this
    /// subscription.
    async fn on_resubscribed(
        &mut self,
        channel: ChannelName,
        outcome: Result<JsonData, ErrorInfo>,
        socket: &mut Socket,
    ) -> Option<SessionEnd> {
        let sink = self.subscriptions.get_mut(&channel)?;
        match decode_reply::<SubscribeResult>(outcome) {
            Ok(result) => {
                if sink.resubscribed(&result).await.is_err() {
                    return self.forget(channel, socket).await;
                }
            }
            Err(ClientError::Server(info)) if !info.retry => {
                tracing::warn!(%channel, error = %info, "server refused to resubscribe");
                self.subscriptions.remove(&channel)?.end(UnsubscribeReason::Refused(info));
            }
            Err(error) => {
                tracing::warn!(%channel, %error, "resubscribe failed, reconnecting");
                return Some(SessionEnd::Lost { after: None });
            }
        }
        self.reset_attempts_if_restored();
        None
    }

    fn reset_attempts_if_restored(&mut self) {
        if !self.pending.values().any(|pending| matches!(pending, Pending::Resubscribe { .. })) {
            self.attempt = 0;
        }
    }

    /// Waits with backoff and reconnects until it works or must stop.
    async fn reconnect(&mut self, mut after: Option<Duration>) -> Result<Socket, Stop> {
        loop {
            self.attempt = self.attempt.saturating_add(1);
            let attempt = self.attempt;
            let delay = self.options.backoff.delay(attempt).max(after.take().unwrap_or_default());
            self.state.send_replace(ConnectionState::Reconnecting { attempt, delay });
            self.wait(delay).await?;
            self.state.send_replace(ConnectionState::Connecting);
            match self.restore().await {
                Ok(socket) => return Ok(socket),
                Err(error) => match stop_for(&error) {
                    Some(stop) => return Err(stop),
                    None => {
                        tracing::info!(attempt, %error, "reconnect failed");
                        self.url = self.url.wrapping_add(1);
                    }
                },
            }
        }
    }

    /// Sleeps `delay` while failing the requests that come meanwhile.
    async fn wait(&mut self, delay: Duration) -> Result<(), Stop> {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return Ok(()),
                request = self.requests.recv() => match request {
                    Some(Request::Close) | None => return Err((CLIENT_CLOSE.0, CLIENT_CLOSE.1.to_string())),
                    Some(request) => request.fail(ClientError::Disconnected),
                },
            }
        }
    }

    /// Opens a new connection and resubscribes every live subscription
    /// from the last position it queued.
    async fn restore(&mut self) -> Result<Socket, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let url = self.options.url_at(self.url).to_owned();
        let (mut socket, result) = socket::open(&self.options, &url, id).await?;
        tracing::info!(client = %result.client, "reconnected");
        self.state.send_replace(ConnectionState::Connected { client_id: result.client.clone() });
        self.connect_result.send_replace(result);
        self.subscriptions.retain(|_, sink| !sink.is_gone());
        let positions: Vec<_> = self
            .subscriptions
            .iter()
            .map(|(channel, sink)| (channel.clone(), sink.position().clone()))
            .collect();
        for (channel, since) in positions {
            let body = CommandBody::Subscribe { channel: channel.clone(), since: Some(since) };
            if self.send(&mut socket, Pending::Resubscribe { channel }, body).await.is_some() {
                self.pending.clear();
                return Err(ClientError::Disconnected);
            }
        }
        self.reset_attempts_if_restored();
        Ok(socket)
    }

    /// Stops for good: every waiting call and subscription learns why.
    fn finish(mut self, code: u16, reason: String) {
        tracing::info!(code, %reason, "client stopped");
        self.state.send_replace(ConnectionState::Closed { code, reason: reason.clone() });
        let closed = || ClientError::Closed { code, reason: reason.clone() };
        self.fail_pending(closed);
        self.requests.close();
        while let Ok(request) = self.requests.try_recv() {
            request.fail(closed());
        }
        for (_, sink) in self.subscriptions.drain() {
            sink.end(UnsubscribeReason::Closed { code, reason: reason.clone() });
        }
    }

    /// Fails every command still waiting for a reply. Resubscribes need no
    /// answer: their subscriptions are restored on the next connection.
    fn fail_pending(&mut self, error: impl Fn() -> ClientError) {
        for (_, pending) in self.pending.drain() {
            match pending {
                Pending::Call(reply) => drop(reply.send(Err(error()))),
                Pending::Subscribe { reply, .. } => drop(reply.send(Err(error()))),
                Pending::Resubscribe { .. } | Pending::Ignore => {}
            }
        }
    }
}

fn stopped_by_client() -> SessionEnd {
    SessionEnd::Stopped { code: CLIENT_CLOSE.0, reason: CLIENT_CLOSE.1.to_string() }
}

/// Whether a failed reconnect attempt means the client must stop. A refused
/// `connect` that would fail again unchanged (bad or expired token) stops it
/// as the unauthorized close code would.
fn stop_for(error: &ClientError) -> Option<Stop> {
    match error {
        ClientError::Server(info) if !info.retry => {
            Some((fanfare_protocol::CloseCode::Unauthorized.code(), info.to_string()))
        }
        ClientError::Closed { code, reason } if !socket::reconnects(*code) => Some((*code, reason.clone())),
        _ => None,
    }
}
