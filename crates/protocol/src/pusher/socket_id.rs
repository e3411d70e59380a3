//! Socket ids: `<u64>.<u64>`.
//!
//! The server gives each connection a socket id in
//! `pusher:connection_established`; the app's auth endpoint signs it into
//! every channel and user signature, and the HTTP API takes it back as
//! `socket_id` to exclude the sender from a trigger. Server SDKs validate it
//! against `^\d+\.\d+$` (pusher-http-node `validateSocketId`), so it is two
//! decimal numbers: the connection's id on this server, then a random salt
//! from the caller, which keeps ids unique across servers and restarts and
//! unguessable from one another.

use std::fmt;
use std::str::FromStr;

/// A connection's socket id. Equal ids compare equal by value, so `"01.2"`
/// and `"1.2"` name the same socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId {
    connection_id: u64,
    salt: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a socket id is two unsigned 64-bit decimal numbers joined by '.' (like \"1234.5678\")")]
pub struct SocketIdError;

impl SocketId {
    /// `salt` should be random: this crate has no randomness of its own.
    pub fn new(connection_id: u64, salt: u64) -> Self {
        Self { connection_id, salt }
    }

    /// Parses `^\d+\.\d+$`, each part within `u64`.
    pub fn parse(text: &str) -> Result<Self, SocketIdError> {
        let (first, second) = text.split_once('.').ok_or(SocketIdError)?;
        Ok(Self { connection_id: parse_part(first)?, salt: parse_part(second)? })
    }

    pub fn connection_id(&self) -> u64 {
        self.connection_id
    }

    pub fn salt(&self) -> u64 {
        self.salt
    }
}

/// Digits only: `u64::from_str` would also take a leading `+`.
fn parse_part(digits: &str) -> Result<u64, SocketIdError> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SocketIdError);
    }
    digits.parse().map_err(|_| SocketIdError)
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.connection_id, self.salt)
    }
}

impl FromStr for SocketId {
    type Err = SocketIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches_sdk_pattern(text: &str) -> bool {
        // ^\d+\.\d+$, as pusher-http-node checks it.
        match text.split_once('.') {
            Some((a, b)) => [a, b].iter().all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit())),
            None => false,
        }
    }

    #[test]
    fn a_socket_id_is_connection_id_dot_salt() {
        let id = SocketId::new(42, 9_876_543_210);
        assert_eq!(id.to_string(), "42.9876543210");
        assert!(matches_sdk_pattern(&id.to_string()));
        let extremes = SocketId::new(u64::MAX, 0).to_string();
        assert!(matches_sdk_pattern(&extremes));
    }

    #[test]
    fn formatting_and_parsing_round_trip() {
        for id in [SocketId::new(0, 0), SocketId::new(1234, 1234), SocketId::new(u64::MAX, u64::MAX)] {
            assert_eq!(SocketId::parse(&id.to_string()), Ok(id));
            assert_eq!(id.to_string().parse::<SocketId>(), Ok(id));
        }
        assert_eq!(SocketId::parse("1234.1234").unwrap().to_string(), "1234.1234");
    }

    #[test]
    fn anything_but_two_decimal_numbers_is_refused() {
        for bad in ["", "1234", "1234.", ".1234", "1.2.3", "+1.2", "1.-2", "a.b", "1. 2", "1,2"] {
            assert_eq!(SocketId::parse(bad), Err(SocketIdError), "{bad:?}");
        }
        // Matches the pattern but does not fit a u64: not one of ours.
        assert_eq!(SocketId::parse("18446744073709551616.1"), Err(SocketIdError));
    }

    #[test]
    fn leading_zeros_name_the_same_socket() {
        assert_eq!(SocketId::parse("0012.3").unwrap(), SocketId::new(12, 3));
    }
}
