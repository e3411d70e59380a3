//! One WebSocket connection's I/O: messages read from the client, frames
//! written to it. Reads go through a buffer on the stack and are kept only
//! while a frame is incomplete; a lone frame is written straight from the
//! bytes every connection shares, several small ones are put together in
//! the worker thread's staging buffer first. An idle connection holds no
//! buffer at all (`fanfare_protocol::websocket`).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use fanfare_protocol::websocket::{Incoming, MessageReader, Violation};
use fanfare_protocol::{Frame, Stamp};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes asked of the socket per read. On the stack, so it costs an idle
/// connection nothing.
const READ_CHUNK: usize = 8 * 1024;
/// Most bytes copied together for one write.
const STAGING_BYTES: usize = 32 * 1024;

thread_local! {
    /// Where small frames are put together for one write (per worker
    /// thread, so no connection holds a write buffer).
    static STAGING: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(STAGING_BYTES));
    /// Writes and frames written by this thread, not yet added to the
    /// process-wide counters.
    static WRITES: Cell<WriteCount> = const { Cell::new(WriteCount { writes: 0, frames: 0 }) };
    /// `fanfare_delivery_latency_seconds`, looked up once per thread
    /// rather than once per write.
    static DELIVERY_LATENCY: metrics::Histogram = metrics::histogram!("fanfare_delivery_latency_seconds");
}

/// Writes counted on a thread before they are added to the shared
/// counters: one shared update per this many writes instead of two per
/// write, on the hottest path of fan-out.
const WRITES_PER_COUNT: u64 = 64;

#[derive(Clone, Copy)]
struct WriteCount {
    writes: u64,
    frames: u64,
}

/// Counts one write that finished `frames` frames (for
/// `fanfare_ws_writes_total` and `fanfare_ws_frames_written_total`: their
/// ratio is how many frames a `send` carries).
fn count_write(frames: u64) {
    WRITES.with(|count| {
        let mut now = count.get();
        now.writes += 1;
        now.frames += frames;
        if now.writes >= WRITES_PER_COUNT {
            metrics::counter!("fanfare_ws_writes_total").increment(now.writes);
            metrics::counter!("fanfare_ws_frames_written_total").increment(now.frames);
            now = WriteCount { writes: 0, frames: 0 };
        }
        count.set(now);
    });
}

/// Records how old the oldest live publication a write finished was: from
/// its publish being accepted to its last byte handed to the kernel.
fn observe_delivery(oldest: Option<Stamp>) {
    if let Some(accepted) = oldest {
        let age = accepted.age(Instant::now());
        DELIVERY_LATENCY.with(|histogram| histogram.record(age.as_secs_f64()));
    }
}

/// Why reading stopped.
#[derive(Debug)]
pub(crate) enum ReadEnd {
    /// The client broke the framing rules.
    Violation(Violation),
    /// The connection closed or failed under us.
    Gone,
}

pub(crate) struct WebSocket<S> {
    io: S,
    reader: MessageReader,
    outbound: Outbound,
}

/// Frames waiting to be written, in order; the first may be partly written.
#[derive(Default)]
pub(crate) struct Outbound {
    frames: VecDeque<Frame>,
    written: usize,
}

impl Outbound {
    pub fn push(&mut self, frame: Frame) {
        self.frames.push_back(frame);
    }

