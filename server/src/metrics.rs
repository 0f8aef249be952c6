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
