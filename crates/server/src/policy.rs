//! What a client may do, and how a refusal reads on the wire: the one
//! place the native session and both HTTP APIs ask.
//!
//! - [`check_data`]: a publication's data, over WebSocket or HTTP.
//! - [`may_subscribe`], [`may_publish`]: a namespace's permissions for a
//!   connection (the HTTP API holds the API key and may do anything).
//! - [`hub_error`]: a hub error as the [`ErrorInfo`] every protocol and
//!   the HTTP APIs answer with.

use fanfare_hub::HubError;
use fanfare_protocol::{ChannelName, ErrorCode, ErrorInfo, JsonData};

use crate::auth::Identity;
use crate::config::{NamespaceSettings, PublishPolicy, SubscribePolicy};

/// `data` may be any JSON value but `null` (which over WebSocket reads as a
/// missing field) and at most the namespace's message size.
pub(crate) fn check_data(data: &JsonData, namespace: &NamespaceSettings) -> Result<(), ErrorInfo> {
    if data.as_str().trim() == "null" {
        return Err(ErrorInfo::new(ErrorCode::BadRequest, "\"data\" must not be null"));
    }
    if data.len() > namespace.max_message_bytes {
        return Err(ErrorInfo::new(
            ErrorCode::MessageTooLarge,
            format!("data is {} bytes; this namespace allows {}", data.len(), namespace.max_message_bytes),
        ));
    }
    Ok(())
}

/// The prefix of the server's own event names (`fanfare:members`,
/// `fanfare:notice`, `fanfare:reactions` …): nobody else may publish one,
/// so no client can pass for the server.
pub(crate) const SERVER_EVENTS: &str = "fanfare:";

/// Refuses an event name of the server's own.
pub(crate) fn check_event(event: Option<&str>) -> Result<(), ErrorInfo> {
    match event {
        Some(event) if event.starts_with(SERVER_EVENTS) => Err(ErrorInfo::new(
            ErrorCode::BadRequest,
            format!("event names starting with {SERVER_EVENTS:?} are the server's"),
        )),
        _ => Ok(()),
    }
}

/// Whether `identity` may subscribe to `channel` (and so read its history
/// and presence) in `namespace`.
pub(crate) fn may_subscribe(
    identity: &Identity,
    channel: &ChannelName,
    namespace: &NamespaceSettings,
) -> Result<(), ErrorInfo> {
    if identity.user.is_empty() && !namespace.allow_anonymous {
        return Err(denied("anonymous connections may not subscribe in this namespace"));
    }
    match namespace.subscribe {
        SubscribePolicy::Anyone => Ok(()),
        SubscribePolicy::TokenClaim => match &identity.grants {
            Some(grants) if grants.allows(channel) => Ok(()),
            _ => Err(denied("the token does not grant this channel")),
        },
        // Membership is in the store: `members::Members::may_read` asks it next.
        SubscribePolicy::Members if identity.user.is_empty() => {
            Err(denied("only the channel's members may do this"))
        }
        SubscribePolicy::Members => Ok(()),
        SubscribePolicy::Owner => match channel.as_str().split_once(':') {
            Some((_, owner)) if !identity.user.is_empty() && owner == &*identity.user => Ok(()),
            _ => Err(denied("only the user this channel is named after may do this")),
        },
    }
}

/// Whether a connection may publish in `namespace`, `subscribed` or not to
/// the channel.
pub(crate) fn may_publish(namespace: &NamespaceSettings, subscribed: bool) -> Result<(), ErrorInfo> {
    match namespace.publish {
        PublishPolicy::Server => Err(denied("clients may not publish in this namespace")),
        PublishPolicy::Subscribers if !subscribed => {
            Err(denied("only subscribers may publish in this channel"))
        }
        // Membership is in the store: `members::Members::may_publish` asks it next.
        PublishPolicy::Subscribers | PublishPolicy::Anyone | PublishPolicy::Members => Ok(()),
    }
}

/// Whether the server's own publications (the HTTP APIs) take the
/// namespace's priority lane: it is shaped and its `priority` lists
/// `server`.
pub(crate) fn server_lane(namespace: &NamespaceSettings) -> bool {
    namespace.shaping.is_some_and(|shaping| shaping.priority.server)
}

fn denied(message: &str) -> ErrorInfo {
    ErrorInfo::new(ErrorCode::PermissionDenied, message)
}

/// A hub error as clients see it: its row of the error table and its
/// text. A store error is logged here, once, whichever protocol met it.
pub(crate) fn hub_error(error: HubError) -> ErrorInfo {
    if let HubError::Store(store) = &error
        && !matches!(
            store,
            fanfare_store::StoreError::NothingToDelete | fanfare_store::StoreError::NothingToEdit
        )
    {
        tracing::warn!(%store, "history store error");
    }
    ErrorInfo::new(error.code(), error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespace(publish: PublishPolicy) -> NamespaceSettings {
        NamespaceSettings { publish, ..NamespaceSettings::default() }
    }

    #[test]
    fn connections_publish_only_where_the_namespace_lets_them() {
        let refused = |publish, subscribed| may_publish(&namespace(publish), subscribed).unwrap_err().code;
        assert_eq!(refused(PublishPolicy::Server, true), ErrorCode::PermissionDenied);
        assert_eq!(refused(PublishPolicy::Subscribers, false), ErrorCode::PermissionDenied);
        assert!(may_publish(&namespace(PublishPolicy::Subscribers), true).is_ok());
        assert!(may_publish(&namespace(PublishPolicy::Anyone), false).is_ok());
    }

    #[test]
    fn null_and_oversized_data_are_refused() {
        let settings = NamespaceSettings { max_message_bytes: 8, ..NamespaceSettings::default() };
        let data = |text: &str| serde_json::from_str::<JsonData>(text).unwrap();
        assert_eq!(check_data(&data(" null "), &settings).unwrap_err().code, ErrorCode::BadRequest);
        assert_eq!(
            check_data(&data("\"123456789\""), &settings).unwrap_err().code,
            ErrorCode::MessageTooLarge
        );
        assert!(check_data(&data("\"12345\""), &settings).is_ok());
    }
}
