//! HMAC-SHA256 signatures made with the app secret.
//!
//! The app's own server signs, and Fanfare checks: a channel subscription
//! (`auth` in `pusher:subscribe`), a user signin (`auth` in `pusher:signin`).
//! Fanfare signs what it sends out: webhooks (`X-Pusher-Signature`). Every
//! signature is the lowercase hex of `HMAC-SHA256(secret, string_to_sign)`;
//! client auths are prefixed with the app key: `"<key>:<hex>"`. Checks
//! compare in constant time ([`Mac::verify_slice`]); a malformed signature
//! is simply not valid.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// `hex(HMAC-SHA256(secret, string_to_sign))`.
pub fn sign(secret: &str, string_to_sign: &str) -> String {
    hex::encode(mac(secret, string_to_sign.as_bytes()).finalize().into_bytes())
}

/// Whether `signature_hex` is the signature of `message`, in constant time.
pub(super) fn verify_hex(secret: &str, message: &[u8], signature_hex: &str) -> bool {
    match hex::decode(signature_hex) {
        Ok(signature) => mac(secret, message).verify_slice(&signature).is_ok(),
        Err(_) => false,
    }
}

fn mac(secret: &str, message: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(message);
    mac
}

/// Checks a `pusher:subscribe` `auth` (`"<key>:<hex>"`) for a private,
/// encrypted or presence channel. The signed string is
/// `socket_id:channel`, or `socket_id:channel:channel_data` whenever the
/// subscribe carries `channel_data` — for presence channels, and also for
/// private ones when the app's auth endpoint returned `channel_data` (as
/// pusher-js's own integration tests do).
pub fn verify_channel_auth(
    key: &str,
    secret: &str,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
    auth: &str,
) -> bool {
    let string_to_sign = match channel_data {
        Some(data) => format!("{socket_id}:{channel}:{data}"),
        None => format!("{socket_id}:{channel}"),
    };
    verify_keyed(key, secret, &string_to_sign, auth)
}

/// Checks a `pusher:signin` `auth` over `socket_id::user::user_data`, with
/// `user_data` exactly as the client sent it.
pub fn verify_user_auth(key: &str, secret: &str, socket_id: &str, user_data: &str, auth: &str) -> bool {
    verify_keyed(key, secret, &format!("{socket_id}::user::{user_data}"), auth)
}

/// `auth` is `"<key>:<hex>"`: the key must be this app's (it is public, so
/// a plain comparison), the hex the signature.
fn verify_keyed(key: &str, secret: &str, string_to_sign: &str, auth: &str) -> bool {
    match auth.split_once(':') {
        Some((auth_key, signature)) if auth_key == key => {
            verify_hex(secret, string_to_sign.as_bytes(), signature)
        }
        _ => false,
    }
}

/// The `X-Pusher-Signature` of a webhook: the signature of the raw body bytes.
pub fn sign_webhook(secret: &str, body: &[u8]) -> String {
    hex::encode(mac(secret, body).finalize().into_bytes())
}

