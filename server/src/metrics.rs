//! What `/metrics` reports, in the Prometheus text format. Counters are bumped where things
//! happen (the committer, the hub, connections); gauges that are a view of current state
//! (connections by role, open incidents by compound) are read at scrape time.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabel {
    pub role: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CompoundLabel {
    pub compound: String,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub reports_received: Counter,
    pub events_appended: Counter,
    pub breaches: Counter,
    pub commit_batch: Histogram,
    pub flush_seconds: Histogram,
    pub resumes: Counter,
    pub snapshots: Counter,
    pub slow_consumers: Counter,
    pub store_write_errors: Counter,
    pub store_failed: Gauge,
    pub webhook_deliveries: Counter,
    pub webhook_failures: Counter,
    pub connections: Family<RoleLabel, Gauge>,
    pub open_incidents: Family<CompoundLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("hongfan");
        let m = Metrics {
            reports_received: Counter::default(),
            events_appended: Counter::default(),
            breaches: Counter::default(),
            commit_batch: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
            flush_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            resumes: Counter::default(),
            snapshots: Counter::default(),
            slow_consumers: Counter::default(),
            store_write_errors: Counter::default(),
            store_failed: Gauge::default(),
            webhook_deliveries: Counter::default(),
            webhook_failures: Counter::default(),
            connections: Family::default(),
            open_incidents: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "reports_received",
            "Report messages received from clients",
            m.reports_received.clone(),
        );
        registry.register(
            "events_appended",
            "Events appended to the log",
            m.events_appended.clone(),
        );
        registry.register(
            "breaches",
            "First-time targets that passed (breach events)",
            m.breaches.clone(),
        );
        registry.register(
            "commit_batch_size",
            "Requests taken into one group commit",
            m.commit_batch.clone(),
        );
        registry.register(
            "flush_seconds",
            "Time to write, flush and fsync one group commit",
            m.flush_seconds.clone(),
        );
        registry.register(
            "resumes",
            "Subscriptions answered with the missed events",
            m.resumes.clone(),
        );
        registry.register(
            "snapshots",
            "Subscriptions answered with a snapshot",
            m.snapshots.clone(),
        );
        registry.register(
            "slow_consumers",
            "Connections closed for not keeping up",
            m.slow_consumers.clone(),
        );
        registry.register(
            "store_write_errors",
            "Group commits the disk refused (the store stops writing after the first)",
            m.store_write_errors.clone(),
        );
        registry.register(
            "store_failed",
            "1 once the store has stopped writing after a failed write; the process then exits",
            m.store_failed.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries taken by their receiver",
            m.webhook_deliveries.clone(),
        );
        registry.register(
            "webhook_failures",
            "Webhook delivery attempts that failed (each is retried)",
            m.webhook_failures.clone(),
        );
        registry.register(
            "connections",
            "Open WebSocket connections by role",
            m.connections.clone(),
        );
        registry.register("open_incidents", "Open incidents by compound", m.open_incidents.clone());
        Metrics { registry, ..m }
    }
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
