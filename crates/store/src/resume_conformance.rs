//! The conformance suite of [`ResumePoints`]: what every implementation
//! must do, written once (see the contract on the trait).
//!
//! The [`resume_points_conformance!`](crate::resume_points_conformance)
//! macro turns every case into its own `#[tokio::test]`, like the cursor
//! suite:
//!
//! ```ignore
//! mod memory {
//!     fanfare_store::resume_points_conformance!(async { fanfare_store::MemoryStore::new() });
//! }
//! ```
//!
//! Cases use user ids and channels of their own, so they may share a store.
//! Time is the caller's (`Validity`): no case sleeps.

use std::any::Any;

use fanfare_protocol::{ChannelName, Epoch, StreamPosition, UserId};

use crate::{MAX_RESUME_POINTS_PER_SAVE, ResumePoint, ResumePoints, StoreError, Validity};

/// Generates one `#[tokio::test]` per resume-point conformance case for the
/// store built by `$make` (a future yielding a store or a [`ResumeSubject`]).
#[macro_export]
macro_rules! resume_points_conformance {
    ($make:expr) => {
        $crate::resume_points_conformance!(@cases $make;
            a_saved_point_is_claimed_once_and_moves_to_the_claimer,
            nothing_saved_claims_nothing,
            a_save_replaces_the_holders_own_point,
            a_claim_takes_the_oldest_point_among_holders,
            an_expired_point_is_never_claimed,
            forgetting_removes_only_that_holders_point,
            one_save_sets_every_channel_named,
            a_save_over_the_limit_saves_nothing_and_an_empty_one_is_fine,
            pairs_with_any_characters_stay_apart,
            concurrent_claims_never_take_the_same_point_twice,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let subject = $crate::resume_conformance::ResumeSubject::from($make.await);
                $crate::resume_conformance::$case(subject.store()).await;
            }
        )*
    };
}

/// A store under test and whatever must outlive it (dropped after it).
pub struct ResumeSubject {
    store: Box<dyn ResumePoints>,
    _keep_alive: Box<dyn Any + Send>,
}

impl ResumeSubject {
    pub fn new(store: impl ResumePoints) -> Self {
        Self::keeping(store, ())
    }

    /// A store and something to drop only after it (a `TempDir`, a server).
    pub fn keeping(store: impl ResumePoints, keep_alive: impl Any + Send) -> Self {
        Self { store: Box::new(store), _keep_alive: Box::new(keep_alive) }
    }

    pub fn store(&self) -> &dyn ResumePoints {
        &*self.store
    }
}

impl<S: ResumePoints> From<S> for ResumeSubject {
    fn from(store: S) -> Self {
        Self::new(store)
    }
}

fn user(id: &str) -> UserId {
    UserId::new(id)
}

fn channel(name: &str) -> ChannelName {
    ChannelName::new(name).expect("a valid channel name")
}

fn at(epoch: &str, offset: u64) -> StreamPosition {
    StreamPosition::new(Epoch::new(epoch), offset)
}

/// Now is `now_ms`; a point written now lasts 1,000 ms.
fn valid(now_ms: u64) -> Validity {
    Validity { now_ms, expires_at_ms: now_ms + 1_000 }
}

const T0: u64 = 1_700_000_000_000;

async fn save(
    store: &dyn ResumePoints,
    user: &UserId,
    holder: &str,
    points: &[(&ChannelName, StreamPosition)],
) {
    save_at(store, user, holder, points, valid(T0)).await;
}

async fn save_at(
    store: &dyn ResumePoints,
    user: &UserId,
    holder: &str,
    points: &[(&ChannelName, StreamPosition)],
    validity: Validity,
) {
    let points: Vec<ResumePoint> = points
        .iter()
        .map(|(channel, position)| ResumePoint { channel: (*channel).clone(), position: position.clone() })
        .collect();
    store.save_resume_points(user, holder, &points, validity).await.expect("the points are saved");
}

async fn claim(
    store: &dyn ResumePoints,
    user: &UserId,
    channel: &ChannelName,
    holder: &str,
    now_ms: u64,
) -> Option<StreamPosition> {
    store.claim_resume_point(user, channel, holder, valid(now_ms)).await.expect("the claim is answered")
}

pub async fn a_saved_point_is_claimed_once_and_moves_to_the_claimer(store: &dyn ResumePoints) {
    let (alice, chat) = (user("rp:once"), channel("rp:once"));
    save(store, &alice, "conn-1", &[(&chat, at("e1", 42))]).await;
    assert_eq!(claim(store, &alice, &chat, "conn-2", T0 + 10).await, Some(at("e1", 42)));
    // The point is conn-2's now: conn-2 forgetting it leaves nothing.
    assert!(!store.forget_resume_point(&alice, &chat, "conn-1").await.unwrap(), "conn-1's was moved");
    assert!(store.forget_resume_point(&alice, &chat, "conn-2").await.unwrap(), "conn-2 holds it");
    assert_eq!(claim(store, &alice, &chat, "conn-3", T0 + 20).await, None);
}

