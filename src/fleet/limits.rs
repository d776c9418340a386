//! How many clients fit in this process: file descriptors (`RLIMIT_NOFILE`) and ephemeral
//! ports per loopback source address.
//!
//! The limit is read from `/proc` (where `/proc` is missing, not Linux, the checks are
//! skipped, not guessed); [`raise_fd_limit`] lifts the soft limit to the hard one first.

use std::net::{IpAddr, Ipv4Addr};

use super::FleetError;

/// Descriptors kept free for everything that is not a client socket: the runtime's epoll
/// and eventfds, arbiter threads, logs, the hub's listener, `/proc` reads.
pub const FD_RESERVE: u64 = 64;

/// Ephemeral ports of a default Linux (`net.ipv4.ip_local_port_range` = 32768..60999),
/// used when `/proc` cannot tell.
pub const DEFAULT_EPHEMERAL_PORTS: u64 = 60999 - 32768 + 1;

/// Share of one source address's ephemeral ports the fleet uses before it moves to the next
/// address: the rest stays for TIME_WAIT sockets of reconnects and for other programs.
pub const PORT_SHARE: f64 = 0.9;

/// The process's open-files limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// Soft limit: the one that applies.
    pub soft: u64,
    /// Hard limit: how far the soft limit may be raised.
    pub hard: u64,
}

/// Raises this process's soft open-files limit to its hard limit, so a fleet can hold as
/// many sockets as the system lets it without the user typing `ulimit -n`. Returns the
/// soft limit now in force. The CLI calls it at start; an application embedding a fleet
/// decides for itself.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// `RLIMIT_NOFILE` of this process, from `/proc/self/limits`.
pub fn fd_limit() -> Option<FdLimit> {
    parse_limits(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

/// The `Max open files` line of a `/proc/<pid>/limits` text (`unlimited` reads as `u64::MAX`).
pub fn parse_limits(text: &str) -> Option<FdLimit> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line["Max open files".len()..].split_whitespace();
    let value = |s: Option<&str>| match s? {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    };
    Some(FdLimit {
        soft: value(fields.next())?,
        hard: value(fields.next())?,
    })
}

/// Descriptors this process holds now (entries of `/proc/self/fd`).
pub fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

/// How many clients fit under a descriptor limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// The limit.
    pub limit: FdLimit,
    /// Descriptors open before the fleet.
    pub open_now: u64,
    /// Descriptors one client costs (1 for a remote hub; 2 when the hub runs in this process
    /// and holds the other end of every socket).
    pub per_client: u64,
    /// Clients that fit.
    pub fit: u64,
}

impl Capacity {
    /// Clients that fit under `limit` when `open_now` are taken and each costs `per_client`.
    pub fn compute(limit: FdLimit, open_now: u64, per_client: u64) -> Capacity {
        let free = limit
            .soft
            .saturating_sub(open_now)
            .saturating_sub(FD_RESERVE);
        Capacity {
            limit,
            open_now,
            per_client: per_client.max(1),
            fit: free / per_client.max(1),
        }
    }

    /// `Ok` when `requested` clients fit, else an error that says how many do.
    pub fn check(&self, requested: u64) -> Result<(), FleetError> {
        if requested <= self.fit {
            return Ok(());
        }
        Err(FleetError::TooManyClients {
            requested,
            fit: self.fit,
            needed: requested
                .saturating_mul(self.per_client)
                .saturating_add(self.open_now + FD_RESERVE),
            soft_limit: self.limit.soft,
            hard_limit: self.limit.hard,
            open_now: self.open_now,
        })
    }
}

/// Ephemeral ports per source address, from `/proc/sys/net/ipv4/ip_local_port_range`.
pub fn ephemeral_ports() -> u64 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| parse_port_range(&t))
        .unwrap_or(DEFAULT_EPHEMERAL_PORTS)
}

/// The number of ports in an `ip_local_port_range` text (`"32768\t60999"`).
pub fn parse_port_range(text: &str) -> Option<u64> {
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    let (low, high) = (fields.next()??, fields.next()??);
    (high >= low).then(|| high - low + 1)
}

/// Which source address each client uses when the target is on loopback: the default (no
/// bind) for the first `per_address` clients, then 127.0.0.2, 127.0.0.3, ... Each
/// address has its own ephemeral ports, so one process can open far more than ~28k
/// sockets to one hub port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourcePlan {
    /// Clients per source address.
    pub per_address: u64,
}

