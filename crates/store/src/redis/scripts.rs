//! The Lua scripts, their keys and arguments, and their replies.

use std::sync::LazyLock;

use fanfare_protocol::cluster::{channel_key, encode_tail, live_channel};
use fanfare_protocol::{ChannelName, Epoch, Publication};
use redis::{Cmd, Script};

use crate::history::duration_ms;
use crate::memory::random_epoch;
use crate::{AppendRequest, DeleteTargets, HistoryQuery, StoreError, unix_time_ms};

pub(crate) static APPEND: LazyLock<Script> =
    LazyLock::new(|| Script::new(concat!(include_str!("channel_state.lua"), include_str!("append.lua"))));
pub(crate) static READ: LazyLock<Script> =
    LazyLock::new(|| Script::new(concat!(include_str!("channel_state.lua"), include_str!("read.lua"))));
pub(crate) static OBSERVE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("observe.lua")));

/// The key of the instance record the observe script keeps.
pub(crate) const INSTANCE_KEY: &str = "fanfare:instance";

/// The error code the scripts answer when a channel was written under a
/// newer generation than the calling connection's.
pub(crate) const STALE_GENERATION: &str = "STALEGEN";

/// Stream and idempotency keys live this much past the retention, so a
/// read at the edge of `max_age` still finds what it may return.
const TTL_SLACK_MS: u64 = 60_000;

/// The longest TTL a script is given (ten years). Lua numbers are doubles
/// and Redis refuses expiry times past its range; a command failing half
/// way through a script would leave its earlier writes applied, so every
/// number a script computes with stays well inside both.
pub(crate) const MAX_TTL_MS: u64 = 10 * 365 * 24 * 3600 * 1000;

/// The largest `MAXLEN` Redis takes.
const MAX_LEN: u64 = i64::MAX as u64;

/// A duration as a TTL a script can use.
pub(crate) fn ttl_ms(duration: std::time::Duration) -> u64 {
    duration_ms(duration).min(MAX_TTL_MS)
}

/// The keys both scripts take: the channel's four, the instance record,
/// then the channel's tombstones.
pub(crate) fn script_keys(channel: &ChannelName) -> [String; 6] {
    let [meta, stream, keys, key_expiry, deleted] =
        ["meta", "stream", "keys", "key_expiry", "deleted"].map(|suffix| channel_key(channel, suffix));
    [meta, stream, keys, key_expiry, INSTANCE_KEY.to_owned(), deleted]
}

/// The arguments `channel_state.lua` takes first: a fresh epoch, the
/// generation, the time, and the epoch period (the meta TTL: a meta that
/// expired was last touched at least that long ago, so its channel comes
/// back under a newer epoch).
pub(crate) struct StateArgs {
    pub generation: u64,
    pub meta_ttl_ms: u64,
}

/// The per-item arguments of `append.lua` for one request.
pub(crate) type ItemArgs = [Vec<u8>; 10];

/// The per-item arguments of `append.lua` for one request (an append or a
/// delete), encoded by the caller's task so the writer only concatenates.
pub(crate) fn append_item_args(request: &AppendRequest) -> ItemArgs {
    let key = match (&request.idempotency_key, &request.delete) {
        (Some(key), None) if request.update.is_none() => format!("k{key}").into_bytes(),
        _ => b"-".to_vec(),
    };
    let window_ms = ttl_ms(request.idempotency_window);
    let expires = request.time_ms.saturating_add(window_ms);
    let max_age_ms = ttl_ms(request.retention.max_age);
    let stream_ttl = max_age_ms + TTL_SLACK_MS;
    let key_ttl = max_age_ms.max(window_ms) + TTL_SLACK_MS;
    let (tail, delete) = match (&request.delete, request.update) {
        // The script finds the target and rewrites it with the record's data.
        (None, Some(target)) => {
            (encode_tail(&request.update_record(0, target)), format!("u{target}").into_bytes())
        }
        (None, None) => {
            let publication =
                Publication::new(0, request.time_ms, request.event.clone(), request.data.clone());
            let publication = publication.with_author(request.author.clone()).with_priority(request.priority);
            (encode_tail(&publication), b"-".to_vec())
        }
        // The script puts the offsets it tombstoned after the record's 'X'.
        (Some(targets), _) => {
            let record = Publication::delete_record(0, request.time_ms, Vec::new());
            (encode_tail(&record.with_author(request.author.clone())), delete_spec(targets))
        }
    };
    [
        request.time_ms.to_string().into_bytes(),
        key,
        expires.to_string().into_bytes(),
        request.retention.max_len.min(MAX_LEN).to_string().into_bytes(),
        stream_ttl.to_string().into_bytes(),
        key_ttl.to_string().into_bytes(),
        request.exclude.to_string().into_bytes(),
        tail,
        delete,
        request.retention.first_kept_time_ms(request.time_ms).to_string().into_bytes(),
    ]
}