pub async fn nothing_saved_claims_nothing(store: &dyn ResumePoints) {
    let (alice, chat) = (user("rp:none"), channel("rp:none"));
    assert_eq!(claim(store, &alice, &chat, "conn-1", T0).await, None);
    assert!(!store.forget_resume_point(&alice, &chat, "conn-1").await.unwrap());
}

pub async fn a_save_replaces_the_holders_own_point(store: &dyn ResumePoints) {
    let (alice, chat) = (user("rp:replace"), channel("rp:replace"));
    save(store, &alice, "conn-1", &[(&chat, at("e1", 10))]).await;
    save(store, &alice, "conn-1", &[(&chat, at("e1", 12))]).await;
    // Not compared: a holder writes what it knows, even lower or of another epoch.
    save(store, &alice, "conn-1", &[(&chat, at("e2", 3))]).await;
    assert_eq!(claim(store, &alice, &chat, "conn-2", T0).await, Some(at("e2", 3)));
    assert!(store.forget_resume_point(&alice, &chat, "conn-2").await.unwrap());
    assert_eq!(claim(store, &alice, &chat, "conn-3", T0).await, None, "one point per holder");
}

pub async fn a_claim_takes_the_oldest_point_among_holders(store: &dyn ResumePoints) {
    let (alice, chat) = (user("rp:oldest"), channel("rp:oldest"));
    save(store, &alice, "tab-a", &[(&chat, at("e1", 30))]).await;
    save(store, &alice, "tab-b", &[(&chat, at("e1", 9))]).await;
    save(store, &alice, "tab-c", &[(&chat, at("e1", 100))]).await;
    // Offsets compare as numbers, not as text ("9" > "30" as text).
    assert_eq!(claim(store, &alice, &chat, "tab-d", T0).await, Some(at("e1", 9)));
    // tab-d now holds 9: it is still the oldest.
    assert_eq!(claim(store, &alice, &chat, "tab-e", T0).await, Some(at("e1", 9)));
    assert!(!store.forget_resume_point(&alice, &chat, "tab-d").await.unwrap(), "moved on to tab-e");
    assert!(store.forget_resume_point(&alice, &chat, "tab-e").await.unwrap());
    assert_eq!(claim(store, &alice, &chat, "tab-f", T0).await, Some(at("e1", 30)));
}

pub async fn an_expired_point_is_never_claimed(store: &dyn ResumePoints) {
    let (alice, chat) = (user("rp:expired"), channel("rp:expired"));
    save_at(store, &alice, "old", &[(&chat, at("e1", 1))], valid(T0)).await; // until T0 + 1000
    save_at(store, &alice, "new", &[(&chat, at("e1", 5))], valid(T0 + 500)).await; // until T0 + 1500
    assert_eq!(
        store.claim_resume_point(&alice, &chat, "late", valid(T0 + 1_000)).await.unwrap(),
        Some(at("e1", 5)),
        "the oldest expired exactly at its expiry"
    );
    // "late" holds 5 until T0 + 2000; nothing is answered at or after it.
    assert_eq!(claim(store, &alice, &chat, "later", T0 + 2_000).await, None);
    assert_eq!(claim(store, &alice, &chat, "later", T0 + 1_900).await, None, "gone, not just hidden");
    // A save already expired when written is never answered either.
    let stillborn = Validity { now_ms: T0, expires_at_ms: T0 };
    save_at(store, &alice, "dead", &[(&chat, at("e1", 7))], stillborn).await;
    assert_eq!(claim(store, &alice, &chat, "x", T0).await, None);
}

pub async fn forgetting_removes_only_that_holders_point(store: &dyn ResumePoints) {
    let (alice, bob) = (user("rp:forget:alice"), user("rp:forget:bob"));
    let (chat, news) = (channel("rp:forget:chat"), channel("rp:forget:news"));
    save(store, &alice, "conn-1", &[(&chat, at("e1", 5)), (&news, at("e1", 6))]).await;
    save(store, &alice, "conn-2", &[(&chat, at("e1", 8))]).await;
    save(store, &bob, "conn-1", &[(&chat, at("e1", 7))]).await;
    assert!(store.forget_resume_point(&alice, &chat, "conn-1").await.unwrap());
    assert!(!store.forget_resume_point(&alice, &chat, "conn-1").await.unwrap(), "nothing left to forget");
    assert_eq!(claim(store, &alice, &chat, "c", T0).await, Some(at("e1", 8)));
    assert_eq!(claim(store, &alice, &news, "c", T0).await, Some(at("e1", 6)));
    assert_eq!(claim(store, &bob, &chat, "c", T0).await, Some(at("e1", 7)));
}

