//! The `process_*` series Prometheus' client libraries export by convention
//! (CPU, memory, file descriptors, threads, start time), read from Linux's
//! `/proc/self` at scrape time, and `saas_api_build_info{version,commit}`.
//! Elsewhere than Linux the `process_*` series are absent.

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The commit this binary was built from (`SAAS_API_COMMIT` at build time, or
/// `git rev-parse`; `unknown` without either).
pub const COMMIT: &str = env!("SAAS_API_COMMIT");

/// Linux reports CPU times in USER_HZ ticks, 100 per second on every
/// architecture Rust targets there.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    commit: &'static str,
}

/// The process's own series, refreshed on each scrape.
pub struct ProcessMetrics {
    cpu_seconds: Counter<f64, AtomicU64>,
    resident_bytes: Gauge<i64, AtomicI64>,
    virtual_bytes: Gauge<i64, AtomicI64>,
    open_fds: Gauge<i64, AtomicI64>,
    max_fds: Gauge<i64, AtomicI64>,
    threads: Gauge<i64, AtomicI64>,
    start_time_seconds: Gauge<f64, AtomicU64>,
}

impl ProcessMetrics {
    /// Registers the series (and the build info, constant 1) in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                commit: COMMIT,
            })
            .set(1);
        registry.register(
            "saas_api_build_info",
            "The running build: its version and commit (always 1)",
            build,
        );
        let this = Self {
            cpu_seconds: Counter::default(),
            resident_bytes: Gauge::default(),
            virtual_bytes: Gauge::default(),
            open_fds: Gauge::default(),
            max_fds: Gauge::default(),
            threads: Gauge::default(),
            start_time_seconds: Gauge::default(),
        };
        if !cfg!(target_os = "linux") {
            return this;
        }
        registry.register(
            "process_cpu_seconds",
            "Total user and system CPU time spent, in seconds",
            this.cpu_seconds.clone(),
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory size, in bytes",
            this.resident_bytes.clone(),
        );
        registry.register(
            "process_virtual_memory_bytes",
            "Virtual memory size, in bytes",
            this.virtual_bytes.clone(),
        );
        registry.register("process_open_fds", "Open file descriptors", this.open_fds.clone());
        registry.register(
            "process_max_fds",
            "Most file descriptors the process may open",
            this.max_fds.clone(),
        );
        registry.register("process_threads", "Operating-system threads", this.threads.clone());
        registry.register(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds",
            this.start_time_seconds.clone(),
        );
        this
    }

    /// Reads `/proc/self` (quietly does nothing where it cannot).
    pub fn refresh(&self) {
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
            && let Some(fields) = stat_fields(&stat)
        {
            let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
            // Fields after `(comm)`, 0-based from `state` (field 3): utime is 14, stime 15, starttime 22.
            let cpu = (tick(14 - 3) + tick(15 - 3)) / TICKS_PER_SECOND;
            let seen = self.cpu_seconds.get();
            if cpu > seen {
                self.cpu_seconds.inc_by(cpu - seen);
            }
            if let Some(boot) = boot_time() {
                self.start_time_seconds.set(boot + tick(22 - 3) / TICKS_PER_SECOND);
            }
        }
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            let kib = |name: &str| status_value(&status, name).map_or(0, |v| v.saturating_mul(1024));
            self.resident_bytes.set(kib("VmRSS"));
            self.virtual_bytes.set(kib("VmSize"));
            self.threads.set(status_value(&status, "Threads").unwrap_or(0));
        }
        if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(i64::try_from(entries.count()).unwrap_or(i64::MAX));
        }
        if let Ok(limits) = std::fs::read_to_string("/proc/self/limits")
            && let Some(line) = limits.lines().find(|l| l.starts_with("Max open files"))
            && let Some(soft) = line
                .trim_start_matches("Max open files")
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<i64>().ok())
        {
            self.max_fds.set(soft);
        }
    }
}

/// The fields of `/proc/self/stat` after the command name (which may hold
/// spaces and parentheses, so it is skipped up to its last `)`).
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().collect())
}

/// A number from a `Name:  value [kB]` line of `/proc/self/status`.
fn status_value(status: &str, name: &str) -> Option<i64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// When the machine booted (`btime` of `/proc/stat`), seconds since the epoch.
fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_formats_are_read() {
        let fields = stat_fields("1234 (saas api (x)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0 4200 100 5").unwrap();
        assert_eq!(fields[0], "S");
        assert_eq!(fields[14 - 3], "250", "utime");
        assert_eq!(fields[22 - 3], "4200", "starttime");
        let status = "Name:\tsaas-api\nVmSize:\t  123 kB\nVmRSS:\t   45 kB\nThreads:\t7\n";
        assert_eq!(status_value(status, "VmRSS"), Some(45));
        assert_eq!(status_value(status, "Threads"), Some(7));
        assert_eq!(status_value(status, "VmSwap"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_measured() {
        let mut registry = Registry::default();
        let process = ProcessMetrics::register(&mut registry);
        process.refresh();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for series in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_max_fds ",
            "process_start_time_seconds ",
            "process_threads ",
            "saas_api_build_info{version=\"",
        ] {
            assert!(text.contains(series), "{series} missing from:\n{text}");
        }
        assert!(process.resident_bytes.get() > 0 && process.open_fds.get() > 0);
        let started = process.start_time_seconds.get();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            started > now - 86_400.0 * 30.0 && started <= now + 1.0,
            "{started} vs {now}"
        );
    }
}
