//! What the clerks ask: commands drawn from the seed's mix, and how each command and reply is
//! recorded for the checker's kv model.
//!
//! Values are unique (a counter), so the checker can tell every write apart. A
//! CompareAndSet mostly expects the value last seen for its key (by any clerk: a read, a
//! swap's previous value, a completed write), so swaps often succeed; sometimes it expects
//! absence or a value never written, so failed swaps are exercised too.

use crate::kv::config::KvWorkload;
use linearizability::models::{KvAction, KvInput, KvOutput};
use rand::rngs::SmallRng;
use rand::Rng;
use std::collections::BTreeMap;
use workloads::{KvCommand, KvReply};

/// Probability that a CompareAndSet expects the last value seen for its key.
const CAS_EXPECTS_SEEN: f64 = 0.8;

/// Probability that a reader reads the key of the latest completed write.
const READ_LATEST_WRITE: f64 = 0.5;

/// The clerks' shared knowledge for drawing commands.
#[derive(Debug)]
pub(super) struct CommandDraw {
    /// Bytes appended to each key since its last Put, swap or Delete.
    appended: BTreeMap<String, usize>,
    /// The value last seen for each key (`None`: absent); a guess, since other clerks race.
    seen: BTreeMap<String, Option<String>>,
    /// The key of the latest completed write.
    latest_write: Option<String>,
    next_value: u64,
}

pub(super) fn key_name(index: usize) -> String {
    format!("k{index}")
}

impl CommandDraw {
    /// Nothing seen yet; the first value written is tagged 1.
    pub(super) fn new() -> Self {
        CommandDraw {
            appended: BTreeMap::new(),
            seen: BTreeMap::new(),
            latest_write: None,
            next_value: 1,
        }
    }

    /// Draws the next command of a clerk (`reader`: one that only reads).
    pub(super) fn next(
        &mut self,
        rng: &mut SmallRng,
        config: &KvWorkload,
        reader: bool,
    ) -> KvCommand {
        let mut key = key_name(rng.gen_range(0..config.keys));
        if reader && rng.gen_bool(READ_LATEST_WRITE) {
            key = self.latest_write.clone().unwrap_or(key);
        }
        if reader || rng.gen_bool(config.get_fraction) {
            // No extra draw for a mix without Exists, so such seeds draw as they always did.
            let exists =
                config.mix.exists_fraction > 0.0 && rng.gen_bool(config.mix.exists_fraction);
            return if exists {
                KvCommand::Exists { key }
            } else {
                KvCommand::Get { key }
            };
        }
        let (delete, cas) = (config.mix.delete_fraction, config.mix.cas_fraction);
        let r: f64 = if delete + cas > 0.0 { rng.gen() } else { 1.0 };
        if r < delete {
            self.appended.remove(&key);
            return KvCommand::Delete { key };
        }
        let value = self.fresh_value(rng, config);
        if r < delete + cas {
            let expected = match self.seen.get(&key) {
                Some(seen) if rng.gen_bool(CAS_EXPECTS_SEEN) => seen.clone(),
                _ if rng.gen_bool(0.5) => None,
                // No value ever written starts with "x", so this swap must fail.
                _ => Some(format!("x{}", self.next_value)),
            };
            self.appended.insert(key.clone(), value.len());
            return KvCommand::CompareAndSet {
                key,
                expected,
                new: value,
            };
        }
        let appended = self.appended.entry(key.clone()).or_insert(0);
        if rng.gen_bool(config.append_fraction) && *appended + value.len() <= config.append_budget {
            *appended += value.len();
            KvCommand::Append { key, value }
        } else {
            *appended = value.len();
            KvCommand::Put { key, value }
        }
    }

    fn fresh_value(&mut self, rng: &mut SmallRng, config: &KvWorkload) -> String {
        let tag = self.next_value;
        self.next_value += 1;
        let len = rng.gen_range(1..=config.value_max);
        let mut value = format!("{tag}.");
        while value.len() < len {
            value.push((b'a' + (value.len() % 26) as u8) as char);
        }
        value
    }

