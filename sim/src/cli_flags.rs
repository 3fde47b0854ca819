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
    /// Kv clerks.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub clients: Option<u64>,
    /// Kv requests started during the fault phase.
    #[arg(long)]
    pub ops_max: Option<u64>,
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
            clients: self.clients.map(|c| c as usize),
            ops_max: self.ops_max,
        }
    }
}
