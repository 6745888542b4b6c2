//! The login throttle: guessing slowed by failures, hashing bounded apart.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::time::Duration;

use super::AuthError;
use crate::limits::{Allowance, Check, Failures};

/// Most keys the login throttle keeps before it refuses new ones (a flood of made-up names).
const MAX_THROTTLE_KEYS: usize = 100_000;

/// The login throttle. Guessing is slowed by failures alone: per account and address together
/// (so someone guessing one account from one place locks out nobody else, nor the account's owner
/// elsewhere) and per address; a right password never counts, so an office behind one router
/// logs in as often as it needs. At most two tries of one account from one address are checked
/// at once, so parallel guesses cannot slip past the count. The cost of hashing is bounded apart:
/// every try takes one from its address's much larger allowance (and two hashes run at once in
/// all, `HASHES_AT_ONCE`), so a flood of logins cannot burn the CPU either.
#[derive(Debug)]
pub(crate) struct Throttle {
    hashes: Allowance,
    per_address: Failures,
    per_login: Failures,
    pairing: Failures,
}

/// One login or pairing being checked: `failed` counts it against every key it was tried under.
#[derive(Debug)]
pub(crate) struct Attempt<'a>(Vec<Check<'a>>);

impl Attempt<'_> {
    pub(crate) fn failed(self) {
        for check in self.0 {
            check.failed();
        }
    }
}

impl Throttle {
    pub(crate) fn new() -> Throttle {
        Throttle {
            hashes: Allowance::new(LOGIN.hash_burst, LOGIN.hashes_per_minute),
            per_address: Failures::new(LOGIN.address_burst, LOGIN.address_per_minute, u32::MAX),
            per_login: Failures::new(LOGIN.account_burst, LOGIN.account_per_minute, 2),
            pairing: Failures::new(LOGIN.pairing_burst, LOGIN.pairing_per_minute, 2),
        }
    }

    /// Admits one try (`login`'s, or a pairing's when `None`) from `from`, or says how long to
    /// wait: when the address's hashing allowance or a failure allowance is spent.
    pub(crate) fn attempt(
        &self,
        login: Option<&str>,
        from: IpAddr,
    ) -> Result<Attempt<'_>, AuthError> {
        let keys = self.hashes.tracked()
            + self.per_address.tracked()
            + self.per_login.tracked()
            + self.pairing.tracked();
        if keys > MAX_THROTTLE_KEYS {
            self.forget_idle();
        }
        let wait = |d: Duration| AuthError::Throttled(d.as_secs().max(1));
        let address = crate::limits::address_key(from);
        let checks: Vec<(&Failures, String)> = match login {
            Some(login) => {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                login.to_lowercase().hash(&mut hasher);
                let account = format!("{address} account {:x}", hasher.finish());
                vec![(&self.per_address, address.clone()), (&self.per_login, account)]
            }
            None => vec![(&self.pairing, address.clone())],
        };
        if let Some(left) = checks.iter().find_map(|(failures, key)| failures.spent(key)) {
            return Err(wait(left));
        }
        let full = self.hashes.tracked() > MAX_THROTTLE_KEYS;
        if full || !self.hashes.admit(&address) {
            return Err(wait(Duration::from_secs(60) / LOGIN.hashes_per_minute));
        }
        let mut attempt = Attempt(Vec::with_capacity(checks.len()));
        for (failures, key) in checks {
            attempt.0.push(failures.check(key).ok_or_else(|| wait(failures.refill()))?);
        }
        Ok(attempt)
    }

    pub(crate) fn forget_idle(&self) {
        self.hashes.forget_idle();
        self.per_address.forget_idle();
        self.per_login.forget_idle();
        self.pairing.forget_idle();
    }
}

/// The login throttle's allowances (`Throttle`): failures per address and per account at an
/// address, failed pairings per address, and the hashing any address may cause.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub address_burst: u32,
    pub address_per_minute: u32,
    pub account_burst: u32,
    pub account_per_minute: u32,
    pub pairing_burst: u32,
    pub pairing_per_minute: u32,
    pub hash_burst: u32,
    pub hashes_per_minute: u32,
}

/// See `LoginLimits`; docs/operations.md ("Logins") says the same.
pub const LOGIN: LoginLimits = LoginLimits {
    address_burst: 20,
    address_per_minute: 10,
    account_burst: 5,
    account_per_minute: 1,
    pairing_burst: 10,
    pairing_per_minute: 1,
    hash_burst: 100,
    hashes_per_minute: 100,
};

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 7));
    const THERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 8));

    #[test]
    fn only_failures_count_and_only_where_they_were_made() {
        let throttle = Throttle::new();
        // Right passwords, as often as an office at the start of a shift needs.
        for _ in 0..3 * LOGIN.account_burst {
            drop(throttle.attempt(Some("wang"), HERE).expect("a right password never counts"));
        }
        for _ in 0..LOGIN.account_burst {
            throttle.attempt(Some("wang"), HERE).expect("within the burst").failed();
        }
        assert!(matches!(throttle.attempt(Some("Wang"), HERE), Err(AuthError::Throttled(_))));
        // The owner elsewhere, and another account here, are not locked out.
        assert!(throttle.attempt(Some("wang"), THERE).is_ok());
        assert!(throttle.attempt(Some("li"), HERE).is_ok());
    }

    #[test]
    fn failed_pairings_are_counted_apart_from_logins() {
        let throttle = Throttle::new();
        for _ in 0..LOGIN.pairing_burst {
            throttle.attempt(None, HERE).expect("within the burst").failed();
        }
        assert!(matches!(throttle.attempt(None, HERE), Err(AuthError::Throttled(_))));
        assert!(throttle.attempt(Some("wang"), HERE).is_ok());
    }
}
