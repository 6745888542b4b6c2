//! The hub: who is connected, who is on duty, and the fan-out of every durable change.
//!
//! One task reads the store's commits in order and puts each event into the bounded queue of
//! every connection that may see it. A connection whose queue is full is not waited for: it is
//! closed with `SLOW_CONSUMER`, and resumes from its last sequence number when it reconnects, so
//! a slow client neither slows the others nor silently misses anything.

mod connection;
mod duty;
mod fanout;
mod registry;
pub mod roster;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use hongfan_shared::Role;
use hongfan_shared::protocol::{ErrorBody, ErrorCode, ServerMessage};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::SessionKey;
pub use crate::limits::Limits;
use crate::limits::{Allowance, Proofs};
use crate::store::{DutySwitch, Store, StoreError};
pub use connection::serve;
use registry::Clients;
pub use registry::{Admitted, Outgoing, Queue};

#[derive(Debug)]
struct Inner {
    store: Store,
    limits: Limits,
    reports: Allowance,
    actions: Allowance,
    lookups: Proofs,
    clients: Mutex<Clients>,
    next_conn: AtomicU64,
    /// Cancelled at shutdown: every connection closes with 1001.
    shutdown: CancellationToken,
    /// Every connection task, so shutdown can wait for them.
    tasks: TaskTracker,
    /// The duty switches as last kept in the store (`None` until read, once this server
    /// writes); its lock orders the writes.
    duty_kept: tokio::sync::Mutex<Option<BTreeMap<String, DutySwitch>>>,
}

/// A cheap-to-clone handle to the hub.
#[derive(Debug, Clone)]
pub struct Hub(Arc<Inner>);

/// Encodes a server message once, to be shared by every connection that gets it.
pub fn encode(message: &ServerMessage) -> Utf8Bytes {
    // Serialising plain data into a String cannot fail.
    Utf8Bytes::from(serde_json::to_string(message).unwrap_or_default())
}

/// The one place a store refusal becomes a wire error.
pub fn wire_error(e: &StoreError) -> ErrorBody {
    let (code, holder) = match e {
        StoreError::Lifecycle(l) => (l.code(), l.holder().cloned()),
        StoreError::NotFound(_) => (ErrorCode::NotFound, None),
        StoreError::RequestReused { .. } => (ErrorCode::RequestReused, None),
        StoreError::BadRequestId => (ErrorCode::BadRequestId, None),
        StoreError::RateLimited => (ErrorCode::RateLimited, None),
        StoreError::Refused(_) => (ErrorCode::Forbidden, None),
        StoreError::Open { .. }
        | StoreError::Corrupt { .. }
        | StoreError::Read(_)
        | StoreError::Write(_)
        | StoreError::LostLease
        | StoreError::Poisoned
        | StoreError::Closed => (ErrorCode::Unavailable, None),
        StoreError::Standby => (ErrorCode::Standby, None),
    };
    let message = match code {
        // Internal details stay in the server's log.
        ErrorCode::Unavailable => "the server cannot store this right now; try again".to_owned(),
        _ => e.to_string(),
    };
    ErrorBody {
        id: None,
        request_id: None,
        code,
        message,
        message_zh: code.message_zh().into(),
        holder,
    }
}

pub fn error(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
    ErrorBody {
        id: None,
        request_id: None,
        code,
        message: message.into(),
        message_zh: code.message_zh().into(),
        holder: None,
    }
}

impl Hub {
    /// Makes the hub and starts its fan-out task; `ended` tells of sessions that ended early,
    /// whose sockets it closes.
    pub fn start(
        store: Store,
        limits: Limits,
        shutdown: CancellationToken,
        ended: broadcast::Receiver<Vec<SessionKey>>,
    ) -> Hub {
        let commits = store.subscribe();
        let hub = Hub(Arc::new(Inner {
            store,
            reports: Allowance::new(limits.report_burst, limits.reports_per_minute),
            actions: Allowance::new(limits.action_burst, limits.actions_per_minute),
            lookups: Proofs::new(limits.lookup_burst, limits.lookups_per_minute),
            limits,
            clients: Mutex::new(Clients::default()),
            next_conn: AtomicU64::new(1),
            shutdown,
            tasks: TaskTracker::new(),
            duty_kept: tokio::sync::Mutex::default(),
        }));
        let last = hub.0.store.last_seq().unwrap_or(0);
        hub.0.tasks.spawn(hub.clone().fan_out(commits, ended, last));
        // The switches kept are in force once this server writes: at once, or at a takeover.
        let duty = hub.clone();
        hub.0.tasks.spawn(async move {
            tokio::select! {
                () = duty.0.store.until_primary() => {}
                () = duty.0.shutdown.cancelled() => return,
            }
            if let Err(e) = duty.keep_duty().await {
                tracing::error!(error = %e, "cannot read the duty switches kept");
            }
        });
        hub
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn limits(&self) -> &Limits {
        &self.0.limits
    }

    /// How many new reports each device may still send.
    pub fn report_limiter(&self) -> &Allowance {
        &self.0.reports
    }

    /// How many lifecycle actions each account may still send.
    pub fn action_limiter(&self) -> &Allowance {
        &self.0.actions
    }

    /// Wrong proofs of a ticket, per ticket and per kiosk (or, on the status page, per address).
    pub fn proofs(&self) -> &Proofs {
        &self.0.lookups
    }

    pub fn tasks(&self) -> &TaskTracker {
        &self.0.tasks
    }

    /// `/metrics`: the counters, with the gauges read now.
    pub fn render_metrics(&self) -> String {
        let metrics = self.0.store.metrics();
        let mut by_role: HashMap<Role, i64> = HashMap::new();
        for conn in self.clients().conns.values() {
            *by_role.entry(conn.role()).or_default() += 1;
        }
        for role in [Role::Supervisor, Role::Worker, Role::BuildingHead, Role::Kiosk] {
            let label = crate::metrics::RoleLabel { role: format!("{role:?}").to_lowercase() };
            metrics.connections.get_or_create(&label).set(by_role.get(&role).copied().unwrap_or(0));
        }
        for (compound, open) in self.0.store.open_by_compound().unwrap_or_default() {
            let label = crate::metrics::CompoundLabel { compound };
            metrics
                .open_incidents
                .get_or_create(&label)
                .set(i64::try_from(open).unwrap_or(i64::MAX));
        }
        metrics.render()
    }
}
