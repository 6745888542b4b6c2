//! Who is asking, and where they may act: an authenticated actor with its scope (all, whole
//! communities, or some compounds).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::community::{CommunityId, CompoundId};
use crate::ids::{Actor, Role};

/// Where a principal may act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Everywhere: the server itself and the operator at its command line.
    All,
    /// Whole communities (a 书记 her own, a street office's supervisor theirs), with the
    /// compounds they held when the principal was made.
    Communities { communities: BTreeSet<CommunityId>, compounds: BTreeSet<CompoundId> },
    /// Some compounds: a grid worker's, a compound leader's (网格长), a building head's, a
    /// kiosk's.
    Compounds(Vec<CompoundId>),
}

/// An authenticated actor together with where it may act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub actor: Actor,
    pub scope: Scope,
}

impl Principal {
    /// The server itself, acting for nobody in particular (first start, timers).
    pub fn system() -> Principal {
        Principal { actor: Actor::system(), scope: Scope::All }
    }

    /// The resident holding their slip, on the private status page (`/s`). They may see and
    /// rate that one incident, and only with its key.
    pub fn resident() -> Principal {
        let actor = Actor { id: "resident".into(), name: "居民".into(), role: Role::Resident };
        Principal { actor, scope: Scope::Compounds(Vec::new()) }
    }

    /// The operator at the server's command line (`hongfan user …`, `hongfan kiosk …`).
    pub fn operator() -> Principal {
        let actor =
            Actor { id: "operator".into(), name: "运维命令".into(), role: Role::System };
        Principal { actor, scope: Scope::All }
    }

    pub fn may_act_in(&self, compound: &CompoundId) -> bool {
        match &self.scope {
            Scope::All => true,
            Scope::Communities { compounds, .. } => compounds.contains(compound),
            Scope::Compounds(list) => list.contains(compound),
        }
    }

    /// Whether this principal runs `community` as a whole (its people, kiosks, rota, settings).
    pub fn runs(&self, community: &CommunityId) -> bool {
        match &self.scope {
            Scope::All => true,
            Scope::Communities { communities, .. } => communities.contains(community),
            Scope::Compounds(_) => false,
        }
    }

    pub(crate) fn is_supervisor(&self) -> bool {
        self.actor.role == Role::Supervisor
    }
}
