//! Types both sides of hongfan use: the community, incidents, their events and the rules that
//! move an incident through its lifecycle.
//!
//! This crate is plain data and pure functions: it knows nothing of tokio, axum or sled, so the
//! server, the tests and the load generator agree on one definition of every record and message.

pub mod audit;
pub mod community;
pub mod error;
pub mod event;
pub mod ids;
pub mod incident;
pub mod lifecycle;
pub mod office;
pub mod permissions;
pub mod points;
pub mod principal;
pub mod protocol;
pub mod time;
pub mod view;

pub use audit::Rating;
pub use community::{
    Category, CategoryId, Community, CommunityId, Compound, CompoundId, EscalationPolicy, Target,
    Targets, Urgency,
};
pub use event::{Actor, Change, EscalationReason, Event, Role, Seq, Timer};
pub use incident::{
    Answer, AnswerSource, Attachment, AttachmentKind, Incident, IncidentId, Mediation, Note,
    Origin, Pause, Report, SendBack, Source, Status, Ticket, WorkOrder,
};
pub use lifecycle::{Action, LifecycleError};
pub use principal::{Principal, Scope};
pub use time::{Millis, Timestamp};
