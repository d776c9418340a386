//! What the process costs: resident memory from `/proc/self/status`, CPU time from
//! `/proc/self/stat`. Linux only; elsewhere the figures are absent, not guessed.

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`), from
/// `sysconf(_SC_CLK_TCK)`: 100 on mainstream Linux builds, but a kernel may say otherwise.
pub fn user_hz() -> f64 {
    // SAFETY: sysconf reads a constant of the running system; no memory is shared.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // -1 means unknown: fall back to the value every mainstream architecture uses.
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// A sample of the process's resource use.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessSample {
    /// Resident set size in KiB.
    pub rss_kib: u64,
    /// The anonymous part of it (`RssAnon`: heap, stacks), KiB: what the process allocated,
    /// without the pages of its binary and libraries it touched (`RssFile`), which running
    /// more code adds once, whatever the number of clients, and the kernel shares.
    pub anon_kib: u64,
    /// User plus system CPU time in seconds.
    pub cpu_s: f64,
    /// Threads.
    pub threads: u64,
}

impl ProcessSample {
    /// The current process, or `None` where `/proc` is missing.
    pub fn now() -> Option<ProcessSample> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let (rss_kib, anon_kib, threads) = parse_status(&status)?;
        Some(ProcessSample {
            rss_kib,
            anon_kib,
            cpu_s: parse_stat_cpu(&stat)?,
            threads,
        })
    }
}

/// `VmRSS` and `RssAnon` (KiB) and `Threads` of a `/proc/<pid>/status` text. A kernel
/// without `RssAnon` (before 4.5) gives `VmRSS` for it.
pub fn parse_status(text: &str) -> Option<(u64, u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    let rss = field("VmRSS:")?;
    Some((
        rss,
        field("RssAnon:").unwrap_or(rss),
        field("Threads:").unwrap_or(0),
    ))
}

/// `utime + stime` in seconds from a `/proc/<pid>/stat` line. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last `)`.
pub fn parse_stat_cpu(text: &str) -> Option<f64> {
    parse_stat_cpu_at(text, user_hz())
}

/// [`parse_stat_cpu`] with `hz` clock ticks per second.
pub fn parse_stat_cpu_at(text: &str, hz: f64) -> Option<f64> {
    let after_comm = &text[text.rfind(')')? + 1..];
    // After the name: state is field 3, utime field 14, stime field 15.
    let mut fields = after_comm.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read() {
        let text = "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t  5120 kB\nRssAnon:\t  3072 kB\nRssFile:\t  2048 kB\nThreads:\t7\n";
        assert_eq!(parse_status(text), Some((5120, 3072, 7)));
        let old_kernel = "VmRSS:\t  5120 kB\nThreads:\t7\n";
        assert_eq!(parse_status(old_kernel), Some((5120, 5120, 7)));
        assert_eq!(parse_status("Name: x\n"), None);
    }

    #[test]
    fn stat_cpu_survives_odd_command_names() {
        let line =
            "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 3 0 100 0 0";
        assert_eq!(parse_stat_cpu_at(line, 100.0), Some(3.0));
        assert_eq!(parse_stat_cpu_at(line, 250.0), Some(1.2));
        assert_eq!(parse_stat_cpu("1234 (x) S 1"), None);
        assert_eq!(parse_stat_cpu("no parenthesis"), None);
    }

    #[test]
    fn clock_ticks_come_from_the_system() {
        let hz = user_hz();
        assert!(hz >= 1.0 && hz.fract() == 0.0, "{hz}");
    }

    #[test]
    fn this_process_can_be_sampled_on_linux() {
        if std::path::Path::new("/proc/self/stat").exists() {
            let sample = ProcessSample::now().expect("readable on Linux");
            assert!(sample.rss_kib > 0 && sample.threads > 0);
            assert!(sample.anon_kib > 0 && sample.anon_kib <= sample.rss_kib);
        }
    }
}
