//! What every [`ClusterBus`] must do (its `# Contract`), written once.
//!
//! Each case is a public async function taking a [`BusSubject`]: an engine
//! that can open buses for several nodes, break their link and kill the
//! engine. [`cluster_bus_conformance!`](crate::cluster_bus_conformance)
//! turns every case into its own `#[tokio::test]`:
//!
//! ```ignore
//! mod redis {
//!     fanfare_cluster::cluster_bus_conformance!(super::redis_subject());
//! }
//! ```
//!
//! The expression is a future yielding `Option<impl BusSubject>`; `None`
//! skips the test (the subject prints why). Every wait is bounded; a bus
//! event that does not come fails the test with what was awaited.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fanfare_protocol::ChannelName;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

use crate::{BusEvent, ClusterBus, NodeId};

/// Generates one `#[tokio::test]` per case for the subject built by `$make`.
#[macro_export]
macro_rules! cluster_bus_conformance {
    ($make:expr) => {
        $crate::cluster_bus_conformance!(@cases $make;
            watch_then_publish_delivers_in_order,
            frames_of_unwatched_channels_do_not_arrive,
            a_node_receives_its_own_frames,
            watching_a_watched_channel_is_a_no_op,
            unwatch_stops_delivery,
            a_channel_watched_again_delivers_again,
            control_reaches_one_node_or_all,
            an_idle_link_stays_up,
            a_cut_link_reports_down_then_resumed_and_watches_survive,
            a_killed_engine_is_survived,
            frames_sent_while_down_are_lost_but_the_loss_is_signalled,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let Some(subject) = $make.await else { return };
                $crate::conformance::bus::$case(&subject).await;
            }
        )*
    };
}

/// An engine under test, with the faults a test can cause.
#[async_trait::async_trait]
pub trait BusSubject: Send + Sync {
    /// A bus for `node` that reaches the engine through the link
    /// [`cut`](BusSubject::cut) breaks.
    async fn open(&self, node: NodeId) -> Arc<dyn ClusterBus>;
    /// A bus for `node` that reaches the engine directly: cuts never touch it.
    async fn open_direct(&self, node: NodeId) -> Arc<dyn ClusterBus>;
    /// Closes every connection through the link and refuses new ones.
    fn cut(&self);
    /// Lets connections through the link again.
    fn heal(&self);
    /// Kills the engine, without a clean shutdown.
    async fn kill_engine(&self);
    /// Starts the killed engine again at the same address.
    async fn restart_engine(&self);
    /// How long a bus may take to notice that a silent link is dead.
    fn detection_limit(&self) -> Duration;
}

/// How long an event that should come promptly may take.
const PROMPT: Duration = Duration::from_secs(5);
/// How long to watch for an event that must not come.
const QUIET: Duration = Duration::from_millis(300);

pub async fn watch_then_publish_delivers_in_order(subject: &dyn BusSubject) {
    let chat = channel("conf:ordered");
    let (a, mut a_events) = node(subject, "a").await;
    let (b, mut b_events) = node(subject, "b").await;
    let (c, _c_events) = node(subject, "c").await;
    a.watch(&chat).await.unwrap();
    b.watch(&chat).await.unwrap();

    let publish_500 = |bus: Arc<dyn ClusterBus>, who: &'static str| {
        let chat = chat.clone();
        async move {
            for n in 0..500 {
                bus.publish(&chat, format!("{who} {n}").into_bytes()).await.unwrap();
            }
        }
    };
    tokio::join!(publish_500(a.clone(), "a"), publish_500(c.clone(), "c"));

    let on_a = live_frames(&mut a_events, &chat, 1000).await;
    let on_b = live_frames(&mut b_events, &chat, 1000).await;
    for who in ["a", "c"] {
        let numbers: Vec<u32> = on_a
            .iter()
            .filter_map(|frame| frame.strip_prefix(&format!("{who} ")).map(|n| n.parse().unwrap()))
            .collect();
        assert_eq!(numbers, (0..500).collect::<Vec<_>>(), "{who}'s frames in the order published");
    }
    assert_eq!(on_a, on_b, "every watching node sees one order");
    assert_quiet(&mut a_events).await;
}

pub async fn frames_of_unwatched_channels_do_not_arrive(subject: &dyn BusSubject) {
    let (watched, other) = (channel("conf:watched"), channel("conf:not-watched"));
    let (a, mut a_events) = node(subject, "a").await;
    let (b, _b_events) = node(subject, "b").await;
    a.watch(&watched).await.unwrap();
    b.publish(&other, b"unseen".to_vec()).await.unwrap();
    b.publish(&watched, b"seen".to_vec()).await.unwrap();
    assert_eq!(next_live(&mut a_events).await, (watched, Bytes::from_static(b"seen")));
    assert_quiet(&mut a_events).await;
}

