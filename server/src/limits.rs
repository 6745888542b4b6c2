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
    /// Guesses being checked now, per key: a few at a time, so that many sent at once cannot all
    /// pass before the first wrong one is counted.
    checking: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// Keys whose allowance is spent, and when they may try again.
    blocked: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

impl Guesses {
    pub fn new(burst: u32, per_minute: u32) -> Guesses {
        let wrong = Allowance::new(burst, per_minute);
        Guesses {
            wrong,
            per_minute: per_minute.max(1),
            checking: Default::default(),
            blocked: Default::default(),
        }
    }

    /// A try for `key`, if it may make one now; the try ends (and may be counted wrong) when it
    /// is dropped or `wrong` is called.
    pub fn try_now(&self, key: &str) -> Option<Try<'_>> {
        const AT_ONCE: u32 = 2;
        {
            let Ok(blocked) = self.blocked.lock() else { return None };
            if blocked.get(key).is_some_and(|until| std::time::Instant::now() < *until) {
                return None;
            }
        }
        let Ok(mut checking) = self.checking.lock() else { return None };
        let now = checking.entry(key.to_owned()).or_default();
        if *now >= AT_ONCE {
            return None;
        }
        *now += 1;
        Some(Try { guesses: self, key: key.to_owned() })
    }

    /// Counts a wrong guess; once the allowance is spent, `key` waits a while.
    fn wrong(&self, key: &str) {
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

/// One guess being checked (see `Guesses::try_now`).
#[derive(Debug)]
pub struct Try<'a> {
    guesses: &'a Guesses,
    key: String,
}

impl Try<'_> {
    /// The guess was wrong: it counts.
    pub fn wrong(self) {
        self.guesses.wrong(&self.key);
    }
}

impl Drop for Try<'_> {
    fn drop(&mut self) {
        if let Ok(mut checking) = self.guesses.checking.lock()
            && let Some(n) = checking.get_mut(&self.key)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                checking.remove(&self.key);
            }
        }
    }
}

/// The key a client address is limited by: an IPv4 address, or an IPv6 address's /64 (one
/// household or phone is given a whole /64).
pub fn address_key(address: std::net::IpAddr) -> String {
    match address {
        std::net::IpAddr::V4(v4) => format!("address {v4}"),
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("address {:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}