/// A delete's targets as `append.lua` takes them: `o<offset>,…`,
/// `k<idempotency key>` or `a<author>`.
fn delete_spec(targets: &DeleteTargets) -> Vec<u8> {
    match targets {
        DeleteTargets::Offsets(offsets) => {
            let list: Vec<String> = offsets.iter().map(u64::to_string).collect();
            format!("o{}", list.join(",")).into_bytes()
        }
        DeleteTargets::IdempotencyKey(key) => format!("k{key}").into_bytes(),
        DeleteTargets::Author(author) => format!("a{}", author.as_str()).into_bytes(),
    }
}

/// One `EVALSHA append.lua` over `items` (from [`append_item_args`]).
pub(crate) fn append_command<'a>(
    channel: &ChannelName,
    items: impl IntoIterator<Item = &'a ItemArgs>,
    count: usize,
    state: &StateArgs,
) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(APPEND.get_hash()).arg(6).arg(&script_keys(channel)[..]);
    cmd.arg(random_epoch().as_str()).arg(state.generation).arg(unix_time_ms()).arg(state.meta_ttl_ms);
    cmd.arg(count).arg(live_channel(channel)).arg(state.meta_ttl_ms);
    for item in items {
        for value in item {
            cmd.arg(&value[..]);
        }
    }
    cmd
}

/// One outcome of an append group, as the script answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ItemReply {
    pub offset: u64,
    pub time_ms: u64,
    pub outcome: ItemOutcome,
}

/// What became of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ItemOutcome {
    Fresh,
    /// Its idempotency key matched: the first publication's offset and time.
    Duplicate,
    /// A delete record, and the offsets it tombstoned.
    Deleted(Vec<u64>),
    /// A delete that found nothing: no offset taken.
    NothingToDelete,
    /// An update record, and the offset it edited.
    Updated(u64),
    /// An edit that found no message to edit: no offset taken.
    NothingToEdit,
}

/// Parses `{ epoch, offset, time_ms, outcome, … }`.
pub(crate) fn parse_append_reply(
    reply: Vec<String>,
    count: usize,
) -> Result<(Epoch, Vec<ItemReply>), StoreError> {
    let corrupt = |reason| StoreError::Corrupt { keyspace: "redis", key: "append reply".into(), reason };
    let mut fields = reply.into_iter();
    let epoch = fields.next().ok_or_else(|| corrupt("no epoch"))?;
    let rest: Vec<String> = fields.collect();
    if rest.len() != count * 3 {
        return Err(corrupt("one outcome per item expected"));
    }
    let items = rest
        .chunks(3)
        .map(|item| {
            let outcome = match item[2].as_str() {
                "0" => ItemOutcome::Fresh,
                "1" => ItemOutcome::Duplicate,
                "N" => ItemOutcome::NothingToDelete,
                "M" => ItemOutcome::NothingToEdit,
                other if other.starts_with('U') => {
                    ItemOutcome::Updated(other[1..].parse().map_err(|_| corrupt("edited offset"))?)
                }
                other => {
                    let list = other.strip_prefix('X').ok_or_else(|| corrupt("outcome"))?;
                    let offsets: Result<Vec<u64>, _> = list.split(',').map(str::parse).collect();
                    ItemOutcome::Deleted(offsets.map_err(|_| corrupt("deleted offsets"))?)
                }
            };
            Ok(ItemReply {
                offset: item[0].parse().map_err(|_| corrupt("offset"))?,
                time_ms: item[1].parse().map_err(|_| corrupt("time"))?,
                outcome,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok((Epoch::new(&epoch), items))
}

/// The `read.lua` invocation; `None` as query reads only the position.
pub(crate) fn read_invocation(
    channel: &ChannelName,
    query: Option<&HistoryQuery>,
    state: &StateArgs,
) -> redis::ScriptInvocation<'static> {
    let mut invocation = READ.prepare_invoke();
    for key in script_keys(channel) {
        invocation.key(key);
    }
    let now_ms = unix_time_ms();
    invocation.arg(random_epoch().as_str()).arg(state.generation).arg(now_ms).arg(state.meta_ttl_ms);
    invocation.arg(state.meta_ttl_ms);
    match query {
        Some(query) => {
            let since = query.since.map_or_else(|| "-".to_owned(), |since| since.to_string());
            let limit = u64::try_from(query.limit).unwrap_or(u64::MAX);
            invocation
                .arg(since)
                .arg(query.retention.max_len)
                .arg(query.retention.first_kept_time_ms(now_ms));
            invocation.arg(limit).arg(if query.reverse { "1" } else { "0" });
        }
        None => {
            invocation.arg("-").arg(0).arg(0).arg(0).arg("0");
        }
    }
    invocation
}

/// The generation a `STALEGEN <g>` error names, if it is one.
pub(crate) fn stale_generation(error: &redis::RedisError) -> Option<u64> {
    if error.code() != Some(STALE_GENERATION) {
        return None;
    }
    error.detail().and_then(|detail| detail.trim().parse().ok()).or(Some(0))
}
