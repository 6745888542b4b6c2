//! The limits that keep one client from costing the others: sizes and timeouts of a
//! connection, and how often one device or account may report, act or guess.

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
    /// Wrong proofs of a ticket (the slip's code, the phone's last four digits) one kiosk, or on
    /// the status page one address, may give in a burst, and per minute after that: a ticket
    /// number is sequential, so its proof must not be guessed at speed.
    pub lookup_burst: u32,
    pub lookups_per_minute: u32,
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
            lookup_burst: 10,
            lookups_per_minute: 5,
        }
    }
}

/// How often one key (an account, a device, an address) may do one thing: a burst, then a steady
/// rate per minute. Used for new reports per device (only reports that would be stored count: a
/// resend after a dropped link and a refused report take nothing), lifecycle actions per account
/// (one script cannot flood every board with notes), and lookups of a ticket per kiosk or address (a ticket number is sequential; its slip code and phone digits are not).
#[derive(Debug)]
pub struct Allowance(DefaultKeyedRateLimiter<String>);

impl Allowance {
    pub fn new(burst: u32, per_minute: u32) -> Allowance {
        let one = NonZeroU32::MIN;
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(one);
        let burst = NonZeroU32::new(burst).unwrap_or(one);
        Allowance(RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)))
    }

    /// Takes one from `key`'s allowance, if it has one left.
    pub fn admit(&self, key: &str) -> bool {
        self.0.check_key(&key.to_owned()).is_ok()
    }

    /// Drops keys whose allowance is full again, so the map stays small.
    pub fn forget_idle(&self) {
        self.0.retain_recent();
    }
}

/// Wrong guesses at a ticket's proof (the slip's code, the phone's last four digits), per kiosk
/// or per client address. Only a wrong guess counts, so a resident's status page may ask as often
/// as it likes; once the allowance is spent, every try is refused — right or wrong — until it
/// refills, so guessing is slowed whatever the guesses.
#[derive(Debug)]
pub struct Guesses {
    wrong: Allowance,
    per_minute: u32,
    /// Keys whose allowance is spent, and when they may try again.
    blocked: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

impl Guesses {
    pub fn new(burst: u32, per_minute: u32) -> Guesses {
        let wrong = Allowance::new(burst, per_minute);
        Guesses { wrong, per_minute: per_minute.max(1), blocked: Default::default() }
    }

    /// Whether `key` may try now.
    pub fn may_try(&self, key: &str) -> bool {
        let Ok(blocked) = self.blocked.lock() else { return false };
        blocked.get(key).is_none_or(|until| std::time::Instant::now() >= *until)
    }

    /// Counts a wrong guess; once the allowance is spent, `key` waits a while.
    pub fn wrong(&self, key: &str) {
        if !self.wrong.admit(key)
            && let Ok(mut blocked) = self.blocked.lock()
        {
            let wait =
                Duration::from_secs(60 / u64::from(self.per_minute)).max(Duration::from_secs(1));
            blocked.insert(key.to_owned(), std::time::Instant::now() + wait);
        }
    }

    /// Drops what no longer matters, so the maps stay small.
    pub fn forget_idle(&self) {
        self.wrong.forget_idle();
        if let Ok(mut blocked) = self.blocked.lock() {
            let now = std::time::Instant::now();
            blocked.retain(|_, until| *until > now);
        }
    }
}