/// Checks an `X-Pusher-Signature` against the raw body, as a receiver does
/// (pusher-http-node `WebHook.isValid`); for tests and tools.
pub fn verify_webhook(secret: &str, body: &[u8], signature: &str) -> bool {
    verify_hex(secret, body, signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The published test vectors (Pusher docs, library_auth_reference).
    const KEY: &str = "278d425bdf160c739803";
    const SECRET: &str = "7ad3773142a6692b25b8";
    const SOCKET: &str = "1234.1234";

    const PRIVATE_SIG: &str = "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4";
    const USER_DATA: &str = r#"{"id":"12345"}"#;
    const USER_SIG: &str = "4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba";
    const PRESENCE_DATA: &str = r#"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#;
    const PRESENCE_SIG: &str = "31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80";

    fn auth(signature: &str) -> String {
        format!("{KEY}:{signature}")
    }

    #[test]
    fn private_channel_vector() {
        assert_eq!(sign(SECRET, "1234.1234:private-foobar"), PRIVATE_SIG);
        assert!(verify_channel_auth(KEY, SECRET, SOCKET, "private-foobar", None, &auth(PRIVATE_SIG)));
    }

    #[test]
    fn user_signin_vector() {
        assert_eq!(sign(SECRET, &format!("1234.1234::user::{USER_DATA}")), USER_SIG);
        assert!(verify_user_auth(KEY, SECRET, SOCKET, USER_DATA, &auth(USER_SIG)));
    }

    #[test]
    fn presence_channel_vector_uses_the_corrected_value() {
        let channel = "presence-foobar";
        assert!(verify_channel_auth(KEY, SECRET, SOCKET, channel, Some(PRESENCE_DATA), &auth(PRESENCE_SIG)));
        // The docs' value was computed for "Mr. Pusher", not this input.
        let stale = "afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c";
        assert!(!verify_channel_auth(KEY, SECRET, SOCKET, channel, Some(PRESENCE_DATA), &auth(stale)));
        let old_data = r#"{"user_id":10,"user_info":{"name":"Mr. Pusher"}}"#;
        assert!(verify_channel_auth(KEY, SECRET, SOCKET, channel, Some(old_data), &auth(stale)));
    }

    #[test]
    fn a_signature_for_another_socket_channel_or_member_is_refused() {
        let good = auth(PRIVATE_SIG);
        assert!(!verify_channel_auth(KEY, SECRET, "1234.1235", "private-foobar", None, &good));
        assert!(!verify_channel_auth(KEY, SECRET, SOCKET, "private-foobaz", None, &good));
        assert!(!verify_channel_auth(KEY, SECRET, SOCKET, "private-foobar", Some("{}"), &good));
        let presence = auth(PRESENCE_SIG);
        let other_member = r#"{"user_id":11,"user_info":{"name":"Mr. Channels"}}"#;
        assert!(!verify_channel_auth(KEY, SECRET, SOCKET, "presence-foobar", Some(other_member), &presence));
        assert!(!verify_user_auth(KEY, SECRET, SOCKET, r#"{"id":"12346"}"#, &auth(USER_SIG)));
    }

    #[test]
    fn channel_data_is_signed_on_private_channels_too() {
        let data = r#"{"user_id":"1"}"#;
        let signature = sign(SECRET, &format!("{SOCKET}:private-foobar:{data}"));
        assert!(verify_channel_auth(KEY, SECRET, SOCKET, "private-foobar", Some(data), &auth(&signature)));
    }

    #[test]
    fn a_wrong_key_or_malformed_auth_is_refused() {
        let wrong_key = format!("other-key:{PRIVATE_SIG}");
        assert!(!verify_channel_auth(KEY, SECRET, SOCKET, "private-foobar", None, &wrong_key));
        for bad in ["", PRIVATE_SIG, &format!("{KEY}:"), &format!("{KEY}:zz{}", &PRIVATE_SIG[2..])] {
            assert!(!verify_channel_auth(KEY, SECRET, SOCKET, "private-foobar", None, bad), "{bad:?}");
        }
        // A truncated signature is not a prefix match.
        let short = auth(&PRIVATE_SIG[..32]);
        assert!(!verify_channel_auth(KEY, SECRET, SOCKET, "private-foobar", None, &short));
        // Another secret signs differently.
        assert!(!verify_channel_auth(KEY, "other", SOCKET, "private-foobar", None, &auth(PRIVATE_SIG)));
    }

    #[test]
    fn webhook_signature_is_the_hmac_of_the_raw_body() {
        let body = br#"{"time_ms":1327078148132,"events":[{"name":"channel_occupied","channel":"test"}]}"#;
        let signature = sign_webhook(SECRET, body);
        assert_eq!(signature, sign(SECRET, std::str::from_utf8(body).unwrap()));
        assert_eq!(signature.len(), 64);
        assert!(verify_webhook(SECRET, body, &signature));
        assert!(!verify_webhook(SECRET, b"{}", &signature));
    }
}
