//! The hongfan server: the store of incidents and their events, and (in later modules) the hub
//! that pushes every durable change to the people who must see it.

pub mod clock;
pub mod config;
pub mod store;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use store::{Store, StoreError, StoreOptions};
