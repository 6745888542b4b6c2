//! The hongfan server: the store of incidents, their events and the office's changes; the hub
//! that pushes every durable change to the people who must see it; the HTTP edge, the pages and
//! the command line. `docs/ARCHITECTURE.md` has the map.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod durable;
pub mod http;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod office;
pub mod outbox;
pub mod server;
pub mod standby;
pub mod store;
pub mod web;
pub mod webhooks;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use store::{Store, StoreError, StoreOptions};