pub async fn a_node_receives_its_own_frames(subject: &dyn BusSubject) {
    let chat = channel("conf:loopback");
    let (a, mut a_events) = node(subject, "a").await;
    a.watch(&chat).await.unwrap();
    a.publish(&chat, b"mine".to_vec()).await.unwrap();
    assert_eq!(next_live(&mut a_events).await, (chat, Bytes::from_static(b"mine")));
}

pub async fn watching_a_watched_channel_is_a_no_op(subject: &dyn BusSubject) {
    let chat = channel("conf:twice");
    let (a, mut a_events) = node(subject, "a").await;
    a.watch(&chat).await.unwrap();
    a.watch(&chat).await.unwrap();
    a.publish(&chat, b"once".to_vec()).await.unwrap();
    assert_eq!(next_live(&mut a_events).await, (chat, Bytes::from_static(b"once")));
    assert_quiet(&mut a_events).await;
}

pub async fn unwatch_stops_delivery(subject: &dyn BusSubject) {
    let (left, kept) = (channel("conf:left"), channel("conf:kept"));
    let (a, mut a_events) = node(subject, "a").await;
    let (b, _b_events) = node(subject, "b").await;
    a.watch(&left).await.unwrap();
    a.watch(&kept).await.unwrap();
    b.publish(&left, b"before".to_vec()).await.unwrap();
    assert_eq!(next_live(&mut a_events).await, (left.clone(), Bytes::from_static(b"before")));

    a.unwatch(&left).await.unwrap();
    a.unwatch(&left).await.unwrap();
    b.publish(&left, b"after".to_vec()).await.unwrap();
    b.publish(&kept, b"marker".to_vec()).await.unwrap();
    assert_eq!(next_live(&mut a_events).await, (kept, Bytes::from_static(b"marker")));
    assert_quiet(&mut a_events).await;
}

pub async fn a_channel_watched_again_delivers_again(subject: &dyn BusSubject) {
    let chat = channel("conf:again");
    let (a, mut a_events) = node(subject, "a").await;
    for round in 0..3 {
        a.watch(&chat).await.unwrap();
        a.publish(&chat, format!("round {round}").into_bytes()).await.unwrap();
        assert_eq!(next_live(&mut a_events).await, (chat.clone(), Bytes::from(format!("round {round}"))));
        a.unwatch(&chat).await.unwrap();
    }
    a.publish(&chat, b"unwatched".to_vec()).await.unwrap();
    assert_quiet(&mut a_events).await;
}

pub async fn control_reaches_one_node_or_all(subject: &dyn BusSubject) {
    let (a, mut a_events) = node(subject, "a").await;
    let (_b, mut b_events) = node(subject, "b").await;
    let (c, mut c_events) = node(subject, "c").await;
    a.send(Some(&NodeId::new("b")), b"for b".to_vec()).await.unwrap();
    c.send(None, b"for all".to_vec()).await.unwrap();
    assert_eq!(next_control(&mut b_events).await, "for b");
    for events in [&mut a_events, &mut b_events, &mut c_events] {
        assert_eq!(next_control(events).await, "for all", "a broadcast reaches its sender too");
        assert_quiet(events).await;
    }
}

pub async fn an_idle_link_stays_up(subject: &dyn BusSubject) {
    let (a, mut a_events) = node(subject, "a").await;
    assert!(a.is_up());
    let idle = subject.detection_limit() * 2;
    if let Ok(event) = timeout(idle, a_events.recv()).await {
        panic!("an idle bus emitted {event:?}");
    }
    assert!(a.is_up(), "probes of a healthy link keep it up");
}

pub async fn a_cut_link_reports_down_then_resumed_and_watches_survive(subject: &dyn BusSubject) {
    let (before, during) = (channel("conf:before-cut"), channel("conf:during-cut"));
    let (a, mut a_events) = node(subject, "a").await;
    let publisher = subject.open_direct(NodeId::new("publisher")).await;
    a.watch(&before).await.unwrap();
    assert!(a.is_up());

    let cut_at = Instant::now();
    subject.cut();
    expect_event(&mut a_events, BusEvent::Down, subject.detection_limit() + Duration::from_secs(1)).await;
    eprintln!("Down {:?} after the cut", cut_at.elapsed());
    assert!(!a.is_up());

    let watching = tokio::spawn({
        let (a, during) = (a.clone(), during.clone());
        async move { a.watch(&during).await }
    });
    tokio::task::yield_now().await;
    let healed_at = Instant::now();
    subject.heal();
    expect_event(&mut a_events, BusEvent::Resumed, PROMPT).await;
    eprintln!("Resumed {:?} after the heal", healed_at.elapsed());
    assert!(a.is_up());
    timeout(PROMPT, watching).await.expect("the watch made while down returns").unwrap().unwrap();

    publisher.publish(&before, b"1".to_vec()).await.unwrap();
    publisher.publish(&during, b"2".to_vec()).await.unwrap();
    let mut got = vec![next_live(&mut a_events).await, next_live(&mut a_events).await];
    got.sort();
    let mut expected = vec![(before, Bytes::from_static(b"1")), (during, Bytes::from_static(b"2"))];
    expected.sort();
    assert_eq!(got, expected);
}

