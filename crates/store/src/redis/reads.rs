//! Reads (`read`, `position`) through `read.lua`, on the writer's current
//! connection and with its generation.

use std::time::Instant;

use fanfare_protocol::cluster::decode_tail;
use fanfare_protocol::{ChannelName, Epoch, Publication};

use super::scripts::{StateArgs, read_invocation, stale_generation, ttl_ms};
use super::{BACKEND, Shared, redis_error};
use crate::{Exclusion, HistoryPage, HistoryQuery, StoreError};

/// Runs `read.lua`; `None` reads only the position. A stale generation
/// makes it observe the instance again on the same connection and retry
/// once.
pub(crate) async fn read(
    shared: &Shared,
    channel: &ChannelName,
    query: Option<&HistoryQuery>,
) -> Result<HistoryPage, StoreError> {
    let Some(mut link) = shared.current() else {
        return Err(StoreError::unavailable(BACKEND, false, None));
    };
    let meta_ttl_ms = ttl_ms(shared.meta_ttl);
    for attempt in 0..2 {
        let state = StateArgs { generation: link.generation(), meta_ttl_ms };
        let invocation = read_invocation(channel, query, &state);
        let started = Instant::now();
        let mut conn = link.conn.clone();
        match invocation.invoke_async::<Vec<Vec<u8>>>(&mut conn).await {
            Ok(reply) => {
                shared.metrics.roundtrip.record(started.elapsed().as_secs_f64());
                return parse_read_reply(channel, reply);
            }
            Err(error) => {
                if let Some(generation) = stale_generation(&error) {
                    shared.metrics.script_errors.increment(1);
                    if attempt == 0 {
                        link.reobserve(generation).await.map_err(|e| failed(shared, e))?;
                        continue;
                    }
                }
                return Err(failed(shared, error));
            }
        }
    }
    Err(StoreError::unavailable(BACKEND, false, None))
}

/// Maps a read's error, and asks the writer to check its connection when
/// the error looks like the connection's.
fn failed(shared: &Shared, error: redis::RedisError) -> StoreError {
    let error = redis_error(error, false);
    if matches!(error, StoreError::Unavailable { .. }) {
        shared.suspect.notify_one();
    }
    error
}

/// Parses `{ epoch, top, offset, exclude, tail, … }` (`exclude` 0 for a
/// publication that excluded no connection).
fn parse_read_reply(channel: &ChannelName, reply: Vec<Vec<u8>>) -> Result<HistoryPage, StoreError> {
    let corrupt = |key: String, reason| StoreError::Corrupt { keyspace: "redis stream", key, reason };
    let number = |bytes: &[u8]| std::str::from_utf8(bytes).ok().and_then(|s| s.parse::<u64>().ok());
    let mut fields = reply.into_iter();
    let (Some(epoch), Some(top)) = (fields.next(), fields.next()) else {
        return Err(corrupt(channel.to_string(), "a read reply needs an epoch and a top offset"));
    };
    let epoch = String::from_utf8(epoch).map_err(|_| corrupt(channel.to_string(), "epoch not UTF-8"))?;
    let top_offset = number(&top).ok_or_else(|| corrupt(channel.to_string(), "top offset"))?;
    let rest: Vec<Vec<u8>> = fields.collect();
    let mut page = HistoryPage::new(Epoch::new(&epoch), top_offset, Vec::with_capacity(rest.len() / 3));
    for entry in rest.chunks(3) {
        let [offset, exclude, tail] = entry else {
            return Err(corrupt(channel.to_string(), "an entry is offset, exclude and tail"));
        };
        let offset = number(offset).ok_or_else(|| corrupt(channel.to_string(), "entry offset"))?;
        let key = || format!("{channel}@{offset}");
        let exclude = number(exclude).ok_or_else(|| corrupt(key(), "entry exclusion"))?;
        let publication: Publication =
            decode_tail(offset, tail).map_err(|_| corrupt(key(), "undecodable publication"))?;
        page.publications.push(publication);
        if exclude != 0 {
            page.exclusions.push(Exclusion { offset, conn: exclude });
        }
    }
    Ok(page)
}
