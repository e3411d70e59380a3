//! WebSocket framing (RFC 6455), server side, without I/O.
//!
//! Why by hand: with tungstenite every connection needed two tasks, a
//! split lock and its own read and write buffers, about 7 KiB per idle
//! connection (`docs/benchmarks.md`). Here the server's frames are built
//! once per message with their header ([`crate::Frame`]) and written to
//! every socket as they are, and a connection holds no buffer while idle:
//! [`MessageReader`] keeps bytes only while a frame or a fragmented message
//! is incomplete. Only what a server needs is here: client frames must be
//! masked, server frames never are, and no extension (permessage-deflate)
//! is offered, so every reserved bit must be zero. Checked against the
//! Autobahn test suite (`scripts/test-autobahn`).

use bytes::{BufMut, Bytes, BytesMut};

use crate::Frame;

/// Frame opcodes (RFC 6455 §5.2).
const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// Longest header of a server frame: 2 bytes and a 64-bit length.
pub const MAX_HEADER_LEN: usize = 10;
/// Longest payload of a control frame.
const MAX_CONTROL_PAYLOAD: usize = 125;

/// Writes the header of an unmasked, final frame of `payload_len` bytes;
/// returns how many bytes it used.
pub fn write_header(opcode: u8, payload_len: usize, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
    out[0] = 0x80 | opcode;
    match payload_len {
        0..=125 => {
            out[1] = payload_len as u8;
            2
        }
        126..=0xFFFF => {
            out[1] = 126;
            out[2..4].copy_from_slice(&(payload_len as u16).to_be_bytes());
            4
        }
        _ => {
            out[1] = 127;
            out[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
            10
        }
    }
}

/// A whole unmasked frame: header and payload in one buffer.
pub(crate) fn frame(opcode: u8, payload: &[u8]) -> Frame {
    let mut header = [0u8; MAX_HEADER_LEN];
    let header_len = write_header(opcode, payload.len(), &mut header);
    let mut wire = BytesMut::with_capacity(header_len + payload.len());
    wire.put_slice(&header[..header_len]);
    wire.put_slice(payload);
    Frame::from_wire(wire.freeze(), header_len as u8)
}

pub(crate) fn text_frame(payload: &[u8]) -> Frame {
    frame(TEXT, payload)
}

pub(crate) fn binary_frame(payload: &[u8]) -> Frame {
    frame(BINARY, payload)
}

/// A ping frame (empty payload): the server's keepalive.
pub fn ping_frame() -> Frame {
    Frame::from_wire(Bytes::from_static(&[0x80 | PING, 0]), 2)
}

/// A ping frame carrying `payload` (at most 125 bytes), which the client's
/// pong echoes: a server that numbers its pings knows which one was
/// answered.
pub fn ping_frame_with(payload: &[u8]) -> Frame {
    frame(PING, &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)])
}

/// The pong answering a ping with `payload`.
pub fn pong_frame(payload: &[u8]) -> Frame {
    frame(PONG, payload)
}

/// A close frame with a status code and a reason (cut to fit a control frame).
pub fn close_frame(code: u16, reason: &str) -> Frame {
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    frame(CLOSE, &payload)
}

/// A complete message from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    /// A pong, with the payload of the ping it answers.
    Pong(Vec<u8>),
    /// The client's close frame: its status code, if it sent one.
    Close(Option<u16>),
}

/// Why the connection must be failed; each maps to the close code sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// Broken framing rules: close with 1002.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A text message or close reason that is not UTF-8: close with 1007.
    #[error("invalid UTF-8 in a text message or close reason")]
    InvalidUtf8,
    /// A frame or message over the size limit: close with 1009.
    #[error("message larger than {0} bytes")]
    TooBig(usize),
}

impl Violation {
    pub fn close_code(self) -> crate::CloseCode {
        match self {
            Violation::Protocol(_) => crate::CloseCode::ProtocolError,
            Violation::InvalidUtf8 => crate::CloseCode::InvalidPayload,
            Violation::TooBig(_) => crate::CloseCode::MessageTooBig,
        }
    }
}

