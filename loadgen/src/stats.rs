//! What the load generator measures: edit-to-viewer latency on one clock (the generator's
//! own), counters, and the server process's CPU time and memory read from `/proc`.
//!
//! Latencies go into fixed 50 µs buckets shared by every task (atomics, no lock): a run of
//! five minutes at the meeting's load yields tens of millions of samples, too many to keep.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

const BUCKET_MICROS: u64 = 50;
/// Ten seconds; anything slower lands in the last bucket (and in `max`).
const BUCKETS: usize = 200_000;

pub struct Latency {
    buckets: Vec<AtomicU64>,
    max_micros: AtomicU64,
    count: AtomicU64,
}

impl Default for Latency {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl Latency {
    pub fn record(&self, d: Duration) {
        let micros = d.as_micros() as u64;
        let i = ((micros / BUCKET_MICROS) as usize).min(BUCKETS - 1);
        self.buckets[i].fetch_add(1, Relaxed);
        self.max_micros.fetch_max(micros, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// The upper edge of the bucket holding quantile `q`, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let total = self.count();
        if total == 0 {
            return 0.0;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Relaxed);
            if seen >= rank {
                return ((i as u64 + 1) * BUCKET_MICROS) as f64 / 1000.0;
            }
        }
        self.max_ms()
    }

    pub fn max_ms(&self) -> f64 {
        self.max_micros.load(Relaxed) as f64 / 1000.0
    }
}

/// Counters shared by every client task.
#[derive(Default)]
pub struct Counters {
    pub edits_sent: AtomicU64,
    pub edits_accepted: AtomicU64,
    pub frames_to_viewers: AtomicU64,
    pub changes_to_viewers: AtomicU64,
    pub frames_to_writers: AtomicU64,
    /// Sync messages writers sent while typing (edits and answers).
    pub frames_from_writers: AtomicU64,
    pub acks_sent: AtomicU64,
    pub errors: AtomicU64,
    pub viewers_ready: AtomicU64,
    pub viewers_failed: AtomicU64,
    pub writers_failed: AtomicU64,
    /// Writers whose every edit the server acknowledged after typing stopped.
    pub writers_done: AtomicU64,
}

/// CPU time (user + system) of a process, in seconds, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields we want follow its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// A `/proc/<pid>/status` field in KiB (`VmHWM` is the peak resident set, `VmRSS` the current).
pub fn status_kib(pid: &str, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