    /// Where the outbox's frames go.
    pub fn queue(&mut self) -> &mut VecDeque<Frame> {
        &mut self.frames
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Drops what a write took: `n` bytes from the front. Returns how
    /// many frames it finished, and when the oldest live publication
    /// among them was accepted (frames are queued in the order their
    /// publications were, so it is the first stamped one).
    fn advance(&mut self, mut n: usize) -> (u64, Option<Stamp>) {
        let mut finished = 0;
        let mut oldest = None;
        while n > 0 {
            let front = self.frames.front().expect("wrote no more than was queued");
            let left = front.wire().len() - self.written;
            if n < left {
                self.written += n;
                return (finished, oldest);
            }
            n -= left;
            self.written = 0;
            oldest = oldest.or(front.accepted());
            self.frames.pop_front();
            finished += 1;
        }
        // An idle connection keeps no buffer (the outbox swaps its queue
        // in when it has frames).
        if self.frames.is_empty() {
            self.frames = VecDeque::new();
        }
        (finished, oldest)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// `read_ahead`: bytes already read from `io` past the handshake.
    pub fn new(io: S, read_ahead: &[u8], max_message_bytes: usize) -> Self {
        let mut reader = MessageReader::new(max_message_bytes);
        if !read_ahead.is_empty() {
            reader.feed(read_ahead);
        }
        Self { io, reader, outbound: Outbound::default() }
    }

    pub fn outbound(&mut self) -> &mut Outbound {
        &mut self.outbound
    }

    /// Writes queued frames until none is left (`Ready(Ok)`) or the socket
    /// is full (`Pending`, woken when it has room).
    pub fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.outbound.is_empty() {
            let n = ready!(self.poll_write_some(cx))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let (finished, oldest) = self.outbound.advance(n);
            count_write(finished);
            observe_delivery(oldest);
        }
        Poll::Ready(Ok(()))
    }

    /// One write: a lone frame as it is; several small ones copied
    /// together first into the worker thread's staging buffer, because
    /// the kernel's per-segment cost of a `writev` of many small frames
    /// is higher than the copy.
    fn poll_write_some(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let frames = &self.outbound.frames;
        let first = &frames[0].wire()[self.outbound.written..];
        if frames.len() == 1 || first.len() >= STAGING_BYTES / 2 {
            return Pin::new(&mut self.io).poll_write(cx, first);
        }
        STAGING.with_borrow_mut(|staging| {
            staging.clear();
            staging.extend_from_slice(first);
            for frame in frames.iter().skip(1) {
                if staging.len() + frame.wire().len() > STAGING_BYTES {
                    break;
                }
                staging.extend_from_slice(frame.wire());
            }
            Pin::new(&mut self.io).poll_write(cx, staging)
        })
    }

    /// The next message from the client.
    pub fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Incoming, ReadEnd>> {
        loop {
            match self.reader.next_message() {
                Ok(Some(message)) => return Poll::Ready(Ok(message)),
                Ok(None) => {}
                Err(violation) => return Poll::Ready(Err(ReadEnd::Violation(violation))),
            }
            // Not zeroed: `ReadBuf` tracks what the read filled.
            let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut buffer = ReadBuf::uninit(&mut chunk);
            match ready!(Pin::new(&mut self.io).poll_read(cx, &mut buffer)) {
                Ok(()) if buffer.filled().is_empty() => return Poll::Ready(Err(ReadEnd::Gone)),
                Ok(()) => self.reader.feed(buffer.filled()),
                Err(_) => return Poll::Ready(Err(ReadEnd::Gone)),
            }
        }
    }

    /// Reads and drops whatever the client still sends, until it closes
    /// its side or shows the end of the close handshake.
    pub fn poll_discard(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let mut chunk = [0u8; READ_CHUNK];
            let mut buffer = ReadBuf::new(&mut chunk);
            match ready!(Pin::new(&mut self.io).poll_read(cx, &mut buffer)) {
                Ok(()) if !buffer.filled().is_empty() => {}
                _ => return Poll::Ready(()),
            }
        }
    }

    pub async fn shutdown(&mut self) {
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut self.io).await;
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use tokio::io::AsyncReadExt;

    use super::*;

    /// Frames of many sizes through a pipe that takes 7 bytes at a time:
    /// every partial write resumes where it stopped, and the bytes arrive
    /// exactly as queued.
    #[tokio::test]
    async fn partial_writes_deliver_every_frame_intact_and_in_order() {
        let (ours, mut theirs) = tokio::io::duplex(7);
        let mut socket = WebSocket::new(ours, &[], 1024);
        let frames: Vec<Frame> = [0, 1, 125, 126, 3000, 65_536, 2, 40_000]
            .iter()
            .map(|&n| Frame::from_string("z".repeat(n)))
            .collect();
        let expected: Vec<u8> = frames.iter().flat_map(|f| f.wire().to_vec()).collect();
        for frame in frames {
            socket.outbound().push(frame);
        }
        let reader = tokio::spawn(async move {
            let mut got = vec![0; expected.len()];
            theirs.read_exact(&mut got).await.unwrap();
            assert_eq!(got, expected);
        });
        poll_fn(|cx| socket.poll_write(cx)).await.unwrap();
        assert!(socket.outbound().is_empty());
        assert_eq!(socket.outbound().queue().capacity(), 0, "an idle connection keeps no buffer");
        reader.await.unwrap();
    }

    #[tokio::test]
    async fn bytes_read_with_the_handshake_come_first() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let early = [0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
        let mut socket = WebSocket::new(ours, &early, 1024);
        tokio::io::AsyncWriteExt::write_all(&mut theirs, &[0x81, 0x81, 0, 0, 0, 0, b'!']).await.unwrap();
        let first = poll_fn(|cx| socket.poll_message(cx)).await.unwrap();
        let second = poll_fn(|cx| socket.poll_message(cx)).await.unwrap();
        assert_eq!((first, second), (Incoming::Text("hi".into()), Incoming::Text("!".into())));
    }
}
