//! Prometheus metrics, rendered as text at `/metrics`.
//!
//! Atomic counters and fixed-bucket histograms: cheap enough to touch on the sync hot path
//! without a lock.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Bucket upper bounds in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            if secs <= *bound {
                count.fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(d.as_micros() as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                count.load(Relaxed)
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

#[derive(Default)]
pub struct Metrics {
    pub connections: AtomicI64,
    pub documents_loaded: AtomicI64,
    pub changes_accepted: AtomicU64,
    pub changes_refused: AtomicU64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub slow_consumers: AtomicU64,
    pub rate_limited: AtomicU64,
    /// Sync messages generated for fan-out: one per class of peers with equal sync states.
    pub fanout_generated: AtomicU64,
    /// Of the fan-out messages generated, those generated from the document's recent changes
    /// without automerge's walk of the change graph (see `docs::fanout`).
    pub fanout_fast: AtomicU64,
    /// Peers passed by in a fan-out because they had not yet answered the changes they were
    /// sent: their next changes go out together once they do (see `docs::actor`).
    pub fanout_held: AtomicU64,
    /// Peers holding nothing of a document answered from its stored chunks while automerge
    /// was still loading it (see `docs::actor`).
    pub answered_before_load: AtomicU64,
    /// Sync messages without changes received by taking the result of an equal one received
    /// in an equal state (see `docs::fanout`).
    pub receives_shared: AtomicU64,
    /// Acknowledgements received without automerge's walk of the change graph (see
    /// `docs::fanout`).
    pub receives_fast: AtomicU64,
    pub store_batches: AtomicU64,
    pub store_chunks: AtomicU64,
    store_unhealthy: AtomicBool,
    /// From receiving a sync message with changes to handing the last resulting message to the
    /// peers' outbound queues (includes the durable write).
    pub fanout_latency: Histogram,
    pub store_latency: Histogram,
}

impl Metrics {
    pub fn observe_store(&self, d: Duration, chunks: usize) {
        self.store_latency.observe(d);
        self.store_batches.fetch_add(1, Relaxed);
        self.store_chunks.fetch_add(chunks as u64, Relaxed);
    }

    pub fn set_store_healthy(&self, healthy: bool) {
        self.store_unhealthy.store(!healthy, Relaxed);
    }

    pub fn store_healthy(&self) -> bool {
        !self.store_unhealthy.load(Relaxed)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let gauges = [
            (
                "rapporteur_connections",
                "Open sync connections.",
                self.connections.load(Relaxed),
            ),
            (
                "rapporteur_documents_loaded",
                "Documents held in memory.",
                self.documents_loaded.load(Relaxed),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        let counters = [
            (
                "rapporteur_changes_accepted_total",
                "Changes accepted and stored.",
                &self.changes_accepted,
            ),
            (
                "rapporteur_changes_refused_total",
                "Sync messages refused (rights, schema, malformed).",
                &self.changes_refused,
            ),
            (
                "rapporteur_messages_in_total",
                "Protocol messages received.",
                &self.messages_in,
            ),
            (
                "rapporteur_messages_out_total",
                "Protocol messages sent.",
                &self.messages_out,
            ),
            (
                "rapporteur_slow_consumers_total",
                "Connections closed because they could not keep up.",
                &self.slow_consumers,
            ),
            (
                "rapporteur_rate_limited_total",
                "Connections closed for sending too many messages.",
                &self.rate_limited,
            ),
            (
                "rapporteur_fanout_generated_total",
                "Sync messages generated for fan-out (one per group of peers in the same sync state).",
                &self.fanout_generated,
            ),
            (
                "rapporteur_fanout_fast_total",
                "Fan-out messages generated from the document's recent changes, without walking its history.",
                &self.fanout_fast,
            ),
            (
                "rapporteur_fanout_held_total",
                "Peers passed by in a fan-out until they answer the changes they were last sent.",
                &self.fanout_held,
            ),
            (
                "rapporteur_answered_before_load_total",
                "Peers holding nothing of a document sent it from storage while it was still loading.",
                &self.answered_before_load,
            ),
            (
                "rapporteur_receives_shared_total",
                "Acknowledgements received by reusing the result of an equal one from a peer in the same sync state.",
                &self.receives_shared,
            ),
            (
                "rapporteur_receives_fast_total",
                "Sync messages received without walking the change graph: acknowledgements, and writers' messages whose changes are stored.",
                &self.receives_fast,
            ),
            (
                "rapporteur_store_batches_total",
                "Group-commit transactions.",
                &self.store_batches,
            ),
            (
                "rapporteur_store_chunks_total",
                "Chunks written by group commit.",
                &self.store_chunks,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Relaxed)
            );
        }
        // The process's own CPU time and memory, as the benchmark reads them from outside.
        if let Some(cpu) = process_cpu_seconds() {
            let _ = writeln!(
                out,
                "# HELP process_cpu_seconds_total User and system CPU time.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {cpu}"
            );
        }
        for (name, key, help) in [
            ("process_resident_memory_bytes", "VmRSS", "Resident memory."),
            (
                "process_resident_memory_peak_bytes",
                "VmHWM",
                "Peak resident memory.",
            ),
        ] {
            if let Some(kib) = process_status_kib(key) {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}",
                    kib * 1024
                );
            }
        }
        self.fanout_latency.render(
            &mut out,
            "rapporteur_fanout_latency_seconds",
            "From an incoming change to its sync messages queued for every peer.",
        );
        self.store_latency.render(
            &mut out,
            "rapporteur_store_latency_seconds",
            "Duration of one group-commit transaction.",
        );
        out
    }
}

/// utime + stime of this process from `/proc/self/stat`, assuming the usual 100 ticks a second.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 2..)?
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// A `/proc/self/status` field in KiB.
fn process_status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(key).is_some_and(|r| r.starts_with(':')))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