/// Loopback addresses 127.0.0.2 ..= 127.255.255.254 can serve as sources.
const LOOPBACK_SOURCES: u64 = (1 << 24) - 3;

impl SourcePlan {
    /// A plan that uses [`PORT_SHARE`] of `ports` per address.
    pub fn new(ports: u64) -> SourcePlan {
        SourcePlan {
            per_address: ((ports as f64 * PORT_SHARE) as u64).max(1),
        }
    }

    /// Checks that `clients` fit in 127.0.0.0/8.
    pub fn check(&self, clients: u64) -> Result<(), FleetError> {
        let max = LOOPBACK_SOURCES.saturating_add(1);
        if clients.div_ceil(self.per_address) > max {
            return Err(FleetError::TooManyForLoopback {
                requested: clients,
                max,
            });
        }
        Ok(())
    }

    /// The source address of client `index` (`None`: let the system choose).
    pub fn source(&self, index: u64) -> Option<IpAddr> {
        let block = index / self.per_address;
        if block == 0 {
            return None;
        }
        // Block 1 is 127.0.0.2: .0 is the network and .1 is the default source.
        let host = (block + 1).min(LOOPBACK_SOURCES + 1) as u32;
        Some(IpAddr::V4(Ipv4Addr::from(0x7f00_0000 | host)))
    }
}

/// Whether a host name or address is on loopback (where source spreading applies).
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max open files            20000                40000                files     \n";

    #[test]
    fn the_soft_fd_limit_rises_to_the_hard_one() {
        let raised = raise_fd_limit().expect("setrlimit within the hard limit is allowed");
        if let Some(limit) = fd_limit() {
            assert_eq!(limit.soft, raised);
            // Linux caps an unlimited hard limit at fs.nr_open.
            assert!(
                limit.soft == limit.hard || limit.hard == u64::MAX,
                "{limit:?}"
            );
        }
    }

    #[test]
    fn limits_line_is_parsed() {
        assert_eq!(
            parse_limits(LIMITS),
            Some(FdLimit {
                soft: 20000,
                hard: 40000
            })
        );
        let unlimited = "Max open files            1024                 unlimited            files";
        assert_eq!(parse_limits(unlimited).map(|l| l.hard), Some(u64::MAX));
        assert_eq!(parse_limits("Max open files  lots  files"), None);
        assert_eq!(parse_limits(""), None);
    }

    #[test]
    fn this_process_has_a_limit() {
        // Linux only: where /proc exists the limit is readable and positive.
        if std::path::Path::new("/proc/self/limits").exists() {
            assert!(fd_limit().is_some_and(|l| l.soft > 0));
            assert!(open_fds().is_some_and(|n| n > 0));
        }
    }

    #[test]
    fn capacity_says_how_many_fit() {
        let limit = FdLimit {
            soft: 20000,
            hard: 20000,
        };
        let cap = Capacity::compute(limit, 36, 2);
        assert_eq!(cap.fit, (20000 - 36 - FD_RESERVE) / 2);
        assert!(cap.check(cap.fit).is_ok());
        let err = cap.check(cap.fit + 1).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("at most {} clients fit", cap.fit)),
            "{text}"
        );
        assert!(text.contains("ulimit -n"), "{text}");
        // A limit below the reserve fits nobody, without underflow.
        let tiny = Capacity::compute(FdLimit { soft: 10, hard: 10 }, 50, 1);
        assert_eq!(tiny.fit, 0);
    }

    #[test]
    fn port_range_is_parsed() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some(28232));
        assert_eq!(parse_port_range("5 4"), None);
        assert_eq!(parse_port_range("x"), None);
    }

    #[test]
    fn sources_spread_over_loopback_after_one_address_is_full() {
        let plan = SourcePlan { per_address: 100 };
        assert_eq!(plan.source(0), None);
        assert_eq!(plan.source(99), None);
        assert_eq!(plan.source(100), Some("127.0.0.2".parse().unwrap()));
        assert_eq!(plan.source(299), Some("127.0.0.3".parse().unwrap()));
        assert_eq!(plan.source(100 * 300), Some("127.0.1.45".parse().unwrap()));
        assert_eq!(SourcePlan::new(28232).per_address, 25408);
        assert!(plan.check(1_000_000).is_ok());
        assert!(
            SourcePlan { per_address: 1 }
                .check(u64::from(u32::MAX))
                .is_err()
        );
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in ["localhost", "127.0.0.1", "127.3.2.1", "[::1]", "LOCALHOST"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["example.webpubsub.azure.com", "10.0.0.1", "[::2]"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