    /// Learns from a completed command what its key now holds.
    pub(super) fn completed(&mut self, command: &KvCommand, reply: &KvReply) {
        let key = command.key().to_string();
        let seen = match (command, reply) {
            (KvCommand::Put { value, .. }, KvReply::Done) => Some(value.clone()),
            (KvCommand::Append { value, .. }, KvReply::Done) => match self.seen.get(&key) {
                Some(Some(before)) => Some(format!("{before}{value}")),
                Some(None) => Some(value.clone()),
                None => {
                    self.seen.remove(&key);
                    self.latest_write = Some(key);
                    return;
                }
            },
            (_, KvReply::Value(value)) => value.clone(),
            (_, KvReply::Exists(false) | KvReply::Deleted { .. }) => None,
            (
                KvCommand::CompareAndSet { new, .. },
                KvReply::CompareAndSet { swapped, previous },
            ) => {
                if *swapped {
                    Some(new.clone())
                } else {
                    previous.clone()
                }
            }
            _ => return,
        };
        if !command.is_read_only() {
            self.latest_write = Some(key.clone());
        }
        self.seen.insert(key, seen);
    }
}

/// The model's view of a command.
pub(super) fn model_input(command: &KvCommand) -> KvInput {
    let action = match command {
        KvCommand::Get { .. } => KvAction::Get,
        KvCommand::Put { value, .. } => KvAction::Put(value.clone()),
        KvCommand::Append { value, .. } => KvAction::Append(value.clone()),
        KvCommand::Delete { .. } => KvAction::Delete,
        KvCommand::Exists { .. } => KvAction::Exists,
        KvCommand::CompareAndSet { expected, new, .. } => KvAction::Cas {
            expected: expected.clone(),
            new: new.clone(),
        },
    };
    KvInput {
        key: command.key().to_string(),
        action,
    }
}

/// The model's view of a reply, or `None` for a reply that tells nothing about the key (a
/// refused oversized write, which the workload's bounded values never cause).
pub(super) fn model_output(reply: &KvReply) -> Option<KvOutput> {
    Some(match reply {
        KvReply::Done => KvOutput::Done,
        KvReply::Value(Some(value)) => KvOutput::Value(value.clone()),
        KvReply::Value(None) => KvOutput::Absent,
        KvReply::Deleted { existed } => KvOutput::Deleted { existed: *existed },
        KvReply::Exists(present) => KvOutput::Exists(*present),
        KvReply::CompareAndSet { swapped, previous } => KvOutput::Cas {
            swapped: *swapped,
            previous: previous.clone(),
        },
        KvReply::ValueTooLarge { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{stream_rng, Stream};

    #[test]
    fn every_command_is_drawn_and_swaps_mostly_expect_the_seen_value() {
        let mut config = KvWorkload::from_seed(1);
        config.mix = crate::kv::config::OpMix::ALL[2];
        config.get_fraction = 0.3;
        let mut rng = stream_rng(5, Stream::Kv);
        let mut draw = CommandDraw::new();
        let mut kinds = std::collections::BTreeSet::new();
        let (mut swaps, mut expecting_seen) = (0, 0);
        for _ in 0..2000 {
            let command = draw.next(&mut rng, &config, false);
            kinds.insert(match &command {
                KvCommand::Get { .. } => "get",
                KvCommand::Put { .. } => "put",
                KvCommand::Append { .. } => "append",
                KvCommand::Delete { .. } => "delete",
                KvCommand::Exists { .. } => "exists",
                KvCommand::CompareAndSet { .. } => "cas",
            });
            if let KvCommand::CompareAndSet { key, expected, .. } = &command {
                swaps += 1;
                expecting_seen += u32::from(draw.seen.get(key) == Some(expected));
            }
            let reply = match &command {
                KvCommand::Get { .. } => KvReply::Value(None),
                KvCommand::Exists { .. } => KvReply::Exists(false),
                KvCommand::Delete { .. } => KvReply::Deleted { existed: true },
                KvCommand::CompareAndSet { .. } => KvReply::CompareAndSet {
                    swapped: true,
                    previous: None,
                },
                _ => KvReply::Done,
            };
            draw.completed(&command, &reply);
            assert!(model_output(&reply).is_some());
            assert_eq!(model_input(&command).key, command.key());
        }
        assert_eq!(kinds.len(), 6, "every kind of command is drawn");
        assert!(
            expecting_seen * 10 > swaps * 7,
            "{expecting_seen} of {swaps}"
        );
        assert!(draw.next(&mut rng, &config, true).is_read_only());
    }
}
