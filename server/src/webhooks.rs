//! Alerts off the page: outbound webhooks to the office's 企业微信 or 钉钉 group robots, or any
//! receiver of signed JSON.
//!
//! Which events call which hook is decided by the committer in the same group commit as the event
//! (`Webhooks::deliveries`), and each delivery is written into the store's outbox with it: no crash
//! can lose one or make two. The `outbox::Deliverer` sends them, each on its own task with a deadline,
//! retries with backoff, and removes a delivery from the outbox once the receiver took it (at least
//! once: a crash between the answer and the removal sends it again, with the same
//! `X-Hongfan-Delivery`). A receiver that hangs costs its own task, never the committer or the hub.
//!
//! The messages say what happened, where and how urgent — ticket, category, compound, building —
//! never a description, a room or a phone number: a group chat is a shared screen.

use std::path::Path;

use hmac::{Hmac, Mac};
use hongfan_shared::{
    Change, Community, CommunityId, CompoundId, EscalationReason, Event, Incident, Timestamp,
    Urgency,
};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What a hook may be called for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A new report marked 紧急.
    UrgentReport,
    /// Reported while nobody of its compound was on duty.
    Escalated,
    /// Still unclaimed after the escalation policy's time (`unclaimed_after`).
    Unclaimed,
    /// A first-time target passed.
    Breached,
    /// A change of a work order from above (上级派单), sent to its platform's webhook.
    Order,
}

/// How a receiver wants its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// A 企业微信 group robot: `{"msgtype": "text", "text": {"content": …}}`.
    Wecom,
    /// A 钉钉 group robot, the same body; with a secret, signed in the query (`timestamp`,
    /// `sign`) as 钉钉 asks.
    Dingtalk,
    /// JSON for any receiver, signed: `X-Hongfan-Signature: sha256=<hex HMAC-SHA256 of
    /// "<X-Hongfan-Timestamp>.<body>">`.
    Signed,
}

/// One configured hook.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub name: String,
    pub url: String,
    pub format: Format,
    /// 钉钉's signing secret, or the HMAC key of `signed`.
    #[serde(default, skip_serializing)]
    pub secret: Option<String>,
    /// The community it is for (`default` when the deployment serves one).
    #[serde(default)]
    pub community: CommunityId,
    /// The compounds it is for; empty for all of its community's.
    #[serde(default)]
    pub compounds: Vec<CompoundId>,
    pub kinds: Vec<Kind>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    webhook: Vec<Webhook>,
}

/// Why a webhook file is not used.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("{0}: {1}")]
    Parse(String, String),
    #[error("webhook {name:?}: {why}")]
    Bad { name: String, why: String },
}

/// Every configured hook, and the rule of which event calls which.
#[derive(Debug, Default)]
pub struct Webhooks {
    hooks: Vec<Webhook>,
}

/// One message to one hook, as the outbox keeps it until the receiver has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// `<seq>-<hook>`: the outbox key, and `X-Hongfan-Delivery` for a receiver that dedupes.
    pub id: String,
    pub hook: String,
    pub kind: Kind,
    pub at: Timestamp,
    pub incident: u64,
    /// The incident's ticket within its community.
    pub ticket: String,
    #[serde(default)]
    pub community: CommunityId,
    pub compound: CompoundId,
    /// What a person reads: Chinese, with no personal data.
    pub text: String,
    /// For a work order's platform: which order, and what became of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderChange>,
}

/// What a platform's system reads of a change of its work order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderChange {
    /// The platform's own number for the order.
    pub external_id: String,
    pub source: hongfan_shared::Source,
    /// `claimed`, `handed_over`, `returned`, `resolved`, `reopened`, `cancelled` or
    /// `sent_back`.
    pub change: String,
    pub status: hongfan_shared::Status,
    /// What was done (办结), or why it was cancelled or reopened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The delivery `event` calls for to the platform whose work order its incident is, if any:
/// every change the platform answers for upstream, named by the platform's own number.
pub fn order_delivery(
    event: &Event,
    incident: &Incident,
    community: &Community,
) -> Option<Delivery> {
    let order = incident.report.order.as_ref()?;
    let (change, what, note) = match &event.change {
        Change::Claimed => ("claimed", "已接单", None),
        Change::Assigned { .. } => ("claimed", "已派单", None),
        Change::HandedOver { .. } => ("handed_over", "已转街道代办", None),
        Change::Returned { .. } => ("returned", "已从街道退回", None),
        Change::Resolved { outcome, .. } => ("resolved", "已办结", Some(outcome.clone())),
        Change::Reopened { reason, .. } => ("reopened", "已重新办理", Some(reason.clone())),
        Change::Cancelled { reason } => ("cancelled", "已撤销", Some(reason.clone())),
        // 退单: the supervisor's reason, never the holder's words to them.
        Change::SentBack { reason } => ("sent_back", "已退单", Some(reason.clone())),
        _ => return None,
    };
    Some(Delivery {
        id: format!("{:020}-{}", event.seq, order.key),
        hook: order.key.clone(),
        kind: Kind::Order,
        at: event.at,
        incident: incident.id.0,
        ticket: incident.ticket.as_str().to_owned(),
        community: community.id.clone(),
        compound: incident.report.compound.clone(),
        text: format!("红帆：工单 {} {what}（受理号 {}）", order.external_id, incident.ticket.0),
        order: Some(OrderChange {
            external_id: order.external_id.clone(),
            source: order.source,
            change: change.to_owned(),
            status: incident.status,
            note,
        }),
    })
}

impl Webhooks {
    /// The hooks of a TOML file (`[[webhook]]` tables), checked against the community.
    pub fn load(path: &Path, communities: &[Community]) -> Result<Webhooks, WebhookError> {
        let name = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| WebhookError::Read(name.clone(), e))?;
        let file: File =
            toml::from_str(&text).map_err(|e| WebhookError::Parse(name, e.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        for hook in &file.webhook {
            let bad = |why: &str| WebhookError::Bad { name: hook.name.clone(), why: why.into() };
            let url = reqwest::Url::parse(&hook.url).map_err(|e| bad(&e.to_string()))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(bad("the url is http or https"));
            }
            let valid_name = !hook.name.is_empty()
                && hook.name.len() <= 40
                && hook.name.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_'));
            if !valid_name || !seen.insert(hook.name.clone()) {
                return Err(bad("a name is unique: 1 to 40 letters, digits, '-' or '_'"));
            }
            // A delivery is named after its hook: `key-N` are the API keys' (上级派单).
            if hook.name.starts_with("key-") {
                return Err(bad("names starting with key- are the API keys' webhooks"));
            }
            if hook.kinds.is_empty() {
                return Err(bad("it needs at least one kind"));
            }
            if hook.format == Format::Signed && hook.secret.as_deref().is_none_or(str::is_empty) {
                return Err(bad("a signed hook needs a secret"));
            }
            let Some(community) = communities.iter().find(|c| c.id == hook.community) else {
                return Err(bad(&format!("no community {:?}", hook.community.0)));
            };
            if let Some(unknown) = hook.compounds.iter().find(|c| community.compound(c).is_none()) {
                return Err(bad(&format!("no compound {:?}", unknown.0)));
            }
        }
        Ok(Webhooks { hooks: file.webhook })
    }

    pub fn hooks(&self) -> &[Webhook] {
        &self.hooks
    }

    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// The deliveries `event` calls for, with `incident` its state after it. Decided once, by
    /// the committer, in the event's own group.
    pub fn deliveries(
        &self,
        event: &Event,
        incident: &Incident,
        community: &Community,
    ) -> Vec<Delivery> {
        let kind = match &event.change {
            Change::Reported { report, .. } if report.urgency == Urgency::Urgent => {
                Kind::UrgentReport
            }
            Change::Escalated { reason: EscalationReason::NobodyOnDuty } => Kind::Escalated,
            Change::Escalated { reason: EscalationReason::Unclaimed } => Kind::Unclaimed,
            Change::Breached { .. } => Kind::Breached,
            _ => return Vec::new(),
        };
        let compound = &incident.report.compound;
        let text = text(kind, event, incident, community);
        self.hooks
            .iter()
            .filter(|h| h.kinds.contains(&kind))
            .filter(|h| h.community == community.id)
            .filter(|h| h.compounds.is_empty() || h.compounds.contains(compound))
            .map(|h| Delivery {
                id: format!("{:020}-{}", event.seq, h.name),
                hook: h.name.clone(),
                kind,
                at: event.at,
                incident: incident.id.0,
                ticket: incident.ticket.as_str().to_owned(),
                community: community.id.clone(),
                compound: compound.clone(),
                text: text.clone(),
                order: None,
            })
            .collect()
    }
}

