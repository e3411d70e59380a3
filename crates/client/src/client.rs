//! The handle applications hold.

use std::time::Duration;

use fanfare_protocol::native::moderation::ModerationAction;
use fanfare_protocol::native::{
    CommandBody, ConnectResult, HistoryParams, HistoryResult, PresenceResult, PublishResult, RecordResult,
};
use fanfare_protocol::{ChannelName, JsonData, StreamPosition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::timeout;

use crate::connection::{Connection, Request};
use crate::error::decode_result;
use crate::{ClientError, ClientOptions, ConnectionState, PublishOptions, Subscription, socket};

/// A connection to a Fanfare server, kept alive and restored by a
/// background task. Cheap to clone; the connection closes when
/// [`close`](Self::close) is called or the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Client {
    requests: mpsc::Sender<Request>,
    state: watch::Receiver<ConnectionState>,
    connect_result: watch::Receiver<ConnectResult>,
    request_timeout: Duration,
}

impl Client {
    /// Connects and sends `connect`. Fails, without retrying, if the server
    /// cannot be reached or refuses the token; once this succeeds, the
    /// client reconnects by itself.
    pub async fn connect(options: ClientOptions) -> Result<Client, ClientError> {
        const CONNECT_ID: u64 = 1;
        let (socket, result) = socket::open(&options, &options.url, CONNECT_ID).await?;
        let (requests_tx, requests_rx) = mpsc::channel(options.command_buffer.max(1));
        let (state_tx, state) =
            watch::channel(ConnectionState::Connected { client_id: result.client.clone() });
        let (result_tx, connect_result) = watch::channel(result);
        let request_timeout = options.request_timeout;
        let connection = Connection::new(options, requests_rx, state_tx, result_tx, CONNECT_ID + 1);
        tokio::spawn(connection.run(socket));
        Ok(Client { requests: requests_tx, state, connect_result, request_timeout })
    }

    /// The reply to the latest successful `connect` (it changes on reconnect).
    pub fn connect_result(&self) -> ConnectResult {
        self.connect_result.borrow().clone()
    }

    /// The user id the server took from the token; `""` when anonymous.
    pub fn user(&self) -> String {
        self.connect_result.borrow().user.clone()
    }

    pub fn state(&self) -> ConnectionState {
        self.state.borrow().clone()
    }

    /// A receiver that sees every later state (the latest one, if several
    /// happen between two reads).
    pub fn state_changes(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }

    /// Subscribes to `channel`, returning after the server's reply. With
    /// `since`, the server replays what followed that position if it still
    /// can (see [`SubscriptionEvent::Subscribed`](crate::SubscriptionEvent::Subscribed)).
    pub async fn subscribe(
        &self,
        channel: &str,
        since: Option<StreamPosition>,
    ) -> Result<Subscription, ClientError> {
        let channel = ChannelName::new(channel)?;
        self.request(|reply| Request::Subscribe { channel, since, reply }).await
    }

    /// Unsubscribes; the subscription ends with `Unsubscribed { reason: Requested }`.
    pub async fn unsubscribe(&self, channel: &str) -> Result<(), ClientError> {
        let channel = ChannelName::new(channel)?;
        self.call(CommandBody::Unsubscribe { channel }).await.map(drop)
    }