pub async fn a_killed_engine_is_survived(subject: &dyn BusSubject) {
    let chat = channel("conf:engine-restart");
    let (a, mut a_events) = node(subject, "a").await;
    let (b, _b_events) = node(subject, "b").await;
    a.watch(&chat).await.unwrap();

    subject.kill_engine().await;
    expect_event(&mut a_events, BusEvent::Down, subject.detection_limit() + Duration::from_secs(1)).await;
    subject.restart_engine().await;
    expect_event(&mut a_events, BusEvent::Resumed, PROMPT).await;

    // The publisher's own connection may need a try to notice the restart.
    let deadline = Instant::now() + PROMPT;
    while b.publish(&chat, b"after restart".to_vec()).await.is_err() {
        assert!(Instant::now() < deadline, "publishing never worked again after the restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(next_live(&mut a_events).await, (chat, Bytes::from_static(b"after restart")));
}

pub async fn frames_sent_while_down_are_lost_but_the_loss_is_signalled(subject: &dyn BusSubject) {
    let chat = channel("conf:lost");
    let (a, mut a_events) = node(subject, "a").await;
    let publisher = subject.open_direct(NodeId::new("publisher")).await;
    a.watch(&chat).await.unwrap();

    subject.cut();
    expect_event(&mut a_events, BusEvent::Down, subject.detection_limit() + Duration::from_secs(1)).await;
    publisher.publish(&chat, b"lost".to_vec()).await.unwrap();
    subject.heal();
    expect_event(&mut a_events, BusEvent::Resumed, PROMPT).await;
    publisher.publish(&chat, b"after".to_vec()).await.unwrap();
    assert_eq!(
        next_live(&mut a_events).await,
        (chat, Bytes::from_static(b"after")),
        "what was published while down is gone, and Down/Resumed said so"
    );
}

// --- helpers ---

async fn node(subject: &dyn BusSubject, id: &str) -> (Arc<dyn ClusterBus>, mpsc::Receiver<BusEvent>) {
    let bus = subject.open(NodeId::new(id)).await;
    let events = bus.events().expect("the first call gets the events");
    assert!(bus.events().is_none(), "only the first call gets the events");
    (bus, events)
}

fn channel(name: &str) -> ChannelName {
    ChannelName::new(name).unwrap()
}

async fn next_event(events: &mut mpsc::Receiver<BusEvent>, limit: Duration, awaited: &str) -> BusEvent {
    match timeout(limit, events.recv()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("the bus closed its events while {awaited} was awaited"),
        Err(_) => panic!("no {awaited} within {limit:?}"),
    }
}

async fn expect_event(events: &mut mpsc::Receiver<BusEvent>, expected: BusEvent, limit: Duration) {
    let event = next_event(events, limit, &format!("{expected:?}")).await;
    assert_eq!(event, expected);
}

async fn next_live(events: &mut mpsc::Receiver<BusEvent>) -> (ChannelName, Bytes) {
    match next_event(events, PROMPT, "live frame").await {
        BusEvent::Live { channel, frame } => (channel, frame),
        other => panic!("expected a live frame, got {other:?}"),
    }
}

async fn next_control(events: &mut mpsc::Receiver<BusEvent>) -> String {
    match next_event(events, PROMPT, "control message").await {
        BusEvent::Control { message } => String::from_utf8(message.to_vec()).unwrap(),
        other => panic!("expected a control message, got {other:?}"),
    }
}

/// The next `count` frames, all of `channel`, as text.
async fn live_frames(
    events: &mut mpsc::Receiver<BusEvent>,
    channel: &ChannelName,
    count: usize,
) -> Vec<String> {
    let mut frames = Vec::with_capacity(count);
    while frames.len() < count {
        let (from, frame) = next_live(events).await;
        assert_eq!(&from, channel);
        frames.push(String::from_utf8(frame.to_vec()).unwrap());
    }
    frames
}

async fn assert_quiet(events: &mut mpsc::Receiver<BusEvent>) {
    if let Ok(Some(event)) = timeout(QUIET, events.recv()).await {
        panic!("nothing more should arrive, got {event:?}");
    }
}