/// The message a person reads in the group.
fn text(kind: Kind, event: &Event, incident: &Incident, community: &Community) -> String {
    let category = community
        .category(&incident.report.category)
        .map_or(incident.report.category.0.as_str(), |c| c.name.as_str());
    let compound = community
        .compound(&incident.report.compound)
        .map_or(incident.report.compound.0.as_str(), |c| c.name.as_str());
    // Where there are several communities, their compounds' names may repeat.
    let compound = if community.id == CommunityId::default() {
        compound.to_owned()
    } else {
        format!("{}{compound}", community.name)
    };
    let urgent = if incident.report.urgency == Urgency::Urgent { "【紧急】" } else { "" };
    let what = match (kind, &event.change) {
        (Kind::UrgentReport, _) => "新上报，请尽快接单",
        (Kind::Escalated, _) => "无人在岗，请书记安排",
        (Kind::Unclaimed, _) => "长时间无人接单，请督办",
        (Kind::Breached, Change::Breached { timer: hongfan_shared::Timer::Response, .. }) => {
            "超过接单时限"
        }
        (Kind::Breached, _) => "超过办结时限",
        (Kind::Order, _) => "工单有变化",
    };
    format!(
        "红帆{urgent}{what}：受理号 {} · {category} · {compound} {}",
        incident.ticket.0, incident.report.building
    )
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(secret: &str, message: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// The request one delivery becomes for its hook: the URL, the headers and the body.
pub fn request(
    hook: &Webhook,
    delivery: &Delivery,
    now: Timestamp,
) -> (String, Vec<(String, String)>, Vec<u8>) {
    use base64::Engine;
    let chat = || serde_json::json!({ "msgtype": "text", "text": { "content": delivery.text } });
    let mut headers = vec![("X-Hongfan-Delivery".to_owned(), delivery.id.clone())];
    match hook.format {
        Format::Wecom => (hook.url.clone(), headers, chat().to_string().into_bytes()),
        Format::Dingtalk => {
            let mut url = reqwest::Url::parse(&hook.url).expect("checked at load");
            if let Some(secret) = hook.secret.as_deref().filter(|s| !s.is_empty()) {
                let to_sign = format!("{}\n{secret}", now.0);
                let sign = base64::engine::general_purpose::STANDARD
                    .encode(hmac(secret, to_sign.as_bytes()));
                url.query_pairs_mut()
                    .append_pair("timestamp", &now.0.to_string())
                    .append_pair("sign", &sign);
            }
            (url.to_string(), headers, chat().to_string().into_bytes())
        }
        Format::Signed => {
            let body = serde_json::to_vec(delivery).unwrap_or_default();
            let secret = hook.secret.as_deref().unwrap_or_default();
            let signed = [now.0.to_string().as_bytes(), b".", &body].concat();
            headers.push(("X-Hongfan-Timestamp".into(), now.0.to_string()));
            headers.push((
                "X-Hongfan-Signature".into(),
                format!("sha256={}", hex::encode(hmac(secret, &signed))),
            ));
            (hook.url.clone(), headers, body)
        }
    }
}

/// Whether the receiver took the message. 企业微信 and 钉钉 answer 200 also when they refuse
/// (a wrong key or signature, too many messages a minute): their `errcode` says, and anything but
/// 0 is a failure to retry.
pub async fn taken(format: Format, answer: reqwest::Response) -> Result<(), String> {
    if format == Format::Signed {
        return Ok(());
    }
    let body: serde_json::Value = answer.json().await.map_err(|e| e.without_url().to_string())?;
    match body.get("errcode").and_then(serde_json::Value::as_i64) {
        Some(0) => Ok(()),
        code => {
            let message =
                body.get("errmsg").and_then(serde_json::Value::as_str).unwrap_or_default();
            Err(format!(
                "refused: errcode {code:?} {}",
                message.chars().take(100).collect::<String>()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str) -> Result<Webhooks, WebhookError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("webhooks.toml");
        std::fs::write(&path, toml).unwrap();
        let community = crate::config::load(None).unwrap();
        Webhooks::load(&path, &community)
    }

    #[test]
    fn a_hook_that_cannot_work_is_refused_with_its_name() {
        let hook = |extra: &str| {
            format!(
                "[[webhook]]\nname = \"h\"\nformat = \"signed\"\nkinds = [\"breached\"]\n{extra}\n"
            )
        };
        let refused = |toml: String| load(&toml).unwrap_err().to_string();
        assert!(refused(hook("url = \"ftp://x\"\nsecret = \"s\"")).contains("http or https"));
        assert!(refused(hook("url = \"http://x\"")).contains("needs a secret"));
        let unknown = hook("url = \"http://x\"\nsecret = \"s\"\ncompounds = [\"c9\"]");
        assert!(refused(unknown).contains("c9"));
        assert!(
            refused(hook("url = \"http://x\"\nsecret = \"s\"\nkinds2 = []")).contains("kinds2")
        );
        assert!(load(&hook("url = \"https://qyapi.weixin.qq.com/x\"\nsecret = \"s\"")).is_ok());
        // An API key's name: its deliveries and a configured hook's would share their names.
        let named_as_a_key =
            hook("url = \"http://x\"\nsecret = \"s\"").replace("\"h\"", "\"key-1\"");
        assert!(refused(named_as_a_key).contains("key-"));
    }

    #[test]
    fn a_hook_hears_only_its_own_community() {
        let default = crate::config::load(None).unwrap().remove(0);
        let mut b = default.clone();
        b.id = CommunityId("b".into());
        b.name = "乙社区".into();
        b.compounds.truncate(1);
        b.compounds[0].id = CompoundId("b1".into());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("webhooks.toml");
        let hook = |name: &str, extra: &str| {
            format!(
                "[[webhook]]\nname = \"{name}\"\nurl = \"http://x\"\nformat = \"wecom\"\nkinds = [\"urgent_report\"]\n{extra}\n"
            )
        };
        std::fs::write(&path, hook("mine", "") + &hook("theirs", "community = \"b\"")).unwrap();
        let hooks = Webhooks::load(&path, &[default.clone(), b.clone()]).unwrap();
        let urgent = |compound: &str| {
            let report = hongfan_shared::Report {
                compound: CompoundId(compound.into()),
                category: default.categories[0].id.clone(),
                urgency: Urgency::Urgent,
                building: "1号楼".into(),
                unit: String::new(),
                room: String::new(),
                description: "漏水".into(),
                phone: None,
                attachments: Vec::new(),
                order: None,
            };
            let change = Change::Reported {
                ticket: hongfan_shared::Ticket::new(1),
                report: Box::new(report),
                request_id: "r".into(),
                respond_by: Timestamp(1),
                resolve_by: Timestamp(2),
                escalate_by: None,
                key: None,
                recurring: Vec::new(),
            };
            let actor = hongfan_shared::Actor::system();
            let event = Event {
                seq: 1,
                at: Timestamp(0),
                incident: hongfan_shared::IncidentId(1),
                actor,
                change,
            };
            let incident = Incident::from_event(&event).unwrap();
            (event, incident)
        };
        let (event, incident) = urgent("c1");
        let to: Vec<String> =
            hooks.deliveries(&event, &incident, &default).into_iter().map(|d| d.hook).collect();
        assert_eq!(to, ["mine"]);
        let (event, incident) = urgent("b1");
        let delivered = hooks.deliveries(&event, &incident, &b);
        assert_eq!(delivered.iter().map(|d| d.hook.as_str()).collect::<Vec<_>>(), ["theirs"]);
        assert_eq!(delivered[0].community, b.id);
        assert!(delivered[0].text.contains("乙社区"), "{}", delivered[0].text);

        let unknown = hook("lost", "community = \"c\"");
        std::fs::write(&path, unknown).unwrap();
        let refused = Webhooks::load(&path, &[default, b]).unwrap_err().to_string();
        assert!(refused.contains("no community \"c\""), "{refused}");
    }
}
