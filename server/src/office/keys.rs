//! 接口密钥: the API keys other systems report with through Open311 (the street office's, the
//! city's 12345 platform, an app). A community's supervisor (书记) or the operator issues one; it
//! is shown once and kept only as a SHA-256 of its secret; revoked, it opens nothing.

use hongfan_shared::Source;
use hongfan_shared::office::{ApiKey, OfficeChange, Upstream};
use hongfan_shared::{CommunityId, Principal};
use sha2::{Digest, Sha256};

use super::{OfficeError, change};
use crate::store::{Store, StoreError};

/// The longest name a key may have (who holds it, as the timeline shows).
const MAX_NAME_CHARS: usize = 40;

fn hashed(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The keys of the communities `by` runs, without their secrets.
pub fn keys(store: &Store, by: &Principal) -> Vec<ApiKey> {
    let office = store.office();
    office
        .office
        .api_keys
        .values()
        .filter(|key| by.runs(&key.community))
        .map(ApiKey::shown)
        .collect()
}

/// A key issued: the key (`key-N.<secret>`) and, for a platform's, the secret its deliveries
/// are signed with, both in this answer only.
#[derive(Debug)]
pub struct Issued {
    pub key: ApiKey,
    pub api_key: String,
    pub webhook_secret: Option<String>,
}

/// Issues a key for `community`, held by `name`; with `upstream` (where its orders come from
/// and the webhook its orders are answered at), a platform's.
pub async fn issue(
    store: &Store,
    by: &Principal,
    community: &CommunityId,
    name: &str,
    upstream: Option<(Source, String)>,
) -> Result<Issued, OfficeError> {
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(OfficeError::BadKeyName);
    }
    if !by.runs(community) {
        return Err(OfficeError::NotYours);
    }
    let upstream = match upstream {
        Some((source, webhook)) => {
            let url = reqwest::Url::parse(webhook.trim()).map_err(|_| OfficeError::BadWebhook)?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(OfficeError::BadWebhook);
            }
            let secret = hex::encode(rand::random::<[u8; 24]>());
            Some(Upstream { source, webhook: url.to_string(), secret })
        }
        None => None,
    };
    let webhook_secret = upstream.as_ref().map(|u| u.secret.clone());
    let secret = hex::encode(rand::random::<[u8; 24]>());
    let (community, hash) = (community.clone(), hashed(&secret));
    let event = change(store, by, move |office| {
        if !office.communities.contains_key(&community) {
            return Err(OfficeError::UnknownCommunity(community.0.clone()));
        }
        let key = ApiKey {
            id: format!("key-{}", office.api_keys.len() + 1),
            community,
            name,
            secret: hash,
            revoked: false,
            upstream,
        };
        Ok(OfficeChange::ApiKey { before: None, after: Box::new(key) })
    })
    .await?;
    let OfficeChange::ApiKey { after, .. } = event.change else {
        return Err(StoreError::Write("not a key's change".into()).into());
    };
    let api_key = format!("{}.{secret}", after.id);
    Ok(Issued { key: after.shown(), api_key, webhook_secret })
}

/// Revokes key `id`: from now on it is refused.
pub async fn revoke(store: &Store, by: &Principal, id: &str) -> Result<ApiKey, OfficeError> {
    let (id, scope) = (id.to_owned(), by.clone());
    let event = change(store, by, move |office| {
        let before = office.api_keys.get(&id).ok_or_else(|| OfficeError::UnknownKey(id.clone()))?;
        if !scope.runs(&before.community) {
            return Err(OfficeError::NotYours);
        }
        let after = ApiKey { revoked: true, ..before.clone() };
        Ok(OfficeChange::ApiKey { before: Some(Box::new(before.clone())), after: Box::new(after) })
    })
    .await?;
    let OfficeChange::ApiKey { after, .. } = event.change else {
        return Err(StoreError::Write("not a key's change".into()).into());
    };
    Ok(after.shown())
}

/// The live key `api_key` is, if it is one.
pub fn verify(store: &Store, api_key: &str) -> Option<ApiKey> {
    let (id, secret) = api_key.split_once('.')?;
    let office = store.office();
    let key = office.office.api_keys.get(id)?;
    (!key.revoked && key.secret == hashed(secret)).then(|| key.clone())
}