pub async fn one_save_sets_every_channel_named(store: &dyn ResumePoints) {
    let alice = user("rp:many");
    let channels: Vec<ChannelName> = (0..50).map(|n| channel(&format!("rp:many:{n}"))).collect();
    let points: Vec<(&ChannelName, StreamPosition)> =
        channels.iter().enumerate().map(|(n, c)| (c, at("e1", n as u64 * 3))).collect();
    save(store, &alice, "conn-1", &points).await;
    for (n, channel) in channels.iter().enumerate() {
        assert_eq!(claim(store, &alice, channel, "conn-2", T0).await, Some(at("e1", n as u64 * 3)));
    }
}

pub async fn a_save_over_the_limit_saves_nothing_and_an_empty_one_is_fine(store: &dyn ResumePoints) {
    let alice = user("rp:limit");
    let points: Vec<ResumePoint> = (0..=MAX_RESUME_POINTS_PER_SAVE)
        .map(|n| ResumePoint { channel: channel(&format!("rp:limit:{n}")), position: at("e1", 1) })
        .collect();
    let refused = store.save_resume_points(&alice, "conn-1", &points, valid(T0)).await;
    assert!(
        matches!(refused, Err(StoreError::LimitExceeded { limit: MAX_RESUME_POINTS_PER_SAVE, .. })),
        "{refused:?}"
    );
    assert_eq!(claim(store, &alice, &points[0].channel, "conn-2", T0).await, None, "nothing was saved");
    let fits = &points[..MAX_RESUME_POINTS_PER_SAVE];
    store.save_resume_points(&alice, "conn-1", fits, valid(T0)).await.expect("the limit itself is allowed");
    assert_eq!(claim(store, &alice, &fits[999].channel, "conn-2", T0).await, Some(at("e1", 1)));
    store.save_resume_points(&alice, "conn-1", &[], valid(T0)).await.expect("an empty save");
}

pub async fn pairs_with_any_characters_stay_apart(store: &dyn ResumePoints) {
    let chat = channel("rp:odd");
    let ids = ["}", "{", "%7D", "a}b", "a", "{a}", "with space", "ünï", "", "a\0b", "a:resume"];
    for (n, id) in ids.iter().enumerate() {
        save(store, &user(id), &format!("holder {id}"), &[(&chat, at("e 1", n as u64 + 1))]).await;
    }
    for (n, id) in ids.iter().enumerate() {
        let claimed = claim(store, &user(id), &chat, "x", T0).await;
        assert_eq!(claimed, Some(at("e 1", n as u64 + 1)), "user {id:?}");
    }
    // Channels that share a prefix are apart too.
    let (ab, abc) = (channel("rp:odd:ab"), channel("rp:odd:abc"));
    let alice = user("rp:odd:alice");
    save(store, &alice, "h", &[(&abc, at("e1", 9))]).await;
    assert_eq!(claim(store, &alice, &ab, "x", T0).await, None);
}

pub async fn concurrent_claims_never_take_the_same_point_twice(store: &dyn ResumePoints) {
    let (alice, chat) = (user("rp:race"), channel("rp:race"));
    for n in 0..5 {
        save(store, &alice, &format!("old-{n}"), &[(&chat, at("e1", 10 + n))]).await;
    }
    let claimer = |n: u64| {
        let (alice, chat) = (alice.clone(), chat.clone());
        async move { claim(store, &alice, &chat, &format!("new-{n}"), T0).await }
    };
    let claims = tokio::join!(claimer(0), claimer(1), claimer(2), claimer(3), claimer(4));
    let claims = [claims.0, claims.1, claims.2, claims.3, claims.4];
    // Each claim moves the oldest point to its claimer, so every claim
    // answers 10 (the point keeps moving); the other four stay where they were.
    assert!(claims.iter().all(|c| *c == Some(at("e1", 10))), "{claims:?}");
    let mut held = 0;
    for n in 0..5 {
        held += usize::from(store.forget_resume_point(&alice, &chat, &format!("new-{n}")).await.unwrap());
    }
    assert_eq!(held, 1, "the point moved, it was not copied");
    for n in 1..5 {
        assert!(store.forget_resume_point(&alice, &chat, &format!("old-{n}")).await.unwrap());
    }
}
