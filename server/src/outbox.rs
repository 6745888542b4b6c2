//! The outbox's sender: each webhook delivery the committer wrote (`webhooks`) is sent on its own
//! task with a deadline, retried with backoff, and removed from the outbox once its receiver took
//! it (at least once). What supervisors see of each hook is kept here.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hongfan_shared::{CommunityId, CompoundId};
use serde::Serialize;

use crate::store::{Aux, Store};
use crate::webhooks::{Delivery, Format, Kind, Webhook, Webhooks, request, taken};

/// What supervisors see of one hook (never its URL's secret parts or its secret).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct HookState {
    pub name: String,
    pub format: String,
    /// The receiver's host.
    pub host: String,
    #[schema(value_type = String)]
    pub community: CommunityId,
    #[schema(value_type = Vec<String>)]
    pub compounds: Vec<CompoundId>,
    #[schema(value_type = Vec<String>)]
    pub kinds: Vec<Kind>,
    /// Deliveries waiting (including those being retried).
    pub pending: u64,
    pub delivered: u64,
    pub failures: u64,
    pub last_delivered_at: Option<i64>,
    pub last_error: Option<String>,
}

/// A hook's state before any delivery.
fn state_of(h: &Webhook) -> HookState {
    let host = reqwest::Url::parse(&h.url).ok().and_then(|u| u.host_str().map(str::to_owned));
    HookState {
        name: h.name.clone(),
        format: serde_json::to_value(h.format)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        host: host.unwrap_or_default(),
        community: h.community.clone(),
        compounds: h.compounds.clone(),
        kinds: h.kinds.clone(),
        ..HookState::default()
    }
}

/// Sends what the outbox holds.
#[derive(Debug, Clone)]
pub struct Deliverer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    hooks: Arc<Webhooks>,
    client: reqwest::Client,
    state: Mutex<BTreeMap<String, HookState>>,
    /// Deliveries being sent or waiting for a retry, by id: a delivery is sent by one task.
    in_flight: Mutex<HashMap<String, ()>>,
}

/// How long a receiver may take to answer.
const DEADLINE: Duration = Duration::from_secs(10);
/// The longest wait between two tries of one delivery.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

