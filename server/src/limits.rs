//! The limits that keep one client from costing the others: sizes and timeouts of a
//! connection, and how often one device or account may report, act or guess.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

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

    /// Keys tracked now.
    pub fn tracked(&self) -> usize {
        self.0.len()
    }

    /// Drops keys whose allowance is full again, so the map stays small.
    pub fn forget_idle(&self) {
        self.0.retain_recent();
    }
}

/// Failed tries at a secret (a password, a pairing code, a ticket's proof), counted per key (an
/// address, an account at an address, a kiosk, a ticket). Only failures count, so whoever knows
/// the secret may try as often as they like. After `burst` failures a key is `spent`: it waits
/// `refill`, then has one more try, and so on, until it has failed no more for as long as the
/// whole allowance takes to come back. What a spent key means is the caller's rule: a login is
/// refused before its password is checked, a weak proof of a ticket too, while the slip's code
/// is still checked and a wrong one answered only after a wait.
#[derive(Debug)]
pub struct Failures {
    /// One less than the burst: the failure it refuses is the one that spends the key.
    allowance: Allowance,
    /// How long a spent key waits for its next try.
    refill: Duration,
    /// How long after its last wait a key stays on one try per `refill`: the whole allowance's
    /// time to come back.
    recovery: Duration,
    /// Tries one key may have being checked at once: so many sent together cannot all pass
    /// before the first failure is counted.
    at_once: u32,
    checking: Mutex<HashMap<String, u32>>,
    spent: Mutex<HashMap<String, Spent>>,
}

#[derive(Debug, Clone, Copy)]
struct Spent {
    until: Instant,
    /// Until then, every failure spends the key again.
    recovering: Instant,
}

impl Failures {
    /// `burst` failures, then one per `60 s / per_minute`; at most `at_once` tries of one key
    /// checked at once.
    pub fn new(burst: u32, per_minute: u32, at_once: u32) -> Failures {
        let refill = (Duration::from_secs(60) / per_minute.max(1)).max(Duration::from_millis(1));
        Failures {
            allowance: Allowance::new(burst.saturating_sub(1), per_minute),
            refill,
            recovery: refill * burst.max(1),
            at_once: at_once.max(1),
            checking: Mutex::default(),
            spent: Mutex::default(),
        }
    }

    /// How long `key` must still wait, if it is spent.
    pub fn spent(&self, key: &str) -> Option<Duration> {
        let spent = self.spent.lock().unwrap_or_else(PoisonError::into_inner);
        spent.get(key).and_then(|s| s.until.checked_duration_since(Instant::now()))
    }

    /// How long a spent key waits for its next try.
    pub fn refill(&self) -> Duration {
        self.refill
    }

    /// A try for `key`, unless it has `at_once` tries being checked already. The try ends when
    /// it is dropped; `failed` counts it first.
    pub fn check(&self, key: String) -> Option<Check<'_>> {
        let mut checking = self.checking.lock().unwrap_or_else(PoisonError::into_inner);
        let now = checking.entry(key.clone()).or_default();
        if *now >= self.at_once {
            return None;
        }
        *now += 1;
        Some(Check { failures: Some(self), key })
    }

    /// Counts a failure of `key`; answers whether the key is now spent.
    pub fn fail(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut spent = self.spent.lock().unwrap_or_else(PoisonError::into_inner);
        let recovering = spent.get(key).is_some_and(|s| s.recovering > now);
        if self.allowance.admit(key) && !recovering {
            return false;
        }
        let until = now + self.refill;
        spent.insert(key.to_owned(), Spent { until, recovering: until + self.recovery });
        true
    }

    /// Keys tracked now (the throttles refuse new keys beyond a bound).
    pub fn tracked(&self) -> usize {
        self.allowance.tracked()
    }

    /// Drops what no longer matters, so the maps stay small.
    pub fn forget_idle(&self) {
        self.allowance.forget_idle();
        let now = Instant::now();
        let mut spent = self.spent.lock().unwrap_or_else(PoisonError::into_inner);
        spent.retain(|_, s| s.recovering > now);
    }
}

/// One try being checked (see `Failures::check`).
#[derive(Debug)]
pub struct Check<'a> {
    /// Whose tries being checked this one is counted among (none: a try nothing is refused for).
    failures: Option<&'a Failures>,
    key: String,
}

impl Check<'_> {
    /// The try failed: it counts. Answers whether the key is now spent.
    pub fn failed(self) -> bool {
        self.failures.is_some_and(|f| f.fail(&self.key))
    }
}

impl Drop for Check<'_> {
    fn drop(&mut self) {
        let Some(failures) = self.failures else { return };
        let mut checking = failures.checking.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = checking.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                checking.remove(&self.key);
            }
        }
    }
}