/// A fragmented data message being put together.
#[derive(Debug)]
struct Fragments {
    text: bool,
    data: Vec<u8>,
    /// For text: how much of `data` is known to be valid UTF-8 (a
    /// character may be split across fragments).
    checked: usize,
}

/// A parsed frame header.
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    header_len: usize,
    payload_len: usize,
}

/// Turns the bytes read from a client into messages.
///
/// Feed it what the socket gave ([`MessageReader::feed`]), then take
/// messages with [`MessageReader::next_message`] until it returns
/// `Ok(None)`. It holds no allocation between messages.
#[derive(Debug)]
pub struct MessageReader {
    max_message_bytes: usize,
    /// Bytes received but not yet parsed (an incomplete frame).
    unparsed: Vec<u8>,
    /// Where parsing resumes in `unparsed`.
    start: usize,
    fragments: Option<Box<Fragments>>,
}

impl MessageReader {
    pub fn new(max_message_bytes: usize) -> Self {
        Self { max_message_bytes, unparsed: Vec::new(), start: 0, fragments: None }
    }

    /// Adds bytes read from the socket.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.unparsed.len() {
            self.unparsed.clear();
            self.start = 0;
        }
        self.unparsed.extend_from_slice(bytes);
    }

    /// Whether bytes are waiting for the rest of their frame.
    pub fn is_mid_frame(&self) -> bool {
        self.start < self.unparsed.len()
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    /// After an error the connection must be closed.
    pub fn next_message(&mut self) -> Result<Option<Incoming>, Violation> {
        loop {
            let Some(header) = self.parse_header()? else {
                self.release();
                return Ok(None);
            };
            let available = self.unparsed.len() - self.start;
            if available < header.header_len + header.payload_len {
                self.release();
                return Ok(None);
            }
            let begin = self.start + header.header_len;
            let end = begin + header.payload_len;
            self.start = end;
            let payload = &mut self.unparsed[begin..end];
            unmask(payload, header.mask);
            let payload: &[u8] = payload;
            if let Some(message) = Self::take(&mut self.fragments, header.fin, header.opcode, payload)? {
                return Ok(Some(message));
            }
        }
    }

    /// Frees the buffer once everything in it is parsed, so an idle
    /// connection holds nothing; keeps only an incomplete frame.
    fn release(&mut self) {
        if self.start == self.unparsed.len() {
            self.unparsed = Vec::new();
        } else if self.start > 0 {
            self.unparsed.drain(..self.start);
            if self.unparsed.capacity() > 4 * self.unparsed.len().max(1024) {
                self.unparsed.shrink_to_fit();
            }
        }
        self.start = 0;
    }

    fn parse_header(&self) -> Result<Option<Header>, Violation> {
        let bytes = &self.unparsed[self.start..];
        if bytes.len() < 2 {
            return Ok(None);
        }
        let (fin, rsv, opcode) = (bytes[0] & 0x80 != 0, bytes[0] & 0x70, bytes[0] & 0x0F);
        let (masked, len7) = (bytes[1] & 0x80 != 0, (bytes[1] & 0x7F) as usize);
        if rsv != 0 {
            return Err(Violation::Protocol("reserved bits set without an extension"));
        }
        if !matches!(opcode, CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG) {
            return Err(Violation::Protocol("unknown opcode"));
        }
        if opcode >= CLOSE && (!fin || len7 > MAX_CONTROL_PAYLOAD) {
            return Err(Violation::Protocol("fragmented or oversized control frame"));
        }
        if !masked {
            return Err(Violation::Protocol("client frames must be masked"));
        }
        let (length_len, payload_len) = match len7 {
            126 if bytes.len() >= 4 => (2, u16::from_be_bytes([bytes[2], bytes[3]]) as u64),
            127 if bytes.len() >= 10 => (8, u64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes"))),
            126 | 127 => return Ok(None),
            n => (0, n as u64),
        };
        if payload_len >> 63 != 0 {
            return Err(Violation::Protocol("64-bit length with its top bit set"));
        }
        let already = self.fragments.as_ref().map_or(0, |f| f.data.len() as u64);
        if payload_len + already > self.max_message_bytes as u64 {
            return Err(Violation::TooBig(self.max_message_bytes));
        }
        let header_len = 2 + length_len + 4;
        if bytes.len() < header_len {
            return Ok(None);
        }
        let mask = bytes[header_len - 4..header_len].try_into().expect("4 bytes");
        Ok(Some(Header { fin, opcode, mask, header_len, payload_len: payload_len as usize }))
    }

    /// One unmasked frame: a message, or a piece of one.
    fn take(
        fragments: &mut Option<Box<Fragments>>,
        fin: bool,
        opcode: u8,
        payload: &[u8],
    ) -> Result<Option<Incoming>, Violation> {
        match opcode {
            PING => Ok(Some(Incoming::Ping(payload.to_vec()))),
            PONG => Ok(Some(Incoming::Pong(payload.to_vec()))),
            CLOSE => close_payload(payload).map(|code| Some(Incoming::Close(code))),
            TEXT | BINARY if fragments.is_some() => {
                Err(Violation::Protocol("a new message before the last one was finished"))
            }
            TEXT | BINARY if fin => complete(opcode == TEXT, payload.to_vec()).map(Some),
            TEXT | BINARY => {
                let mut started = Fragments { text: opcode == TEXT, data: Vec::new(), checked: 0 };
                started.append(payload)?;
                *fragments = Some(Box::new(started));
                Ok(None)
            }
            _ => {
                let Some(open) = fragments.as_mut() else {
                    return Err(Violation::Protocol("a continuation frame with no message to continue"));
                };
                open.append(payload)?;
                if !fin {
                    return Ok(None);
                }
                let done = fragments.take().expect("checked above");
                complete(done.text, done.data).map(Some)
            }
        }
    }
}

impl Fragments {
    /// Adds a fragment; a text message fails as soon as it cannot become
    /// valid UTF-8, not only when it ends.
    fn append(&mut self, payload: &[u8]) -> Result<(), Violation> {
        self.data.extend_from_slice(payload);
        if self.text {
            match std::str::from_utf8(&self.data[self.checked..]) {
                Ok(_) => self.checked = self.data.len(),
                Err(error) if error.error_len().is_none() => self.checked += error.valid_up_to(),
                Err(_) => return Err(Violation::InvalidUtf8),
            }
        }
        Ok(())
    }
}

fn complete(text: bool, data: Vec<u8>) -> Result<Incoming, Violation> {
    if text {
        String::from_utf8(data).map(Incoming::Text).map_err(|_| Violation::InvalidUtf8)
    } else {
        Ok(Incoming::Binary(data))
    }
}

/// The status code of a close frame, checked as RFC 6455 §7.4 wants.
fn close_payload(payload: &[u8]) -> Result<Option<u16>, Violation> {
    match payload {
        [] => Ok(None),
        [_] => Err(Violation::Protocol("a close frame with a one-byte body")),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            if !is_valid_close_code(code) {
                return Err(Violation::Protocol("a close code that may not be sent"));
            }
            std::str::from_utf8(reason).map_err(|_| Violation::InvalidUtf8)?;
            Ok(Some(code))
        }
    }
}

/// Codes an endpoint may send: the defined ones (not 1004–1006, which are
/// reserved or only local, nor 1015) and the registered and private ranges.
fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// XORs the payload with the client's mask, in place.
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = payload.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let value = u32::from_ne_bytes(chunk.try_into().expect("4 bytes")) ^ word;
        chunk.copy_from_slice(&value.to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i];
    }
}

#[cfg(test)]
mod tests;
