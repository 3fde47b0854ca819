//! Overrides of a seed's derived configuration: fault classes switched off, a shorter fault
//! phase, fewer clerks and operations. The minimizer ([`crate::minimize`]) searches them; the
//! CLI takes them as flags, so a minimized case is one replayable command.

use crate::clock::ClockParams;
use crate::config::SwarmConfig;
use crate::kv::KvWorkload;
use std::time::Duration;

/// Changes to a seed's configuration. The default changes nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Fault phase length, in simulated milliseconds.
    pub fault_phase_ms: Option<u64>,
    /// No partitions.
    pub no_partitions: bool,
    /// No crashes (injected or targeted).
    pub no_crashes: bool,
    /// No pauses.
    pub no_pauses: bool,
    /// No message drops, duplicates or extra delays.
    pub no_message_faults: bool,
    /// No disk faults.
    pub no_disk_faults: bool,
    /// No clock skew, drift or jumps.
    pub no_clock_faults: bool,
    /// No membership changes or leadership transfers (and no spare nodes).
    pub no_nemeses: bool,
    /// Kv clerks.
    pub clients: Option<usize>,
    /// Kv requests started in the fault phase, over all clerks.
    pub ops_max: Option<u64>,
    /// Longest partition, in simulated milliseconds.
    pub partition_max_ms: Option<u64>,
    /// No kv replies lost.
    pub no_reply_loss: bool,
}

impl Overrides {
    /// Whether anything is overridden.
    pub fn any(&self) -> bool {
        *self != Overrides::default()
    }

    /// Applies the overrides to a derived configuration.
    pub fn apply(&self, config: &mut SwarmConfig) {
        if let Some(ms) = self.fault_phase_ms {
            config.fault_phase = Duration::from_millis(ms);
        }
        if self.no_partitions {
            config.net.partition_every = None;
        }
        if let Some(ms) = self.partition_max_ms {
            config.net.partition_max = Duration::from_millis(ms.max(1));
        }
        if self.no_message_faults {
            config.net.drop = 0.0;
            config.net.duplicate = 0.0;
            config.net.delay = 0.0;
        }
        if self.no_crashes {
            config.node_faults.crash_every = None;
            config.node_faults.targeted_crash = 0.0;
            config.node_faults.crash_points = 0.0;
        }
        if self.no_pauses {
            config.node_faults.pause_every = None;
        }
        if self.no_disk_faults {
            config.disk.faulty_nodes.clear();
        }
        if self.no_nemeses {
            config.nemesis = None;
            config.spares = 0;
            config.clocks.truncate(config.nodes);
        }
        if self.no_clock_faults {
            for clock in &mut config.clocks {
                *clock = ClockParams {
                    skew_micros: 0,
                    drift_ppm: 0,
                    jumps: Vec::new(),
                    wander: None,
                };
            }
        }
    }

    /// Applies the overrides to a kv workload.
    pub fn apply_kv(&self, kv: &mut KvWorkload) {
        if let Some(clients) = self.clients {
            kv.clients = clients.max(1);
            // At least one clerk writes.
            kv.readers = kv.readers.min(kv.clients - 1);
        }
        kv.ops_max = self.ops_max;
        if self.no_reply_loss {
            kv.reply_loss = 0.0;
        }
    }

    /// The overrides as `sim` command-line flags (empty if none).
    pub fn to_flags(&self) -> String {
        let mut flags = Vec::new();
        if let Some(ms) = self.fault_phase_ms {
            flags.push(format!("--fault-phase-ms {ms}"));
        }
        for (on, flag) in [
            (self.no_partitions, "--no-partitions"),
            (self.no_crashes, "--no-crashes"),
            (self.no_pauses, "--no-pauses"),
            (self.no_message_faults, "--no-message-faults"),
            (self.no_disk_faults, "--no-disk-faults"),
            (self.no_clock_faults, "--no-clock-faults"),
            (self.no_nemeses, "--no-nemeses"),
            (self.no_reply_loss, "--no-reply-loss"),
        ] {
            if on {
                flags.push(flag.to_string());
            }
        }
        if let Some(ms) = self.partition_max_ms {
            flags.push(format!("--partition-max-ms {ms}"));
        }
        if let Some(clients) = self.clients {
            flags.push(format!("--clients {clients}"));
        }
        if let Some(ops) = self.ops_max {
            flags.push(format!("--ops-max {ops}"));
        }
        flags.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_switch_faults_off_and_print_as_flags() {
        let overrides = Overrides {
            fault_phase_ms: Some(1500),
            no_partitions: true,
            no_crashes: true,
            no_message_faults: true,
            no_disk_faults: true,
            no_clock_faults: true,
            clients: Some(2),
            ops_max: Some(30),
            partition_max_ms: Some(120),
            no_reply_loss: true,
            ..Overrides::default()
        };
        let mut config = SwarmConfig::from_seed(11);
        overrides.apply(&mut config);
        assert_eq!(config.fault_phase, Duration::from_millis(1500));
        assert_eq!(config.net.partition_max, Duration::from_millis(120));
        let mut kv = KvWorkload::from_seed(11);
        kv.reply_loss = 0.05;
        overrides.apply_kv(&mut kv);
        assert_eq!((kv.clients, kv.reply_loss, kv.ops_max), (2, 0.0, Some(30)));
        assert!(config.net.partition_every.is_none() && config.node_faults.crash_every.is_none());
        assert!(config.disk.faulty_nodes.is_empty() && config.net.drop == 0.0);
        assert!(config
            .clocks
            .iter()
            .all(|c| c.jumps.is_empty() && c.drift_ppm == 0));
        assert_eq!(
            overrides.to_flags(),
            "--fault-phase-ms 1500 --no-partitions --no-crashes --no-message-faults \
             --no-disk-faults --no-clock-faults --no-reply-loss --partition-max-ms 120 \
             --clients 2 --ops-max 30"
        );
        assert!(!Overrides::default().any() && overrides.any());
        assert_eq!(Overrides::default().to_flags(), "");
    }
}