/// Wrong proofs of a ticket (the slip's code, the phone's last four digits), counted per
/// ticket and per whoever gives them (a kiosk, or a client address on the status page):
/// guessing one ticket from many places is slowed as much as guessing many tickets from one.
#[derive(Debug)]
pub struct Proofs {
    failures: Failures,
}

/// Who gives a ticket's proof, and which ticket, as `Proofs` counts them.
#[derive(Debug, Clone)]
pub struct ProofKeys {
    pub who: String,
    pub ticket: String,
}

impl Proofs {
    pub fn new(burst: u32, per_minute: u32) -> Proofs {
        Proofs { failures: Failures::new(burst, per_minute, 1) }
    }

    /// A try at a kiosk: one device in the station, where the phone's last four digits can be
    /// tried. While either key is spent every try is refused (`None`), right or wrong, and one
    /// try of a key is checked at a time.
    pub fn at_kiosk(&self, keys: &ProofKeys) -> Option<ProofCheck<'_>> {
        if [&keys.who, &keys.ticket].iter().any(|k| self.failures.spent(k).is_some()) {
            return None;
        }
        let checks =
            [self.failures.check(keys.who.clone())?, self.failures.check(keys.ticket.clone())?];
        Some(ProofCheck { checks, failures: &self.failures })
    }

    /// A try on the resident's status page, with the slip's code (10^10 values): never refused,
    /// so neighbours behind one address are never locked out of their own tickets; a wrong code
    /// from a spent address or for a spent ticket is answered after a wait (`ProofCheck::wrong`).
    pub fn on_status_page(&self, keys: &ProofKeys) -> ProofCheck<'_> {
        let checks =
            [keys.who.clone(), keys.ticket.clone()].map(|key| Check { failures: None, key });
        ProofCheck { checks, failures: &self.failures }
    }

    pub fn forget_idle(&self) {
        self.failures.forget_idle();
    }
}

/// A proof being checked (see `Proofs::at_kiosk`, `Proofs::on_status_page`).
#[derive(Debug)]
pub struct ProofCheck<'a> {
    checks: [Check<'a>; 2],
    failures: &'a Failures,
}

impl ProofCheck<'_> {
    /// The proof was wrong: it counts for both keys. Answers how long its answer is to wait:
    /// `refill` when either key was spent already, else nothing.
    pub fn wrong(self) -> Duration {
        let [who, ticket] = &self.checks;
        let spent = [who, ticket].iter().any(|c| self.failures.spent(&c.key).is_some());
        for check in [who, ticket] {
            self.failures.fail(&check.key);
        }
        if spent { self.failures.refill() } else { Duration::ZERO }
    }
}

/// The key a ticket's wrong proofs are counted under: the incident's, or for a number that names
/// none, what was given (its first characters: each still counts).
pub fn ticket_key(
    incident: Option<hongfan_shared::IncidentId>,
    community: &hongfan_shared::CommunityId,
    given: &str,
) -> String {
    match incident {
        Some(id) => format!("incident {}", id.0),
        None => format!("ticket {community}/{}", given.chars().take(12).collect::<String>()),
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

/// The cap on connections: `max` in all, `per_address` from one address, and the last
/// `reserve` of them only for addresses that hold none yet. So however many connections one
/// address opens (slow bodies, half-open sockets), a newcomer still gets in.
#[derive(Debug, Clone)]
pub struct Slots(Arc<SlotsInner>);

#[derive(Debug)]
struct SlotsInner {
    max: usize,
    per_address: usize,
    reserve: usize,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    all: usize,
    by_address: HashMap<String, usize>,
}

/// Why a connection is not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRefused {
    /// Every slot is taken.
    Full,
    /// This address holds its share.
    Address,
}

impl Slots {
    /// `max` slots, at most `per_address` from one address; an eighth of them kept for
    /// addresses that hold none.
    pub fn new(max: usize, per_address: usize) -> Slots {
        Slots(Arc::new(SlotsInner {
            max,
            per_address: per_address.max(1),
            reserve: max / 8,
            held: Mutex::default(),
        }))
    }

    /// A slot for a connection from `address` (`None`: one not capped per address, the trusted
    /// proxy's), held until the answer is dropped.
    pub fn take(&self, address: Option<std::net::IpAddr>) -> Result<Slot, SlotRefused> {
        let inner = &self.0;
        let key = address.map(address_key);
        let mut held = inner.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.all >= inner.max {
            return Err(SlotRefused::Full);
        }
        if let Some(key) = &key {
            let mine = held.by_address.get(key).copied().unwrap_or(0);
            if mine >= inner.per_address || (mine > 0 && inner.max - held.all <= inner.reserve) {
                return Err(SlotRefused::Address);
            }
            *held.by_address.entry(key.clone()).or_default() += 1;
        }
        held.all += 1;
        Ok(Slot { slots: self.clone(), key })
    }
}

/// One connection's place under `Slots`; free again when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Slots,
    key: Option<String>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.0.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.all = held.all.saturating_sub(1);
        if let Some(key) = &self.key
            && let Some(n) = held.by_address.get_mut(key)
        {
            *n -= 1;
            if *n == 0 {
                held.by_address.remove(key);
            }
        }
    }
}

