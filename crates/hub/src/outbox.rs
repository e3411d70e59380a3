//! The outbox: a connection's bounded queue of frames waiting to be written.
//!
//! Fan-out pushes shared [`Frame`]s here without waiting; the connection's
//! task drains everything queued in one go and writes it together. When a
//! push finds the outbox full, the connection is too slow for the channel:
//! the outbox closes itself with [`CloseCode::SlowConsumer`] ("reconnect
//! and recover") instead of growing or making the publisher wait, so one
//! slow client never delays the others and memory stays bounded.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::task::{Context, Poll, Waker};

use fanfare_protocol::{CloseCode, Frame};
use parking_lot::Mutex;
use tokio::sync::Notify;

/// Why an outbox was closed, and what the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseReason {
    pub code: CloseCode,
    /// Advice to wait at least this long before reconnecting (spreads a
    /// reconnect storm after a shutdown).
    pub reconnect_after_ms: Option<u64>,
}

impl CloseReason {
    pub fn new(code: CloseCode) -> Self {
        Self { code, reconnect_after_ms: None }
    }
}

/// Limits of one outbox: whichever is reached first makes it overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLimits {
    pub max_frames: usize,
    pub max_bytes: usize,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        Self { max_frames: 1024, max_bytes: 4 << 20 }
    }
}

/// What happened to a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// This push overflowed the outbox, which is now closed as a slow consumer.
    Overflowed,
    /// The outbox was already closed; the frame was dropped.
    Closed,
}

pub struct Outbox {
    state: Mutex<State>,
    /// Wakes a replay waiting for room (see [`Outbox::push_waiting`]).
    room: Notify,
    limits: OutboxLimits,
}

struct State {
    frames: VecDeque<Frame>,
    bytes: usize,
    closed: Option<CloseReason>,
    /// The connection waiting in [`Outbox::poll_drain`]: woken when frames
    /// are queued or the outbox closes.
    writer: Option<Waker>,
    /// The connection waiting in [`Outbox::poll_closed`] while its socket
    /// is full: woken only when the outbox closes.
    closer: Option<Waker>,
    /// A [`Outbox::push_waiting`] waits for room: the next drain tells it
    /// (otherwise a drain, the hottest call here, skips the notification).
    room_wanted: bool,
}

impl State {
    fn take_writer(&mut self) -> Option<Waker> {
        self.writer.take()
    }
}

/// Wakes outside the lock (waking may run the woken task's scheduler code).
fn wake(writer: Option<Waker>) {
    if let Some(writer) = writer {
        writer.wake();
    }
}

impl Outbox {
    pub fn new(limits: OutboxLimits) -> Self {
        let state = State {
            frames: VecDeque::new(),
            bytes: 0,
            closed: None,
            writer: None,
            closer: None,
            room_wanted: false,
        };
        Self { state: Mutex::new(state), room: Notify::new(), limits }
    }

    /// Queues a frame without waiting; wakes the connection if it waits.
    pub fn push(&self, frame: Frame) -> Pushed {
        self.push_all(std::iter::once(frame)).1
    }

    /// Queues frames in order under one lock, with one wake; returns how
    /// many were queued and what happened to the last one tried (an
    /// overflow stops there).
    pub fn push_all(&self, frames: impl IntoIterator<Item = Frame>) -> (u64, Pushed) {
        let mut state = self.state.lock();
        let mut queued = 0;
        let mut outcome = Pushed::Queued;
        for frame in frames {
            if state.closed.is_some() {
                outcome = Pushed::Closed;
                break;
            }
            if state.frames.len() >= self.limits.max_frames
                || state.bytes + frame.len() > self.limits.max_bytes
            {
                state.closed = Some(CloseReason::new(CloseCode::SlowConsumer));
                outcome = Pushed::Overflowed;
                break;
            }
            state.bytes += frame.len();
            state.frames.push_back(frame);
            queued += 1;
        }
        let writer = if queued > 0 || outcome == Pushed::Overflowed { state.take_writer() } else { None };
        let closer = if outcome == Pushed::Overflowed { state.closer.take() } else { None };
        drop(state);
        wake(writer);
        wake(closer);
        (queued, outcome)
    }

    /// Queues a frame, waiting for room instead of overflowing. For history
    /// replayed on subscribe: a recovery may be larger than the outbox, and
    /// the writer drains it while we wait, so memory stays bounded.
    pub async fn push_waiting(&self, frame: Frame) -> Pushed {
        loop {
            let room = self.room.notified();
            {
                let mut state = self.state.lock();
                if state.closed.is_some() {
                    return Pushed::Closed;
                }
                let fits = state.frames.len() < self.limits.max_frames
                    && state.bytes + frame.len() <= self.limits.max_bytes;
                if fits || state.frames.is_empty() {
                    state.bytes += frame.len();
                    state.frames.push_back(frame);
                    let writer = state.take_writer();
                    drop(state);
                    wake(writer);
                    return Pushed::Queued;
                }
                // `room` exists already, so the drain that sees this flag
                // (under the same lock) wakes it.
                state.room_wanted = true;
            }
            room.await;
        }
    }

