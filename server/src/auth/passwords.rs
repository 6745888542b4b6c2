//! Secrets: Argon2id hashes of passwords, kiosk secrets and pairing codes; SHA-256 of session
//! tokens; the rules a login name and a password follow.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};

use super::AuthError;

pub(crate) const MIN_PASSWORD_CHARS: usize = 8;

pub(crate) fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub(crate) fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// A password people can read out and type: 12 characters, no look-alikes.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    (0..12).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect()
}

pub(crate) fn hash_secret(secret: &str) -> Result<String, AuthError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|_| AuthError::BadCredentials)?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| AuthError::BadCredentials)
}

pub(crate) fn verify_secret(secret: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .is_ok_and(|parsed| Argon2::default().verify_password(secret.as_bytes(), &parsed).is_ok())
}

pub(crate) fn check_login(login: &str) -> Result<(), AuthError> {
    let ok = (2..=32).contains(&login.len())
        && !login.starts_with("kiosk-")
        && login
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok { Ok(()) } else { Err(AuthError::BadLogin) }
}

pub(crate) fn check_password(password: &str) -> Result<(), AuthError> {
    if password.chars().count() >= MIN_PASSWORD_CHARS {
        Ok(())
    } else {
        Err(AuthError::WeakPassword)
    }
}

/// A hash of a password nobody knows, verified against when a login does not exist.
pub(crate) static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_secret(&random_token()).unwrap_or_default());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_kept_only_as_a_hash_that_verifies_it() {
        let hash = hash_secret("correct horse").unwrap();
        assert!(!hash.contains("correct horse"));
        assert!(verify_secret("correct horse", &hash));
        assert!(!verify_secret("correct hors", &hash));
        assert!(!verify_secret("correct horse", "not a hash"));
    }

    #[test]
    fn logins_and_passwords_follow_their_rules() {
        for good in ["wang", "li.na", "zhang_3", "a-b"] {
            assert!(check_login(good).is_ok(), "{good}");
        }
        for bad in ["w", "Wang", "王", "kiosk-1", "a b", &"x".repeat(33)] {
            assert!(matches!(check_login(bad), Err(AuthError::BadLogin)), "{bad}");
        }
        assert!(check_password("八个汉字的密码吧").is_ok(), "characters, not bytes");
        assert!(matches!(check_password("1234567"), Err(AuthError::WeakPassword)));
        let password = random_password();
        assert_eq!(password.len(), 12);
        assert!(!password.contains(['l', '1', 'o', '0', 'i']), "{password}");
    }
}
