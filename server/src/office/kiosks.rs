//! The office's kiosks: made for a compound's station, paired with a one-time code, revoked.

use hongfan_shared::office::{Kiosk, OfficeChange, Pairing};
use hongfan_shared::{CompoundId, Millis, Principal, Timestamp};

use crate::auth::{Accounts, AuthError, MAX_NAME_CHARS, Subject};
use crate::store::StoreError;

/// How long a pairing code from the admin page may be used.
const PAIRING_VALID: Millis = Millis::from_mins(30);

impl Accounts {
    pub fn kiosk(&self, id: &str) -> Result<Option<Kiosk>, AuthError> {
        Ok(self.store.office().office.kiosks.get(id).cloned())
    }

    pub fn kiosks(&self) -> Result<Vec<Kiosk>, AuthError> {
        Ok(self.store.office().office.kiosks.values().cloned().collect())
    }

    /// Makes a kiosk for a compound's station; its credential is shown only now.
    pub async fn add_kiosk(
        &self,
        by: &Principal,
        compound: &CompoundId,
        name: &str,
    ) -> Result<(Kiosk, String), AuthError> {
        let station = self
            .store
            .office()
            .office
            .community_of(compound)
            .and_then(|c| c.compound(compound))
            .ok_or_else(|| AuthError::UnknownCompound(compound.0.clone()))?
            .station
            .clone();
        if !by.may_act_in(compound) {
            return Err(AuthError::NotYours);
        }
        if name.trim().chars().count() > MAX_NAME_CHARS {
            return Err(AuthError::LongName);
        }
        let secret = hex::encode(rand::random::<[u8; 12]>());
        let hashed = self.hash(&secret).await?;
        let (compound, name) = (compound.clone(), name.trim().to_owned());
        let added = self
            .change(&by.actor, move |office| {
                let kiosk = Kiosk {
                    id: format!("kiosk-{}", office.kiosks.len() + 1),
                    compound,
                    name: if name.is_empty() { station } else { name },
                    secret: hashed,
                    pairing: None,
                    revoked: false,
                };
                Ok(OfficeChange::Kiosk { before: None, after: Box::new(kiosk) })
            })
            .await?;
        let OfficeChange::Kiosk { after, .. } = added else {
            return Err(AuthError::Store(StoreError::Write("not a kiosk's change".into())));
        };
        let credential = format!("{}.{secret}", after.id);
        Ok((*after, credential))
    }

    /// Changes one kiosk with `edit`, if `by` manages its compound.
    async fn edit_kiosk(
        &self,
        by: &Principal,
        id: &str,
        edit: impl FnOnce(&mut Kiosk) + Send + 'static,
    ) -> Result<Kiosk, AuthError> {
        let (id, scope) = (id.to_owned(), by.clone());
        let changed = self
            .change(&by.actor, move |office| {
                let before =
                    office.kiosks.get(&id).ok_or_else(|| AuthError::UnknownKiosk(id.clone()))?;
                if !scope.may_act_in(&before.compound) {
                    return Err(AuthError::NotYours);
                }
                let mut after = before.clone();
                edit(&mut after);
                Ok(OfficeChange::Kiosk {
                    before: Some(Box::new(before.clone())),
                    after: Box::new(after),
                })
            })
            .await?;
        let OfficeChange::Kiosk { after, .. } = changed else {
            return Err(AuthError::Store(StoreError::Write("not a kiosk's change".into())));
        };
        Ok(*after)
    }

    /// A one-time pairing code for a kiosk (shown as a QR code on the admin page), valid for
    /// `PAIRING_VALID`; it replaces any earlier one. Answers the code and until when it holds.
    pub async fn pairing_code(
        &self,
        by: &Principal,
        id: &str,
    ) -> Result<(String, Timestamp), AuthError> {
        let code = hex::encode(rand::random::<[u8; 12]>());
        let hashed = self.hash(&code).await?;
        let expires = self.clock.now().plus(PAIRING_VALID);
        let kiosk = self
            .edit_kiosk(by, id, move |k| {
                k.pairing = Some(Pairing { code: hashed, expires });
                k.revoked = false;
            })
            .await?;
        Ok((format!("{}.{code}", kiosk.id), expires))
    }

    pub async fn revoke(&self, by: &Principal, id: &str) -> Result<Kiosk, AuthError> {
        let kiosk = self
            .edit_kiosk(by, id, |k| {
                k.revoked = true;
                k.pairing = None;
            })
            .await?;
        self.end_sessions(&Subject::Kiosk(id.to_owned()), None).await?;
        Ok(kiosk)
    }
}