    /// Waits until `frames` more fit (or the outbox is empty, or closed).
    /// For a sender that paces itself on its slowest reader, like a
    /// cluster node healing a long gap from history, instead of pushing a
    /// burst that overflows every outbox at once.
    pub async fn wait_for_room(&self, frames: usize) {
        loop {
            let room = self.room.notified();
            {
                let mut state = self.state.lock();
                let fits = state.frames.len() + frames <= self.limits.max_frames;
                if state.closed.is_some() || fits || state.frames.is_empty() {
                    return;
                }
                state.room_wanted = true;
            }
            room.await;
        }
    }

    /// Closes the outbox; the writer sends what the reason says and closes
    /// the connection. The first reason wins.
    pub fn close(&self, reason: CloseReason) {
        let mut state = self.state.lock();
        if state.closed.is_none() {
            state.closed = Some(reason);
        }
        let writer = state.take_writer();
        let closer = state.closer.take();
        drop(state);
        wake(writer);
        wake(closer);
        self.room.notify_waiters();
    }

    /// Ready with the reason once the outbox is closed; `Pending` registers
    /// the task to wake then. For a connection whose socket is full, so a
    /// client that stops reading is still disconnected as soon as its
    /// outbox overflows.
    pub fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<CloseReason> {
        let mut state = self.state.lock();
        if let Some(reason) = state.closed {
            return Poll::Ready(reason);
        }
        if !state.closer.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            state.closer = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    pub fn is_closed(&self) -> bool {
        self.state.lock().closed.is_some()
    }

    /// Waits until frames are queued or the outbox is closed, then moves
    /// every queued frame into `into`. Returns the close reason once the
    /// outbox is closed; frames queued before a close are still handed out
    /// first except after an overflow, where they are dropped (the client
    /// recovers them by position).
    pub async fn drain(&self, into: &mut Vec<Frame>) -> Option<CloseReason> {
        let mut taken = VecDeque::new();
        let closed = poll_fn(|cx| self.poll_drain(cx, &mut taken)).await;
        into.extend(taken);
        closed
    }

    /// [`Outbox::drain`] for a hand-written future: `Pending` registers
    /// the task to wake (one writer per outbox; the last to poll wins).
    /// Into an empty `into` the queue is swapped, not copied; an idle
    /// outbox keeps no buffer.
    pub fn poll_drain(&self, cx: &mut Context<'_>, into: &mut VecDeque<Frame>) -> Poll<Option<CloseReason>> {
        let mut state = self.state.lock();
        if let Some(reason) = state.closed
            && (reason.code == CloseCode::SlowConsumer || state.frames.is_empty())
        {
            state.frames = VecDeque::new();
            state.bytes = 0;
            return Poll::Ready(Some(reason));
        }
        if state.frames.is_empty() {
            if state.frames.capacity() > 0 {
                state.frames = VecDeque::new();
            }
            if !state.writer.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                state.writer = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        if into.is_empty() {
            std::mem::swap(&mut state.frames, into);
            state.frames.clear();
        } else {
            into.extend(state.frames.drain(..));
        }
        state.bytes = 0;
        let room_wanted = std::mem::take(&mut state.room_wanted);
        drop(state);
        if room_wanted {
            self.room.notify_waiters();
        }
        Poll::Ready(None)
    }

    pub fn len(&self) -> usize {
        self.state.lock().frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Frame {
        Frame::from_string(text.to_string())
    }

    #[tokio::test]
    async fn drain_hands_out_every_queued_frame_in_order() {
        let outbox = Outbox::new(OutboxLimits::default());
        for i in 0..5 {
            assert_eq!(outbox.push(frame(&i.to_string())), Pushed::Queued);
        }
        let mut out = Vec::new();
        assert_eq!(outbox.drain(&mut out).await, None);
        let texts: Vec<_> = out.iter().map(|f| f.as_str().to_string()).collect();
        assert_eq!(texts, ["0", "1", "2", "3", "4"]);
        assert!(outbox.is_empty());
    }

    #[tokio::test]
    async fn overflow_by_count_closes_as_slow_consumer_and_drops_the_backlog() {
        let outbox = Outbox::new(OutboxLimits { max_frames: 2, max_bytes: 1 << 20 });
        assert_eq!(outbox.push(frame("a")), Pushed::Queued);
        assert_eq!(outbox.push(frame("b")), Pushed::Queued);
        assert_eq!(outbox.push(frame("c")), Pushed::Overflowed);
        assert_eq!(outbox.push(frame("d")), Pushed::Closed);
        let mut out = Vec::new();
        let reason = outbox.drain(&mut out).await.unwrap();
        assert_eq!(reason.code, CloseCode::SlowConsumer);
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn push_all_queues_in_order_and_stops_at_an_overflow() {
        let outbox = Outbox::new(OutboxLimits { max_frames: 3, max_bytes: 1 << 20 });
        assert_eq!(outbox.push_all([frame("a"), frame("b")]), (2, Pushed::Queued));
        assert_eq!(outbox.push_all([frame("c"), frame("d"), frame("e")]), (1, Pushed::Overflowed));
        assert_eq!(outbox.push_all([frame("f")]), (0, Pushed::Closed));
        let mut out = Vec::new();
        assert_eq!(outbox.drain(&mut out).await.unwrap().code, CloseCode::SlowConsumer);
    }

    #[tokio::test]
    async fn overflow_by_bytes() {
        let outbox = Outbox::new(OutboxLimits { max_frames: 100, max_bytes: 5 });
        assert_eq!(outbox.push(frame("abc")), Pushed::Queued);
        assert_eq!(outbox.push(frame("abc")), Pushed::Overflowed);
    }

    #[tokio::test]
    async fn a_normal_close_still_delivers_what_was_queued_first() {
        let outbox = Outbox::new(OutboxLimits::default());
        outbox.push(frame("last words"));
        outbox.close(CloseReason::new(CloseCode::ShuttingDown));
        let mut out = Vec::new();
        assert_eq!(outbox.drain(&mut out).await, None);
        assert_eq!(out.len(), 1);
        assert_eq!(outbox.drain(&mut out).await.unwrap().code, CloseCode::ShuttingDown);
    }

    #[tokio::test]
    async fn a_replay_larger_than_the_outbox_waits_for_the_writer_instead_of_overflowing() {
        let outbox = std::sync::Arc::new(Outbox::new(OutboxLimits { max_frames: 2, max_bytes: 1 << 20 }));
        let replay = {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                for i in 0..10 {
                    assert_eq!(outbox.push_waiting(frame(&i.to_string())).await, Pushed::Queued);
                }
            })
        };
        let mut received = Vec::new();
        while received.len() < 10 {
            let mut batch = Vec::new();
            let closed =
                tokio::time::timeout(std::time::Duration::from_secs(5), outbox.drain(&mut batch)).await;
            assert_eq!(closed.unwrap(), None);
            assert!(batch.len() <= 2);
            received.extend(batch.iter().map(|f| f.as_str().to_string()));
        }
        replay.await.unwrap();
        assert_eq!(received, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
    }

    /// The replay and the writer on two threads, racing: every wait for
    /// room is woken by a drain (a lost wakeup would hang until the timeout).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replay_racing_the_writer_on_two_threads_loses_no_wakeup() {
        const FRAMES: usize = 20_000;
        let outbox = std::sync::Arc::new(Outbox::new(OutboxLimits { max_frames: 2, max_bytes: 1 << 20 }));
        let replay = {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                for i in 0..FRAMES {
                    assert_eq!(outbox.push_waiting(frame(&i.to_string())).await, Pushed::Queued);
                }
            })
        };
        let writer = tokio::spawn(async move {
            let mut received = 0;
            while received < FRAMES {
                let mut batch = Vec::new();
                assert_eq!(outbox.drain(&mut batch).await, None);
                for f in &batch {
                    assert_eq!(f.as_str(), received.to_string());
                    received += 1;
                }
            }
        });
        let both = async { (replay.await, writer.await) };
        let (replay, writer) = tokio::time::timeout(std::time::Duration::from_secs(30), both).await.unwrap();
        replay.unwrap();
        writer.unwrap();
    }

