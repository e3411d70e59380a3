//! A shaped channel's batches: the ordinary publications its sampling
//! keeps wait for the channel's next batch, so each subscriber's socket
//! takes them in one write instead of one write each.
//!
//! At 15,000 subscribers every frame written on its own costs a system
//! call per subscriber; a budget of 20 a second, a priority publication a
//! second and four reaction aggregates make 375,000 writes a second, more
//! than two cores. Held for the namespace's `batch` (250 ms by default),
//! the same deliveries take about five writes per subscriber per second.
//!
//! What never waits: a publication of the priority lane, a delete record
//! or tombstone — each takes the held ones along, in offset order, in the
//! same pass — and a reaction aggregate, which carries the held ones too.
//! The batch holds owned copies (a publication's data is shared by
//! reference count), at most a budget's worth per batch.

use std::sync::Arc;

use fanfare_protocol::{ChannelName, Epoch, Publication, Stamp};

use crate::encode::{Encoded, Message};
use crate::hub::Shared;
use crate::registry::{Channel, ChannelState, ConnId, Delivered, Fresh, Outgoing};
use crate::shaping::Shaping;

/// Deliveries waiting for a shaped channel's next batch.
#[derive(Default)]
pub(crate) struct Batch {
    held: Vec<HeldDelivery>,
    /// A flush is scheduled.
    flush_due: bool,
}

/// An ordinary publication the sampling kept, waiting.
struct HeldDelivery {
    epoch: Epoch,
    publication: Publication,
    except: Option<ConnId>,
    accepted: Stamp,
    /// The channel-level `skipped` its sampling decided.
    skipped: u64,
}

impl HeldDelivery {
    fn fresh(&self) -> (Fresh<'_>, Option<u64>) {
        let fresh = Fresh {
            epoch: &self.epoch,
            publication: &self.publication,
            except: self.except,
            accepted: self.accepted,
        };
        (fresh, Some(self.skipped))
    }
}

impl ChannelState {
    /// Fans out new durable publications of the channel, in offset order:
    /// each through the channel's shaping (when its namespace has one),
    /// then encoded once and pushed to every subscriber
    /// ([`ChannelState::fan_out_many`]). In a batched channel the kept
    /// ordinary ones wait for the batch, unless one of them must go now.
    pub fn fan_out_publications(
        &mut self,
        channel: &ChannelName,
        fresh: &[Fresh<'_>],
        shaping: Option<&Shaping>,
        catch_up_cap: usize,
    ) -> Delivered {
        let mut kept: Vec<(Fresh<'_>, Option<u64>)> = Vec::with_capacity(fresh.len());
        for item in fresh {
            if let Some(skipped) = self.shape(shaping, item.publication) {
                kept.push((*item, skipped));
            }
        }
        let sampled_out = (fresh.len() - kept.len()) as u64;
        let urgent = kept.iter().any(|(item, _)| must_go_now(item.publication));
        let Some(batch) = shaping.and_then(|shaping| shaping.batch).filter(|_| !urgent) else {
            // Unshaped channels never hold anything: their publications go as they are.
            let held = std::mem::take(&mut self.batch.held);
            let due = match held.is_empty() {
                true => kept,
                false => held.iter().map(HeldDelivery::fresh).chain(kept).collect(),
            };
            let fan_out = self.deliver(channel, &due, None, catch_up_cap);
            return Delivered { fan_out, sampled_out, flush_after: None };
        };
        self.batch.held.extend(kept.into_iter().map(|(item, skipped)| HeldDelivery {
            epoch: item.epoch.clone(),
            publication: item.publication.clone(),
            except: item.except,
            accepted: item.accepted,
            skipped: skipped.unwrap_or(0),
        }));
        let flush_after = (!self.batch.held.is_empty() && !self.batch.flush_due).then_some(batch);
        self.batch.flush_due |= flush_after.is_some();
        Delivered { fan_out: Default::default(), sampled_out, flush_after }
    }

    /// Delivers the held batch, with `extra` (an ephemeral message such
    /// as a reaction aggregate) after it in the same pass.
    pub fn flush_batch(
        &mut self,
        channel: &ChannelName,
        extra: Option<Outgoing<'_>>,
        catch_up_cap: usize,
    ) -> Delivered {
        self.batch.flush_due = false;
        if self.batch.held.is_empty() {
            // Nothing waits (every unshaped channel): just the message.
            let fan_out = extra.map(|m| self.fan_out(m.offset, m.message, m.except, catch_up_cap));
            return Delivered { fan_out: fan_out.unwrap_or_default(), ..Delivered::default() };
        }
        let held = std::mem::take(&mut self.batch.held);
        let due: Vec<(Fresh<'_>, Option<u64>)> = held.iter().map(HeldDelivery::fresh).collect();
        let fan_out = self.deliver(channel, &due, extra, catch_up_cap);
        Delivered { fan_out, ..Delivered::default() }
    }

    /// Encodes each publication once and pushes them, then `extra`.
    fn deliver(
        &mut self,
        channel: &ChannelName,
        due: &[(Fresh<'_>, Option<u64>)],
        extra: Option<Outgoing<'_>>,
        catch_up_cap: usize,
    ) -> crate::registry::FanOut {
        let encoded: Vec<Encoded<'_>> = due
            .iter()
            .map(|(item, shaped)| {
                let message = Message::Publication { epoch: item.epoch, publication: item.publication };
                let message = Encoded::new(channel, message).accepted_at(item.accepted);
                match shaped {
                    Some(skipped) => message.shaped(*skipped),
                    None => message,
                }
            })
            .collect();
        let mut outgoing: Vec<Outgoing<'_>> = due
            .iter()
            .zip(&encoded)
            .map(|((item, _), message)| Outgoing {
                offset: Some(item.publication.offset),
                message,
                except: item.except,
            })
            .collect();
        outgoing.extend(extra);
        if outgoing.is_empty() {
            return Default::default();
        }
        self.fan_out_many(&outgoing, catch_up_cap)
    }
}

/// Whether a publication never waits for a batch.
fn must_go_now(publication: &Publication) -> bool {
    publication.priority || !publication.is_message()
}

/// Counts a fan-out of fresh publications and, when it held deliveries
/// for a batch, schedules the batch's flush: a task, so the fan-out that
/// held them does not wait.
pub(crate) fn after_fan_out(
    shared: &Arc<Shared>,
    chan: &Arc<Channel>,
    channel: &ChannelName,
    delivered: Delivered,
) {
    shared.count_delivered(channel, delivered);
    let Some(after) = delivered.flush_after else { return };
    let (shared, chan, channel) = (shared.clone(), chan.clone(), channel.clone());
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let flushed = chan.state.lock().flush_batch(&channel, None, shared.options.catch_up_buffer);
        shared.count_delivered(&channel, flushed);
    });
}