impl Deliverer {
    /// Starts sending: what the outbox held at start, then each group's new deliveries.
    pub fn start(
        store: Store,
        hooks: Arc<Webhooks>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Deliverer {
        let state = hooks.hooks().iter().map(|h| (h.name.clone(), state_of(h))).collect();
        let client = reqwest::Client::builder().timeout(DEADLINE).build().unwrap_or_default();
        let deliverer = Deliverer {
            inner: Arc::new(Inner {
                store,
                hooks,
                client,
                state: Mutex::new(state),
                in_flight: Mutex::default(),
            }),
        };
        let running = deliverer.clone();
        tokio::spawn(async move { running.run(shutdown).await });
        deliverer
    }

    /// Every hook with its delivery state.
    pub fn states(&self) -> Vec<HookState> {
        self.inner.state.lock().map(|s| s.values().cloned().collect()).unwrap_or_default()
    }

    async fn run(self, shutdown: tokio_util::sync::CancellationToken) {
        // A standby delivers nothing: the primary does, and the outbox comes with the log.
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = self.inner.store.until_primary() => {}
        }
        let mut commits = self.inner.store.subscribe();
        self.resend_outbox().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                commit = commits.recv() => match commit {
                    Ok(commit) => {
                        for delivery in &commit.deliveries {
                            self.send(delivery.clone());
                        }
                    }
                    // Fell behind: the outbox has everything.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => self.resend_outbox().await,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }

    /// Sends every delivery in the outbox that is not already on its way.
    async fn resend_outbox(&self) {
        let store = self.inner.store.clone();
        let entries = tokio::task::spawn_blocking(move || store.scan_entries(Aux::Outbox)).await;
        let Ok(Ok(entries)) = entries else {
            tracing::warn!("cannot read the webhook outbox");
            return;
        };
        for (_, value) in entries {
            match serde_json::from_slice::<Delivery>(&value) {
                Ok(delivery) => self.send(delivery),
                Err(e) => tracing::warn!(error = %e, "an outbox entry does not decode"),
            }
        }
    }

    fn update(&self, hook: &str, change: impl FnOnce(&mut HookState)) {
        if let Ok(mut states) = self.inner.state.lock()
            && let Some(state) = states.get_mut(hook)
        {
            change(state);
        }
    }

    /// The hook a delivery is for: a configured one, or the webhook of the platform whose
    /// work order it is (its API key, in the office), signed with the key's secret.
    fn hook(&self, delivery: &Delivery) -> Option<Webhook> {
        if delivery.kind != Kind::Order {
            return self.inner.hooks.hooks().iter().find(|h| h.name == delivery.hook).cloned();
        }
        let office = self.inner.store.office();
        let key = office.office.api_keys.get(&delivery.hook)?;
        let upstream = key.upstream.as_ref()?;
        let hook = Webhook {
            name: key.id.clone(),
            url: upstream.webhook.clone(),
            format: Format::Signed,
            secret: Some(upstream.secret.clone()),
            community: key.community.clone(),
            compounds: Vec::new(),
            kinds: vec![Kind::Order],
        };
        if let Ok(mut states) = self.inner.state.lock() {
            states.entry(hook.name.clone()).or_insert_with(|| state_of(&hook));
        }
        Some(hook)
    }

    /// Sends one delivery on a task of its own until the receiver takes it.
    fn send(&self, delivery: Delivery) {
        let Some(hook) = self.hook(&delivery) else {
            // A hook removed from the configuration: its deliveries wait in the outbox.
            return;
        };
        {
            let Ok(mut in_flight) = self.inner.in_flight.lock() else { return };
            if in_flight.insert(delivery.id.clone(), ()).is_some() {
                return;
            }
        }
        self.update(&hook.name, |s| s.pending += 1);
        let this = self.clone();
        tokio::spawn(async move {
            let metrics = this.inner.store.metrics().clone();
            let mut backoff = Duration::from_secs(1);
            loop {
                let (url, headers, body) = request(&hook, &delivery, this.inner.store.now());
                let mut post = this
                    .inner
                    .client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body);
                for (name, value) in headers {
                    post = post.header(name, value);
                }
                let outcome = match post.send().await {
                    Ok(answer) if answer.status().is_success() => taken(hook.format, answer).await,
                    Ok(answer) => Err(format!("answered {}", answer.status())),
                    // Never the URL: it carries the robot's key.
                    Err(e) => Err(if e.is_timeout() {
                        "no answer in time".into()
                    } else {
                        e.without_url().to_string()
                    }),
                };
                match outcome {
                    Ok(()) => {
                        // Taken: out of the outbox, durably (a crash before this sends it again).
                        if let Err(e) =
                            this.inner.store.put(Aux::Outbox, delivery.id.as_bytes(), None).await
                        {
                            tracing::warn!(error = %e, "cannot remove a delivered webhook from the outbox");
                        }
                        metrics.webhook_deliveries.inc();
                        let at = this.inner.store.now().0;
                        this.update(&hook.name, |s| {
                            s.pending = s.pending.saturating_sub(1);
                            s.delivered += 1;
                            s.last_delivered_at = Some(at);
                        });
                        break;
                    }
                    Err(why) => {
                        metrics.webhook_failures.inc();
                        tracing::warn!(hook = %hook.name, delivery = %delivery.id, %why, "webhook delivery failed; will retry");
                        this.update(&hook.name, |s| {
                            s.failures += 1;
                            s.last_error = Some(why.clone());
                        });
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
            if let Ok(mut in_flight) = this.inner.in_flight.lock() {
                in_flight.remove(&delivery.id);
            }
        });
    }
}