    #[tokio::test]
    async fn wait_for_room_returns_once_the_writer_drained_enough() {
        let outbox = std::sync::Arc::new(Outbox::new(OutboxLimits { max_frames: 4, max_bytes: 1 << 20 }));
        outbox.push_all((0..3).map(|i| frame(&i.to_string())));
        outbox.wait_for_room(1).await;
        let waiting = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.wait_for_room(2).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "3 queued + 2 do not fit in 4");
        let mut drained = Vec::new();
        outbox.drain(&mut drained).await;
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("woken by the drain")
            .unwrap();
        outbox.push_all((0..4).map(|i| frame(&i.to_string())));
        let closing = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.wait_for_room(1).await }
        });
        outbox.close(CloseReason::new(CloseCode::Normal));
        tokio::time::timeout(std::time::Duration::from_secs(5), closing)
            .await
            .expect("woken by the close")
            .unwrap();
    }

    #[tokio::test]
    async fn a_waiting_writer_wakes_on_push() {
        let outbox = std::sync::Arc::new(Outbox::new(OutboxLimits::default()));
        let writer = {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                let mut out = Vec::new();
                outbox.drain(&mut out).await;
                out.len()
            })
        };
        tokio::task::yield_now().await;
        outbox.push(frame("x"));
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), writer).await.unwrap().unwrap();
        assert_eq!(n, 1);
    }
}
