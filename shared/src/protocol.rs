//! Protocol v2: the JSON text frames a kiosk, board or audit page exchanges with the server over
//! one WebSocket. Every message is an object whose `type` names it; `docs/protocol.md` shows an
//! example of each, and a test parses every example there.

use serde::{Deserialize, Serialize};

use crate::community::CompoundId;
use crate::event::{Actor, Event, Role, Seq};
use crate::incident::{Incident, IncidentId, Report};
use crate::lifecycle::Action;

/// 2: events carry what changed (`patch`), not the whole incident; `hello` names the
/// community's version instead of carrying it (it is fetched from `/api/community`).
pub const PROTOCOL_VERSION: u32 = 2;

/// Where a client is in the log: an epoch (which database) and the last sequence number seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub epoch: String,
    pub seq: Seq,
}

/// Declares every client message once: the enum the wire decodes into, the list of their
/// `type`s (so an unknown type is told from a malformed message), and `Request`, what the
/// connection dispatches on, where every lifecycle action is one `Act` carrying its `Action`.
macro_rules! client_messages {
    (
        requests { $(
            $(#[$rdoc:meta])* $request:ident $rtag:literal {
                $($(#[$rfmeta:meta])* $rfield:ident : $rty:ty),* $(,)?
            }
        )* }
        actions { $(
            $(#[$adoc:meta])* $act:ident $atag:literal {
                $($(#[$afmeta:meta])* $afield:ident : $aty:ty),* $(,)?
            } => $action:expr
        )* }
    ) => {
        /// What a client may send.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type", deny_unknown_fields)]
        pub enum ClientMessage {
            $(
                $(#[$rdoc])*
                #[serde(rename = $rtag)]
                $request { $($(#[$rfmeta])* $rfield: $rty),* },
            )*
            $(
                $(#[$adoc])*
                #[serde(rename = $atag)]
                $act { id: u64, incident: IncidentId, $($(#[$afmeta])* $afield: $aty),* },
            )*
        }

        /// The `type` of every client message.
        pub const CLIENT_TYPES: &[&str] = &[$($rtag,)* $($atag,)*];

        /// The `type` of every lifecycle action a client may send (a part of `CLIENT_TYPES`).
        pub const ACTION_TYPES: &[&str] = &[$($atag,)*];

        /// A decoded client message as the connection handles it: each request by itself, every
        /// lifecycle action as one `Act`.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Request {
            $( $request { $($rfield: $rty),* }, )*
            /// A lifecycle action on one incident; `id` is the client's correlation id.
            Act { id: u64, incident: IncidentId, action: Action },
        }

        impl From<ClientMessage> for Request {
            fn from(message: ClientMessage) -> Request {
                match message {
                    $( ClientMessage::$request { $($rfield),* } => Request::$request { $($rfield),* }, )*
                    $( ClientMessage::$act { id, incident, $($afield),* } => {
                        Request::Act { id, incident, action: $action }
                    } )*
                }
            }
        }
    };
}

client_messages! {
    requests {
        /// Start (or resume) the live feed. `since` is absent on a first connection.
        Subscribe "subscribe" {
            #[serde(default, skip_serializing_if = "Option::is_none")]
            since: Option<Position>,
        }
        /// 上报. `request_id` is the device's own id for this report: sending it again after a
        /// dropped link returns the same ticket and stores nothing twice.
        Report "report" { request_id: String, report: Report }
        /// Go on or off duty for all of this worker's compounds; answered with `duty_set`.
        Duty "duty" { id: u64, on: bool }
        /// The status of one ticket at the kiosk: with the last four digits of the phone number
        /// given (`phone_tail`) or the private code from the slip (`key`); a ticket number alone
        /// is refused (`wrong_key`). Staff look up the tickets they may see without either.
        /// 派单 / 改派 (supervisors): give the incident to `worker` (a login), who is alerted.
        Assign "assign" { id: u64, incident: IncidentId, worker: String }
        /// 调解: the holder or a supervisor hands a dispute to `head`, a building head's login
        /// (`not_a_building_head_here` otherwise).
        Mediate "mediate" { id: u64, incident: IncidentId, head: String }
        Lookup "lookup" {
            id: u64,
            #[serde(default, skip_serializing_if = "String::is_empty")]
            ticket: String,
            /// Whose ticket: without it, the connection's own community.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            community: Option<crate::community::CommunityId>,
            /// Staff only: the incident by its id instead of a ticket.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            incident: Option<crate::incident::IncidentId>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            phone_tail: Option<String>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            key: Option<String>,
        }
    }
    actions {
        Claim "claim" {} => Action::Claim
        Note "note" { text: String } => Action::Note { text }
        HandOver "hand_over" { note: String } => Action::HandOver { note }
        Return "return" { note: String } => Action::Return { note }
        /// 办结, with an optional photo of the result (影像证明), uploaded first.
        Resolve "resolve" {
            outcome: String,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            proof: Option<crate::Attachment>,
        } => Action::Resolve { outcome, proof }
        Reopen "reopen" { reason: String } => Action::Reopen { reason }
        Cancel "cancel" { reason: String } => Action::Cancel { reason }
        /// 解决了吗？满意吗？: the resident's answer after 办结, once per handling: at the kiosk
        /// with the slip's `key`, or recorded by a building head or supervisor (回访).
        /// `solved: false` starts a second handling (二次办理); absent means solved.
        Rate "rate" {
            rating: crate::incident::Rating,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            key: Option<String>,
            #[serde(default = "yes")]
            solved: bool,
        } => Action::Rate { rating, key, solved }
        /// The resident's phone number, for a worker about to call: answered with `revealed`,
        /// and logged (`revealed`, seen by supervisors).
        Reveal "reveal" {} => Action::Reveal
        /// 督办 (supervisors): a logged nudge the holder sees, counted by the audit.
        Urge "urge" { note: String } => Action::Urge { note }
        /// The mediating building head reports how it went (`settled`), or the holder or a
        /// supervisor takes it back.
        EndMediation "end_mediation" { outcome: String, settled: bool } => Action::EndMediation { outcome, settled }
        /// A note for the resident (their status page, the kiosk), not an internal note: a
        /// building head, worker or supervisor of the incident's compound.
        Tell "tell" { text: String } => Action::Tell { text }
        /// 挂起: the holder asks to pause the resolution clock, with a configured reason.
        Pause "pause" { reason: String } => Action::Pause { reason }
        /// A supervisor approves (`true`) or refuses the pause asked for.
        DecidePause "decide_pause" { approve: bool } => Action::DecidePause { approve }
        /// The holder or a supervisor ends a running pause.
        Resume "resume" {} => Action::Resume
        /// 退单 of a work order from above: the holder asks a supervisor, with a reason for
        /// them (`send_back_asked`); a supervisor sends it back to its platform at once, with
        /// the reason the platform is told (`sent_back`).
        SendBack "send_back" { reason: String } => Action::SendBack { reason }
        /// A supervisor keeps a work order the holder asked to send back, telling them why.
        RefuseSendBack "refuse_send_back" { reason: String } => Action::RefuseSendBack { reason }
    }
}

fn yes() -> bool {
    true
}

impl ClientMessage {
    /// Decodes one text frame.
    pub fn decode(text: &str) -> Result<ClientMessage, DecodeError> {
        // A good message is read straight into its type; only a bad one is read again, as a
        // tree, to say what is wrong with it.
        if let Ok(message) = serde_json::from_str(text) {
            return Ok(message);
        }
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| DecodeError::BadJson(e.to_string()))?;
        let kind = match value.get("type") {
            Some(serde_json::Value::String(kind)) => kind.clone(),
            Some(_) | None if value.is_object() => return Err(DecodeError::MissingType),
            _ => return Err(DecodeError::NotAnObject),
        };
        if !CLIENT_TYPES.contains(&kind.as_str()) {
            return Err(DecodeError::UnknownType(kind.chars().take(40).collect()));
        }
        // Read before the whole message is: a refusal names the request when it can, so a
        // client waiting for an answer to it is not left waiting.
        let id = value.get("id").and_then(serde_json::Value::as_u64);
        let request_id = value
            .get("request_id")
            .and_then(serde_json::Value::as_str)
            .map(|r| r.chars().take(64).collect());
        serde_json::from_value(value).map_err(|e| DecodeError::BadFields {
            kind,
            detail: e.to_string(),
            id,
            request_id,
        })
    }
}

/// Why a text frame is not a client message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not JSON: {0}")]
    BadJson(String),
    #[error("not a JSON object")]
    NotAnObject,
    #[error("no \"type\" field")]
    MissingType,
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    #[error("bad {kind} message: {detail}")]
    BadFields {
        kind: String,
        detail: String,
        /// The message's `id` (or `request_id`), when it could be read.
        id: Option<u64>,
        request_id: Option<String>,
    },
}

impl DecodeError {
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::BadJson(_) => ErrorCode::BadJson,
            DecodeError::NotAnObject | DecodeError::MissingType => ErrorCode::BadMessage,
            DecodeError::UnknownType(_) => ErrorCode::UnknownType,
            DecodeError::BadFields { .. } => ErrorCode::BadMessage,
        }
    }

    /// The `id` and `request_id` of the message refused, when they could be read.
    pub fn correlation(&self) -> (Option<u64>, Option<String>) {
        match self {
            DecodeError::BadFields { id, request_id, .. } => (*id, request_id.clone()),
            _ => (None, None),
        }
    }
}

/// The fields of `after` that differ from `before` (all of them when there is no `before`): what
/// a client holding `before` merges in to hold `after`. A field `after` no longer has (a pause
/// over, a proof cleared by a second handling) is sent as `null`, so the merge drops it.
pub fn patch(
    before: Option<&Incident>,
    after: &Incident,
) -> serde_json::Map<String, serde_json::Value> {
    let to_map = |incident: &Incident| match serde_json::to_value(incident) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let after = to_map(after);
    let Some(before) = before.map(to_map) else { return after };
    let gone: Vec<String> = before.keys().filter(|k| !after.contains_key(*k)).cloned().collect();
    let mut changed: serde_json::Map<String, serde_json::Value> =
        after.into_iter().filter(|(key, value)| before.get(key) != Some(value)).collect();
    changed.extend(gone.into_iter().map(|key| (key, serde_json::Value::Null)));
    changed
}

/// Who the server took the client to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Identity {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// The community whose office this identity belongs to (a kiosk: its compound's): the
    /// pages fetch it with `GET /api/community?id=`.
    #[serde(default)]
    pub community: crate::community::CommunityId,
    /// The compounds this identity acts in; every compound of their communities for a
    /// community supervisor (书记) or a street office's, theirs for a compound leader (网格长).
    pub compounds: Vec<CompoundId>,
    /// A supervisor who runs whole communities (not only some compounds).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub everything: bool,
    /// A street office's supervisor: every community they run, their own first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<crate::community::CommunityId>,
    /// A building head's buildings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buildings: Vec<String>,
    /// The password is a one-time code: it must be changed (`POST /api/me/password`) before
    /// anything else.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub must_change_password: bool,
}

/// Why a snapshot was sent instead of the missed events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotReason {
    /// The client had no position.
    First,
    /// The client's position is from another database (restored, or new).
    EpochChanged,
    /// The client was away longer than the retained window.
    TooOld,
    /// The client's position is past the end of this log: it did not come from this server.
    Ahead,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OnDuty {
    pub worker: Actor,
    /// The compounds they are on duty for now.
    pub compounds: Vec<CompoundId>,
    /// On by their own switch, not by the rota (排班).
    #[serde(default)]
    pub manual: bool,
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First message on every connection.
    Hello {
        protocol: u32,
        server: String,
        identity: Identity,
        /// The version of the identity's community: fetch `GET /api/community?id=` when it
        /// differs from the one the client has (it changes only when the office edits it).
        community: String,
        epoch: String,
        /// The server's time: timers are shown against it, not the device's own clock.
        #[serde(default)]
        now: crate::time::Timestamp,
    },
    /// The open incidents the client may see, as of `seq`; live events follow.
    Snapshot {
        epoch: String,
        seq: Seq,
        reason: SnapshotReason,
        incidents: Vec<Incident>,
    },
    /// The missed events were sent (as `event` messages) up to `seq`; live events follow.
    Resumed {
        epoch: String,
        seq: Seq,
        missed: u64,
    },
    /// One durable change and the incident's state now.
    Event {
        event: Event,
        /// The fields of the incident (as this client may see it) that differ from what the
        /// client holds: for a live event, what this event changed; for `reported`, and for the
        /// first event of an incident during a resume, the whole incident. Merge it in.
        patch: serde_json::Map<String, serde_json::Value>,
    },
    /// A new report for on-duty workers (with a sound); `escalated` when nobody of its compound
    /// was on duty and it went to supervisors and other compounds instead.
    Alert {
        incident: Incident,
        escalated: bool,
    },
    /// A report is durable: the resident's ticket, and its private code for the slip and the
    /// status link (to the reporting device only).
    Reported {
        request_id: String,
        incident: Incident,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// An action with correlation `id` is durable.
    Done {
        id: u64,
        event: Event,
    },
    /// The answer to `reveal`: the phone number, for this connection only.
    Revealed {
        id: u64,
        incident: IncidentId,
        phone: String,
    },
    /// The answer to `lookup`.
    Found {
        id: u64,
        incident: Incident,
    },
    /// The answer to `duty`: this worker is now on (or off) duty.
    DutySet {
        id: u64,
        on: bool,
    },
    /// Who is on duty now (by the rota and the workers' own switches), sent to workers and
    /// supervisors on subscribing and whenever it changes.
    Roster {
        on_duty: Vec<OnDuty>,
    },
    /// The office changed the community (compounds, categories, targets, phrases): fetch
    /// `GET /api/community` again. New reports are checked against the new one at once.
    Community {
        version: String,
    },
    Error(ErrorBody),
}

pub use crate::error::ErrorCode;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The correlation id of the request refused, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The `request_id` of the report refused, when it was a report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub code: ErrorCode,
    /// English, with the specifics (which field, which holder).
    pub message: String,
    pub message_zh: String,
    /// Who holds the incident, for `already_claimed` and `not_holder`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<Actor>,
}

/// Close codes the server uses, beyond the standard ones (1000 normal, 1001 going away,
/// 1003 unsupported data, 1009 too big, 1011 internal error).
pub mod close {
    /// The session ended: the account was disabled, its password changed or reset, the kiosk
    /// revoked. Log in (or pair) again; do not reconnect with the same session.
    pub const REVOKED: u16 = 4001;
    /// The account itself changed (its name, compounds or buildings): reconnect at once, and
    /// the new `hello` says who it is now.
    pub const RENEW: u16 = 4010;
    /// The client did not read its messages fast enough; reconnect and resume.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// The client sent no message or pong for too long.
    pub const IDLE: u16 = 4009;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(|n| serde_json::json!(n)),
            any::<f64>().prop_map(|n| serde_json::json!(n)),
            ".{0,12}".prop_map(serde_json::Value::String),
            // Known types make the decoder go past the type check into the fields.
            proptest::sample::select(CLIENT_TYPES).prop_map(|t| serde_json::json!(t)),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("type".to_owned()),
                        Just("id".to_owned()),
                        Just("incident".to_owned()),
                        Just("since".to_owned()),
                        "[a-z_]{1,8}"
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn the_decoder_answers_any_json_with_a_message_or_a_coded_error(value in json()) {
            let text = value.to_string();
            match ClientMessage::decode(&text) {
                Ok(message) => {
                    // What decodes re-encodes to a message that decodes the same.
                    let again = serde_json::to_string(&message).unwrap();
                    prop_assert_eq!(ClientMessage::decode(&again).unwrap(), message);
                }
                Err(e) => prop_assert!(ErrorCode::all().contains(&e.code())),
            }
        }

        #[test]
        fn the_decoder_answers_any_text(text in ".{0,200}") {
            if let Err(e) = ClientMessage::decode(&text) {
                prop_assert!(ErrorCode::all().contains(&e.code()));
            }
        }
    }

    #[test]
    fn errors_are_told_apart() {
        assert_eq!(ClientMessage::decode("{").unwrap_err().code(), ErrorCode::BadJson);
        assert_eq!(ClientMessage::decode("3").unwrap_err().code(), ErrorCode::BadMessage);
        assert_eq!(
            ClientMessage::decode(r#"{"type":7}"#).unwrap_err().code(),
            ErrorCode::BadMessage
        );
        assert_eq!(
            ClientMessage::decode(r#"{"type":"x"}"#).unwrap_err().code(),
            ErrorCode::UnknownType
        );
        assert_eq!(
            ClientMessage::decode(r#"{"type":"duty"}"#).unwrap_err().code(),
            ErrorCode::BadMessage
        );
        let unknown_field = r#"{"type":"claim","id":9,"incident":1,"colour":"red"}"#;
        assert_eq!(
            ClientMessage::decode(unknown_field).unwrap_err().correlation(),
            (Some(9), None)
        );
        assert_eq!(
            ClientMessage::decode(r#"{"type":"duty","id":3,"on":false}"#),
            Ok(ClientMessage::Duty { id: 3, on: false })
        );
    }
}
