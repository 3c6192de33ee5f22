//! How many cells run at once by default: as many Talos-in-Docker clusters as the host's free
//! memory holds, capped by its CPUs. Memory is the hard limit (a node that runs out of it gets
//! OOM-killed mid-test); CPU limits are CFS quotas, ceilings that clusters share, so CPUs only
//! cap how many clusters boot and install at the same time.

use std::fmt;

/// Memory left to the host, Docker and the harness itself (helm, probes, the kube clients).
pub const RESERVE_MIB: u64 = 2048;

/// Host CPUs a cell keeps busy while it boots and installs Cilium: etcd, the API server and the
/// Cilium agents starting on every node at once. A judgement, stated here and in `plan`;
/// `--jobs` overrides it.
pub const CPUS_PER_CELL: u32 = 2;

/// What the default is computed from; `--host-cpus` and `--host-memory` replace the measured
/// values (to plan for another machine, and in tests and benches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostFacts {
    pub cpus: u32,
    /// Memory available to new processes (`MemAvailable`), in MiB; `None` when the host does
    /// not say.
    pub free_mib: Option<u64>,
}

impl HostFacts {
    /// This host: its usable CPUs and `MemAvailable` from /proc/meminfo, each replaced by the
    /// override when one is given.
    pub fn current(cpus: Option<u32>, free_mib: Option<u64>) -> Self {
        HostFacts {
            cpus: cpus.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get() as u32)
                    .unwrap_or(1)
            }),
            free_mib: free_mib.or_else(|| {
                std::fs::read_to_string("/proc/meminfo")
                    .ok()
                    .and_then(|m| mem_available_mib(&m))
            }),
        }
    }
}

/// `MemAvailable:   12345678 kB` → MiB.
fn mem_available_mib(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let rest = l.strip_prefix("MemAvailable:")?;
        let kib: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kib / 1024)
    })
}

/// One cell's cluster as far as the host is concerned.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClusterSize {
    pub nodes: u32,
    pub cpus_per_node: f64,
    pub memory_mib_per_node: u64,
}

impl ClusterSize {
    pub fn memory_mib(&self) -> u64 {
        self.memory_mib_per_node * u64::from(self.nodes)
    }
}

/// How many cells run at once, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Jobs {
    pub jobs: usize,
    pub why: Why,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Why {
    /// `--jobs N`.
    Given,
    Host {
        host: HostFacts,
        size: ClusterSize,
        by_memory: Option<u64>,
        by_cpus: u64,
        cells: usize,
    },
}

/// `--jobs` when given, else what the host holds: at least one, at most one per cell.
pub fn jobs(given: Option<u32>, host: HostFacts, size: ClusterSize, cells: usize) -> Jobs {
    if let Some(n) = given {
        return Jobs {
            jobs: n.max(1) as usize,
            why: Why::Given,
        };
    }
    let by_memory = host
        .free_mib
        .map(|free| free.saturating_sub(RESERVE_MIB) / size.memory_mib().max(1));
    let by_cpus = u64::from(host.cpus / CPUS_PER_CELL);
    let fit = by_memory.unwrap_or(1).min(by_cpus).min(cells as u64).max(1);
    Jobs {
        jobs: fit as usize,
        why: Why::Host {
            host,
            size,
            by_memory,
            by_cpus,
            cells,
        },
    }
}

impl fmt::Display for Jobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} cell(s) at once", self.jobs)?;
        let Why::Host {
            host,
            size,
            by_memory,
            by_cpus,
            cells,
        } = &self.why
        else {
            return write!(f, " (--jobs)");
        };
        let memory = match (host.free_mib, by_memory) {
            (Some(free), Some(n)) => format!(
                "{:.1} GiB free - {:.0} GiB reserve holds {n} cluster(s) of {} nodes x {} MiB",
                free as f64 / 1024.0,
                RESERVE_MIB as f64 / 1024.0,
                size.nodes,
                size.memory_mib_per_node
            ),
            _ => "free memory unknown, so one cluster".to_string(),
        };
        write!(
            f,
            " ({memory}; {} CPUs at {CPUS_PER_CELL} per booting cluster hold {by_cpus}; {cells} cell(s)); --jobs N overrides",
            host.cpus
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT_SIZE: ClusterSize = ClusterSize {
        nodes: 3,
        cpus_per_node: 2.0,
        memory_mib_per_node: 2048,
    };

    fn host(cpus: u32, free_gib: u64) -> HostFacts {
        HostFacts {
            cpus,
            free_mib: Some(free_gib * 1024),
        }
    }

    #[test]
    fn memory_and_cpus_each_cap_the_default() {
        // 30 GiB - 2 GiB reserve over 6 GiB clusters: 4; 8 CPUs at 2 per cluster: 4.
        assert_eq!(jobs(None, host(8, 30), DEFAULT_SIZE, 12).jobs, 4);
        // Memory binds: 14 GiB - 2 over 6 GiB is 2.
        assert_eq!(jobs(None, host(16, 14), DEFAULT_SIZE, 12).jobs, 2);
        // CPUs bind: 2 CPUs hold one booting cluster.
        assert_eq!(jobs(None, host(2, 64), DEFAULT_SIZE, 12).jobs, 1);
        // Never more than the cells, never fewer than one.
        assert_eq!(jobs(None, host(64, 256), DEFAULT_SIZE, 3).jobs, 3);
        assert_eq!(jobs(None, host(1, 1), DEFAULT_SIZE, 3).jobs, 1);
        assert_eq!(
            jobs(
                None,
                HostFacts {
                    cpus: 64,
                    free_mib: None
                },
                DEFAULT_SIZE,
                8
            )
            .jobs,
            1
        );
    }

    #[test]
    fn a_given_count_wins_and_says_so() {
        let j = jobs(Some(6), host(2, 4), DEFAULT_SIZE, 2);
        assert_eq!(j.jobs, 6);
        assert_eq!(j.to_string(), "6 cell(s) at once (--jobs)");
    }

    #[test]
    fn the_reason_names_both_limits() {
        assert_eq!(
            jobs(None, host(8, 30), DEFAULT_SIZE, 12).to_string(),
            "4 cell(s) at once (30.0 GiB free - 2 GiB reserve holds 4 cluster(s) of 3 nodes x 2048 MiB; 8 CPUs at 2 per booting cluster hold 4; 12 cell(s)); --jobs N overrides"
        );
    }

    #[test]
    fn mem_available_is_read_from_meminfo() {
        let meminfo = "MemTotal:       32803548 kB\nMemFree:         1234567 kB\nMemAvailable:   25165824 kB\n";
        assert_eq!(mem_available_mib(meminfo), Some(24576));
        assert_eq!(mem_available_mib("MemTotal: 1 kB\n"), None);
    }
}
