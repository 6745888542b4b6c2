//! The limits that keep one client from costing the others: sizes and timeouts of a
//! connection, and how many new reports one device may send.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The limits that keep one client from costing the others.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Messages waiting for one connection before it counts as too slow.
    pub queue: usize,
    pub max_frame_bytes: usize,
    pub max_message_bytes: usize,
    pub read_buffer_bytes: usize,
    pub ping_every: Duration,
    /// No frame (not even a pong) for this long closes the connection.
    pub idle_timeout: Duration,
    /// Reports one device may send at once, and per minute after that.
    pub report_burst: u32,
    pub reports_per_minute: u32,
    /// How far back a reconnecting client may resume before it gets a snapshot instead.
    pub resume_window: Duration,
    /// Live WebSockets at once from one client address, of one kiosk, of one person.
    pub sockets_per_address: usize,
    pub sockets_per_kiosk: usize,
    pub sockets_per_person: usize,
    /// Lifecycle actions one account may send in a burst, and per minute after that.
    pub action_burst: u32,
    pub actions_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            queue: 512,
            max_frame_bytes: 16 << 10,
            max_message_bytes: 64 << 10,
            read_buffer_bytes: 1 << 10,
            ping_every: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            report_burst: 10,
            reports_per_minute: 30,
            resume_window: Duration::from_secs(7 * 24 * 3600),
            sockets_per_address: 64,
            sockets_per_kiosk: 2,
            sockets_per_person: 4,
            action_burst: 30,
            actions_per_minute: 60,
        }
    }
}

/// Lifecycle actions (claims, notes, reveals, …) per account: one script cannot flood every
/// board with notes, nor the log with looks at phone numbers.
#[derive(Debug)]
pub struct ActionLimiter(DefaultKeyedRateLimiter<String>);

impl ActionLimiter {
    pub fn new(limits: &Limits) -> ActionLimiter {
        let one = NonZeroU32::MIN;
        let per_minute = NonZeroU32::new(limits.actions_per_minute).unwrap_or(one);
        let burst = NonZeroU32::new(limits.action_burst).unwrap_or(one);
        ActionLimiter(RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)))
    }

    pub fn admit(&self, account: &str) -> bool {
        self.0.check_key(&account.to_owned()).is_ok()
    }

    pub fn forget_idle(&self) {
        self.0.retain_recent();
    }
}

/// New reports per device: a burst, then a steady rate. Only reports that would be stored count:
/// a resend of a stored report (a kiosk whose link dropped) and a refused report take nothing.
#[derive(Debug)]
pub struct ReportLimiter(DefaultKeyedRateLimiter<String>);

impl ReportLimiter {
    pub fn new(limits: &Limits) -> ReportLimiter {
        let one = NonZeroU32::MIN;
        let per_minute = NonZeroU32::new(limits.reports_per_minute).unwrap_or(one);
        let burst = NonZeroU32::new(limits.report_burst).unwrap_or(one);
        ReportLimiter(RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)))
    }

    /// Takes one report from `device`'s allowance, if it has one left.
    pub fn admit(&self, device: &str) -> bool {
        self.0.check_key(&device.to_owned()).is_ok()
    }

    /// Drops devices whose allowance is full again, so the map stays small.
    pub fn forget_idle(&self) {
        self.0.retain_recent();
    }
}