/// A connection's slot, held by the TCP connection's task and, once it is upgraded, by the
/// WebSocket's: the slot is free only when both are gone.
pub type ConnectionSlot = Arc<Slot>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_count_and_the_burst_spends_a_key() {
        let failures = Failures::new(5, 1, 1);
        for n in 1..=5 {
            assert_eq!(failures.spent("a"), None, "before failure {n}");
            let check = failures.check("a".into()).expect("a try");
            assert_eq!(check.failed(), n == 5, "failure {n}");
        }
        assert!(failures.spent("a").is_some(), "spent after five");
        assert_eq!(failures.spent("b"), None, "another key is not");
        // Tries that succeed (dropped unfailed) never count.
        for _ in 0..100 {
            drop(failures.check("b".into()).expect("a try"));
        }
        assert_eq!(failures.spent("b"), None);
    }

    #[test]
    fn tries_of_one_key_are_checked_one_at_a_time() {
        let failures = Failures::new(5, 1, 1);
        let first = failures.check("a".into()).expect("a try");
        assert!(failures.check("a".into()).is_none(), "a second while the first is checked");
        assert!(failures.check("b".into()).is_some(), "another key's");
        drop(first);
        assert!(failures.check("a".into()).is_some(), "once the first is done");
    }

    #[test]
    fn a_kiosk_is_refused_once_it_or_the_ticket_is_spent() {
        let proofs = Proofs::new(3, 1);
        let keys = |who: &str, ticket: &str| ProofKeys { who: who.into(), ticket: ticket.into() };
        for _ in 0..3 {
            assert_eq!(
                proofs.at_kiosk(&keys("kiosk-1", "t1")).expect("a try").wrong(),
                Duration::ZERO
            );
        }
        assert!(proofs.at_kiosk(&keys("kiosk-1", "t2")).is_none(), "the kiosk is spent");
        assert!(proofs.at_kiosk(&keys("kiosk-2", "t1")).is_none(), "so is the ticket");
        assert!(proofs.at_kiosk(&keys("kiosk-2", "t2")).is_some(), "neither is");
    }

    #[test]
    fn the_status_page_is_never_refused_and_a_spent_address_waits_for_wrong_answers() {
        let proofs = Proofs::new(3, 1);
        let keys = |who: &str, ticket: &str| ProofKeys { who: who.into(), ticket: ticket.into() };
        for _ in 0..3 {
            assert_eq!(proofs.on_status_page(&keys("address a", "t1")).wrong(), Duration::ZERO);
        }
        // Spent: a wrong answer waits a minute (the refill of one a minute), whichever key.
        let minute = Duration::from_secs(60);
        assert_eq!(proofs.on_status_page(&keys("address a", "t9")).wrong(), minute);
        assert_eq!(proofs.on_status_page(&keys("address b", "t1")).wrong(), minute);
        assert_eq!(proofs.on_status_page(&keys("address b", "t2")).wrong(), Duration::ZERO);
    }

    #[test]
    fn one_address_takes_no_more_than_its_share_and_leaves_the_reserve_to_others() {
        let slots = Slots::new(16, 10);
        let (a, b, c): (std::net::IpAddr, std::net::IpAddr, std::net::IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(), "10.0.0.3".parse().unwrap());
        let mut held = Vec::new();
        while let Ok(slot) = slots.take(Some(a)) {
            held.push(slot);
        }
        assert_eq!(held.len(), 10, "the share of one address");
        while let Ok(slot) = slots.take(Some(b)) {
            held.push(slot);
        }
        // 16 slots, 2 kept for addresses that hold none: b stops at 14 in all.
        assert_eq!(held.len(), 14);
        assert_eq!(slots.take(Some(b)).err(), Some(SlotRefused::Address));
        held.push(slots.take(Some(c)).expect("a newcomer takes a reserved slot"));
        held.push(slots.take(None).expect("the proxy is not capped per address"));
        assert_eq!(slots.take(None).err(), Some(SlotRefused::Full));
        held.clear();
        assert!(slots.take(Some(a)).is_ok(), "free again once dropped");
    }
}
