//! The [`Sanctions`] suite: one case per rule of its `# Contract`.
//!
//! ```ignore
//! mod redis {
//!     fanfare_cluster::sanctions_conformance!(super::redis_sanctions());
//! }
//! ```

use fanfare_protocol::ChannelName;

use super::Subject;
use crate::{Sanction, SanctionKind, Sanctions, Scope};

/// Generates one `#[tokio::test]` per case for the engine built by `$make`
/// (a future yielding `Option<Subject<dyn Sanctions>>`; `None` skips).
#[macro_export]
macro_rules! sanctions_conformance {
    ($make:expr) => {
        $crate::sanctions_conformance!(@cases $make;
            a_sanction_holds_in_its_channel_only,
            a_namespace_sanction_holds_in_every_channel_of_the_namespace,
            imposing_again_replaces_the_expiry,
            expired_sanctions_are_never_answered,
            lifting_removes_one_sanction_and_says_whether_it_held,
            a_scope_lists_its_sanctions_in_force_by_user_then_kind,
            what_one_handle_imposes_every_handle_sees,
            a_shadow_ban_is_a_kind_of_its_own,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(subject) = $make.await else { return };
                $crate::conformance::sanctions::$case(&subject).await;
            }
        )*
    };
}

type Engine = Subject<dyn Sanctions>;

const NOW: u64 = 1_800_000_000_000;

fn channel(name: &str) -> ChannelName {
    ChannelName::new(name).unwrap()
}

fn sanction(kind: SanctionKind, user: &str, scope: Scope, until_ms: Option<u64>) -> Sanction {
    Sanction { kind, user: user.into(), scope, at_ms: NOW - 1000, until_ms, by: "mod".into(), reason: None }
}

fn kinds(sanctions: &[Sanction]) -> Vec<SanctionKind> {
    let mut kinds: Vec<SanctionKind> = sanctions.iter().map(|s| s.kind).collect();
    kinds.sort_by_key(|k| k.as_str());
    kinds
}

pub async fn a_sanction_holds_in_its_channel_only(engine: &Engine) {
    let sanctions = engine.connect().await;
    let room = channel("live:a");
    let ban = Sanction {
        reason: Some("spam".into()),
        ..sanction(SanctionKind::Ban, "ann", Scope::Channel(room.clone()), None)
    };
    sanctions.impose(ban.clone()).await.unwrap();
    assert_eq!(sanctions.in_force("ann", &room, NOW).await.unwrap(), [ban], "kept as imposed");
    assert!(sanctions.in_force("ann", &channel("live:b"), NOW).await.unwrap().is_empty());
    assert!(sanctions.in_force("bob", &room, NOW).await.unwrap().is_empty());
}

pub async fn a_namespace_sanction_holds_in_every_channel_of_the_namespace(engine: &Engine) {
    let sanctions = engine.connect().await;
    sanctions
        .impose(sanction(SanctionKind::Mute, "ann", Scope::Namespace("live".into()), None))
        .await
        .unwrap();
    sanctions
        .impose(sanction(SanctionKind::Ban, "ann", Scope::Channel(channel("live:a")), None))
        .await
        .unwrap();
    let held = sanctions.in_force("ann", &channel("live:a"), NOW).await.unwrap();
    assert_eq!(kinds(&held), [SanctionKind::Ban, SanctionKind::Mute], "the channel's and the namespace's");
    assert_eq!(
        kinds(&sanctions.in_force("ann", &channel("live:z"), NOW).await.unwrap()),
        [SanctionKind::Mute]
    );
    assert!(
        sanctions.in_force("ann", &channel("chat:a"), NOW).await.unwrap().is_empty(),
        "another namespace"
    );
    sanctions.impose(sanction(SanctionKind::Ban, "cy", Scope::Namespace(String::new()), None)).await.unwrap();
    assert_eq!(kinds(&sanctions.in_force("cy", &channel("lobby"), NOW).await.unwrap()), [SanctionKind::Ban]);
    assert!(
        sanctions.in_force("cy", &channel("live:a"), NOW).await.unwrap().is_empty(),
        "the default one only"
    );
}

pub async fn imposing_again_replaces_the_expiry(engine: &Engine) {
    let sanctions = engine.connect().await;
    let room = channel("live:a");
    sanctions
        .impose(sanction(SanctionKind::Mute, "ann", Scope::Channel(room.clone()), Some(NOW + 60_000)))
        .await
        .unwrap();
    sanctions.impose(sanction(SanctionKind::Mute, "ann", Scope::Channel(room.clone()), None)).await.unwrap();
    let held = sanctions.in_force("ann", &room, NOW + 120_000).await.unwrap();
    assert_eq!(held.len(), 1, "one sanction, replaced: {held:?}");
    assert_eq!(held[0].until_ms, None);
}

pub async fn expired_sanctions_are_never_answered(engine: &Engine) {
    let sanctions = engine.connect().await;
    let room = channel("live:a");
    let scope = Scope::Channel(room.clone());
    sanctions.impose(sanction(SanctionKind::Ban, "ann", scope.clone(), Some(NOW + 10))).await.unwrap();
    assert_eq!(sanctions.in_force("ann", &room, NOW).await.unwrap().len(), 1);
    assert!(sanctions.in_force("ann", &room, NOW + 10).await.unwrap().is_empty(), "ends at until_ms");
    assert!(sanctions.list(&scope, NOW + 10).await.unwrap().is_empty());
    assert!(!sanctions.lift(SanctionKind::Ban, "ann", &scope, NOW + 10).await.unwrap(), "nothing in force");
}