    /// Publishes `data` (anything serialisable: a `serde_json::Value`, a
    /// [`JsonData`], your own type). The result carries the offset, unless
    /// the publication is ephemeral.
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        channel: &str,
        data: &T,
        options: PublishOptions,
    ) -> Result<PublishResult, ClientError> {
        let channel = ChannelName::new(channel)?;
        let text = serde_json::to_string(data).map_err(ClientError::InvalidData)?;
        let data = JsonData::parse(text).map_err(ClientError::InvalidData)?;
        let PublishOptions { idempotency_key, ephemeral } = options;
        self.call_decoded(CommandBody::Publish { channel, event: None, data, idempotency_key, ephemeral })
            .await
    }

    /// Reads the channel's stored publications.
    pub async fn history(&self, channel: &str, query: HistoryParams) -> Result<HistoryResult, ClientError> {
        let channel = ChannelName::new(channel)?;
        self.call_decoded(CommandBody::History { channel, query }).await
    }

    /// Lists the users present in the channel.
    pub async fn presence(&self, channel: &str) -> Result<PresenceResult, ClientError> {
        let channel = ChannelName::new(channel)?;
        self.call_decoded(CommandBody::Presence { channel }).await
    }

    /// A moderator's action (the token needs a `moderate` claim granting
    /// the channel or namespace); the answer is the command's `result`
    /// (`docs/protocol.md` §5.8).
    pub async fn moderate(&self, action: ModerationAction) -> Result<serde_json::Value, ClientError> {
        self.call_decoded(CommandBody::Moderate(action)).await
    }

    /// A reaction in a channel of a shaped namespace (`docs/protocol.md`
    /// §5.9): counted by the server and pushed with its window's others as
    /// one `fanfare:reactions` publication.
    pub async fn react(&self, channel: &str, reaction: &str) -> Result<(), ClientError> {
        let channel = ChannelName::new(channel)?;
        self.call(CommandBody::React { channel, reaction: reaction.to_owned() }).await.map(|_| ())
    }

    /// Edits the publication at `offset` (this user's own, or any in a
    /// channel the token moderates) to `data` (`docs/protocol.md` §5.14):
    /// the answer is the update record's position; subscribers get the
    /// record in order, history serves the new data with `edited`.
    pub async fn edit<T: Serialize + ?Sized>(
        &self,
        channel: &str,
        offset: u64,
        data: &T,
    ) -> Result<RecordResult, ClientError> {
        let channel = ChannelName::new(channel)?;
        let text = serde_json::to_string(data).map_err(ClientError::InvalidData)?;
        let data = JsonData::parse(text).map_err(ClientError::InvalidData)?;
        self.call_decoded(CommandBody::Edit { channel, offset, data }).await
    }

    /// Deletes the publication at `offset` (this user's own, or any in a
    /// channel the token moderates; `docs/protocol.md` §5.15): the answer
    /// is the delete record's position and the offsets it deleted.
    pub async fn delete(&self, channel: &str, offset: u64) -> Result<RecordResult, ClientError> {
        let channel = ChannelName::new(channel)?;
        self.call_decoded(CommandBody::Delete { channel, offset }).await
    }

    /// Tells the channel's other subscribers this user is typing
    /// (`docs/protocol.md` §5.16); the server sends at most one indicator
    /// per `typing_interval`, so calling this on every keystroke is fine.
    pub async fn typing(&self, channel: &str) -> Result<(), ClientError> {
        let channel = ChannelName::new(channel)?;
        self.call(CommandBody::Typing { channel }).await.map(|_| ())
    }

    /// Closes the connection (code 1000) and waits until the client has
    /// stopped. Subscriptions end with `Unsubscribed { reason: Closed }`.
    pub async fn close(&self) {
        // An error means the task is gone, so the client is already closed.
        let _ = self.requests.send(Request::Close).await;
        let mut state = self.state.clone();
        let _ = state.wait_for(|state| matches!(state, ConnectionState::Closed { .. })).await;
    }

    async fn call_decoded<T: DeserializeOwned>(&self, body: CommandBody) -> Result<T, ClientError> {
        decode_result(&self.call(body).await?)
    }

    async fn call(&self, body: CommandBody) -> Result<JsonData, ClientError> {
        self.request(|reply| Request::Call { body, reply }).await
    }

    /// Hands a request to the connection task and waits for its answer,
    /// within the request timeout.
    async fn request<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<T, ClientError>>) -> Request,
    ) -> Result<T, ClientError> {
        let (reply, answer) = oneshot::channel();
        let exchange = async {
            self.requests.send(request(reply)).await.map_err(|_| self.stopped())?;
            answer.await.map_err(|_| self.stopped())?
        };
        timeout(self.request_timeout, exchange).await.map_err(|_| ClientError::Timeout)?
    }

    /// The error for a call the connection task can no longer answer.
    fn stopped(&self) -> ClientError {
        match &*self.state.borrow() {
            ConnectionState::Closed { code, reason } => {
                ClientError::Closed { code: *code, reason: reason.clone() }
            }
            _ => ClientError::Disconnected,
        }
    }
}
