//! Just enough RESP2 for a subscribed connection: commands out, replies in.
//!
//! The bus reads its pub/sub socket itself (not through redis-rs's
//! `aio::PubSub`, whose driver forwards every message into an unbounded
//! queue) so that a full event queue stops the reads: that is the
//! backpressure the bus contract promises. What a subscribed RESP2
//! connection receives is small: `+OK` and errors during the handshake,
//! then three-element arrays (`message`, `subscribe`, `unsubscribe`) and
//! the two-element `pong`.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

/// The largest bulk string Redis sends (`proto-max-bulk-len`, 512 MB).
const MAX_BULK: usize = 512 * 1024 * 1024;
/// Pub/sub replies are flat and short; anything deeper or longer is not
/// a reply this connection can get.
const MAX_ARRAY: usize = 16;
const MAX_DEPTH: usize = 2;

/// One reply, its strings sharing the read buffer's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Simple(Bytes),
    Error(Bytes),
    Integer(i64),
    Bulk(Option<Bytes>),
    Array(Option<Vec<Reply>>),
}

/// The peer sent something that is not RESP2 (or not a pub/sub reply).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed reply from Redis: {0}")]
pub(crate) struct RespError(&'static str);

/// Takes the first complete reply off `buf`, or `None` if it is not all
/// there yet (nothing is consumed then).
pub(crate) fn take_reply(buf: &mut BytesMut) -> Result<Option<Reply>, RespError> {
    let Some((raw, end)) = scan(buf, 0, 0)? else { return Ok(None) };
    let bytes = buf.split_to(end).freeze();
    Ok(Some(raw.into_reply(&bytes)))
}

/// A command as RESP2: an array of bulk strings.
pub(crate) fn command(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + parts.iter().map(|p| p.len() + 16).sum::<usize>());
    out.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
    for part in parts {
        out.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A reply located in the buffer, before the buffer is split off.
enum Raw {
    Simple(Range<usize>),
    Error(Range<usize>),
    Integer(i64),
    Bulk(Option<Range<usize>>),
    Array(Option<Vec<Raw>>),
}

impl Raw {
    fn into_reply(self, bytes: &Bytes) -> Reply {
        match self {
            Raw::Simple(range) => Reply::Simple(bytes.slice(range)),
            Raw::Error(range) => Reply::Error(bytes.slice(range)),
            Raw::Integer(n) => Reply::Integer(n),
            Raw::Bulk(range) => Reply::Bulk(range.map(|r| bytes.slice(r))),
            Raw::Array(items) => {
                Reply::Array(items.map(|items| items.into_iter().map(|raw| raw.into_reply(bytes)).collect()))
            }
        }
    }
}

/// The reply starting at `at`, and where it ends; `None` if incomplete.
fn scan(buf: &[u8], at: usize, depth: usize) -> Result<Option<(Raw, usize)>, RespError> {
    let Some(&kind) = buf.get(at) else { return Ok(None) };
    let Some((line, next)) = line(buf, at + 1) else { return Ok(None) };
    let raw = match kind {
        b'+' => Raw::Simple(line),
        b'-' => Raw::Error(line),
        b':' => Raw::Integer(number(&buf[line])?),
        b'$' => return bulk(buf, number(&buf[line])?, next),
        b'*' => return array(buf, number(&buf[line])?, next, depth),
        _ => return Err(RespError("unknown type byte")),
    };
    Ok(Some((raw, next)))
}

fn bulk(buf: &[u8], len: i64, start: usize) -> Result<Option<(Raw, usize)>, RespError> {
    if len == -1 {
        return Ok(Some((Raw::Bulk(None), start)));
    }
    let len = usize::try_from(len).ok().filter(|&len| len <= MAX_BULK).ok_or(RespError("bulk length"))?;
    let end = start + len;
    match buf.get(end..end + 2) {
        None => Ok(None),
        Some(b"\r\n") => Ok(Some((Raw::Bulk(Some(start..end)), end + 2))),
        Some(_) => Err(RespError("bulk string not terminated")),
    }
}

fn array(buf: &[u8], len: i64, mut at: usize, depth: usize) -> Result<Option<(Raw, usize)>, RespError> {
    if len == -1 {
        return Ok(Some((Raw::Array(None), at)));
    }
    let len = usize::try_from(len).ok().filter(|&len| len <= MAX_ARRAY).ok_or(RespError("array length"))?;
    if depth >= MAX_DEPTH {
        return Err(RespError("nested too deep"));
    }
    let mut items = Vec::with_capacity(len);
    for _ in 0..len {
        let Some((item, next)) = scan(buf, at, depth + 1)? else { return Ok(None) };
        items.push(item);
        at = next;
    }
    Ok(Some((Raw::Array(Some(items)), at)))
}

/// The line starting at `at` (without its CRLF) and where the next begins.
fn line(buf: &[u8], at: usize) -> Option<(Range<usize>, usize)> {
    let rest = buf.get(at..)?;
    let end = at + rest.windows(2).position(|w| w == b"\r\n")?;
    Some((at..end, end + 2))
}

fn number(text: &[u8]) -> Result<i64, RespError> {
    std::str::from_utf8(text).ok().and_then(|s| s.parse().ok()).ok_or(RespError("bad number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Reply {
        Reply::Bulk(Some(Bytes::copy_from_slice(text.as_bytes())))
    }

    #[test]
    fn a_message_arrives_whole_even_when_read_in_pieces() {
        let wire = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhe\r\no\r\n+OK\r\n";
        let mut buf = BytesMut::new();
        let mut replies = Vec::new();
        for &byte in wire {
            buf.extend_from_slice(&[byte]);
            while let Some(reply) = take_reply(&mut buf).unwrap() {
                replies.push(reply);
            }
        }
        assert_eq!(
            replies,
            [
                Reply::Array(Some(vec![bulk("message"), bulk("ch"), bulk("he\r\no")])),
                Reply::Simple(Bytes::from_static(b"OK"))
            ]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn confirmations_pongs_and_errors_decode() {
        let mut buf = BytesMut::from(
            &b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n-ERR no\r\n"[..],
        );
        assert_eq!(
            take_reply(&mut buf).unwrap(),
            Some(Reply::Array(Some(vec![bulk("subscribe"), bulk("a"), Reply::Integer(1)])))
        );
        assert_eq!(take_reply(&mut buf).unwrap(), Some(Reply::Array(Some(vec![bulk("pong"), bulk("")]))));
        assert_eq!(take_reply(&mut buf).unwrap(), Some(Reply::Error(Bytes::from_static(b"ERR no"))));
        assert_eq!(take_reply(&mut buf).unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in
            [&b"?x\r\n"[..], b"$-5\r\n", b"$3\r\nabcde", b"*99\r\n", b"*1\r\n*1\r\n*1\r\n:1\r\n", b":x\r\n"]
        {
            assert!(take_reply(&mut BytesMut::from(bad)).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_command_is_an_array_of_bulk_strings() {
        assert_eq!(command(&[b"SUBSCRIBE", b"a b"]), b"*2\r\n$9\r\nSUBSCRIBE\r\n$3\r\na b\r\n");
    }
}