pub async fn lifting_removes_one_sanction_and_says_whether_it_held(engine: &Engine) {
    let sanctions = engine.connect().await;
    let room = channel("live:a");
    let scope = Scope::Channel(room.clone());
    sanctions.impose(sanction(SanctionKind::Ban, "ann", scope.clone(), None)).await.unwrap();
    sanctions.impose(sanction(SanctionKind::Mute, "ann", scope.clone(), None)).await.unwrap();
    assert!(sanctions.lift(SanctionKind::Ban, "ann", &scope, NOW).await.unwrap());
    assert!(!sanctions.lift(SanctionKind::Ban, "ann", &scope, NOW).await.unwrap(), "already lifted");
    assert_eq!(kinds(&sanctions.in_force("ann", &room, NOW).await.unwrap()), [SanctionKind::Mute]);
}

pub async fn a_scope_lists_its_sanctions_in_force_by_user_then_kind(engine: &Engine) {
    let sanctions = engine.connect().await;
    let scope = Scope::Channel(channel("live:a"));
    for (kind, user, until) in [
        (SanctionKind::Mute, "cy", None),
        (SanctionKind::Ban, "ann", None),
        (SanctionKind::Mute, "ann", None),
        (SanctionKind::Ban, "old", Some(NOW - 1)),
    ] {
        sanctions.impose(sanction(kind, user, scope.clone(), until)).await.unwrap();
    }
    sanctions
        .impose(sanction(SanctionKind::Ban, "elsewhere", Scope::Namespace("live".into()), None))
        .await
        .unwrap();
    let listed: Vec<(String, SanctionKind)> =
        sanctions.list(&scope, NOW).await.unwrap().into_iter().map(|s| (s.user, s.kind)).collect();
    let expected = [("ann", SanctionKind::Ban), ("ann", SanctionKind::Mute), ("cy", SanctionKind::Mute)];
    assert_eq!(listed, expected.map(|(user, kind)| (user.to_owned(), kind)));
}

pub async fn what_one_handle_imposes_every_handle_sees(engine: &Engine) {
    let (a, b) = (engine.connect().await, engine.connect().await);
    let room = channel("live:a");
    a.impose(sanction(SanctionKind::Ban, "ann", Scope::Channel(room.clone()), None)).await.unwrap();
    assert_eq!(b.in_force("ann", &room, NOW).await.unwrap().len(), 1);
    assert!(b.lift(SanctionKind::Ban, "ann", &Scope::Channel(room.clone()), NOW).await.unwrap());
    assert!(a.in_force("ann", &room, NOW).await.unwrap().is_empty());
}

pub async fn a_shadow_ban_is_a_kind_of_its_own(engine: &Engine) {
    let sanctions = engine.connect().await;
    let room = channel("live:a");
    let scope = Scope::Channel(room.clone());
    let shadow = Sanction {
        reason: Some("spam".into()),
        ..sanction(SanctionKind::ShadowBan, "ann", Scope::Namespace("live".into()), Some(NOW + 60_000))
    };
    sanctions.impose(shadow.clone()).await.unwrap();
    sanctions.impose(sanction(SanctionKind::Mute, "ann", scope.clone(), None)).await.unwrap();
    sanctions.impose(sanction(SanctionKind::Ban, "ann", scope.clone(), None)).await.unwrap();
    sanctions.impose(sanction(SanctionKind::ShadowBan, "ann", scope.clone(), None)).await.unwrap();
    let held = sanctions.in_force("ann", &room, NOW).await.unwrap();
    assert_eq!(
        kinds(&held),
        [SanctionKind::Ban, SanctionKind::Mute, SanctionKind::ShadowBan, SanctionKind::ShadowBan],
        "beside a ban and a mute, in the channel and its namespace"
    );
    assert_eq!(sanctions.in_force("ann", &channel("live:z"), NOW).await.unwrap(), [shadow], "as imposed");
    let listed: Vec<SanctionKind> =
        sanctions.list(&scope, NOW).await.unwrap().into_iter().map(|s| s.kind).collect();
    assert_eq!(listed, [SanctionKind::Ban, SanctionKind::Mute, SanctionKind::ShadowBan]);
    assert!(sanctions.lift(SanctionKind::ShadowBan, "ann", &scope, NOW).await.unwrap());
    assert_eq!(
        kinds(&sanctions.in_force("ann", &room, NOW).await.unwrap()),
        [SanctionKind::Ban, SanctionKind::Mute, SanctionKind::ShadowBan],
        "the channel's shadow-ban only: the ban, the mute and the namespace's stay"
    );
    assert!(
        sanctions
            .in_force("ann", &room, NOW + 60_000)
            .await
            .unwrap()
            .iter()
            .all(|s| s.kind != SanctionKind::ShadowBan),
        "expired"
    );
}
