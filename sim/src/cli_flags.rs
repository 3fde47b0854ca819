//! Command-line flags that override a seed's derived configuration (what `--minimize`
//! prints, so a minimized case replays with one command).

use sim::overrides::Overrides;

/// Changes to the seed's derived configuration.
#[derive(clap::Args, Debug, Default)]
pub struct OverrideFlags {
    /// Fault phase length in simulated milliseconds.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub fault_phase_ms: Option<u64>,
    /// No partitions.
    #[arg(long)]
    pub no_partitions: bool,
    /// No crashes.
    #[arg(long)]
    pub no_crashes: bool,
    /// No pauses.
    #[arg(long)]
    pub no_pauses: bool,
    /// No message drops, duplicates or extra delays.
    #[arg(long)]
    pub no_message_faults: bool,
    /// No disk faults.
    #[arg(long)]
    pub no_disk_faults: bool,
    /// No clock skew, drift or jumps.
    #[arg(long)]
    pub no_clock_faults: bool,
    /// No membership changes or leadership transfers.
    #[arg(long)]
    pub no_nemeses: bool,
    /// Kv clerks.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub clients: Option<u64>,
    /// Kv requests started during the fault phase.
    #[arg(long)]
    pub ops_max: Option<u64>,
    /// Longest partition in simulated milliseconds.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub partition_max_ms: Option<u64>,
    /// No kv replies lost.
    #[arg(long)]
    pub no_reply_loss: bool,
}

impl OverrideFlags {
    /// The overrides these flags ask for.
    pub fn to_overrides(&self) -> Overrides {
        Overrides {
            fault_phase_ms: self.fault_phase_ms,
            no_partitions: self.no_partitions,
            no_crashes: self.no_crashes,
            no_pauses: self.no_pauses,
            no_message_faults: self.no_message_faults,
            no_disk_faults: self.no_disk_faults,
            no_clock_faults: self.no_clock_faults,
            no_nemeses: self.no_nemeses,
            clients: self.clients.map(|c| c as usize),
            ops_max: self.ops_max,
            partition_max_ms: self.partition_max_ms,
            no_reply_loss: self.no_reply_loss,
        }
    }
}
