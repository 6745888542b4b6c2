//! Who and where: the actor of a change and its role, and a position in the log. The ground
//! floor, with time: every other module stands on these.

use serde::{Deserialize, Serialize};

/// Position of an event in the log: gap-free and increasing, starting at 1.
pub type Seq = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Supervisor,
    Worker,
    BuildingHead,
    /// A station's kiosk: a device, not a person.
    Kiosk,
    /// The server itself, for example when a deadline passes.
    System,
    /// The resident, on the private status page their slip's code opens.
    Resident,
    /// Another system reporting through Open311 with an API key: the street office's, the city's
    /// 12345 platform, an app.
    Platform,
}

/// Who made a change, as the log remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Actor {
    pub id: String,
    pub name: String,
    pub role: Role,
}

impl Actor {
    pub fn system() -> Actor {
        Actor { id: "system".into(), name: "系统".into(), role: Role::System }
    }
}
