//! Open311 GeoReport v2 (<http://wiki.open311.org/GeoReport_v2>), in JSON and XML, at
//! `/open311/v2/…` with discovery at `/open311/discovery.{json,xml}`: how the city's platforms,
//! apps and dashboards read the community's service requests. A jurisdiction is a community, a
//! service a category, a service request an incident (whatever reported it), seen as
//! `view::published` says. docs/open311.md is the mapping. Every refusal of these routes, the
//! edge's included, is in the spec's shape (`wire::refusal`) with 400, 403 or 404.

pub mod schema;
pub mod wire;

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hongfan_shared::view::{self, Published};
use hongfan_shared::{Community, CommunityId, Incident, IncidentId, Status, Timestamp};
use time::format_description::well_known::Rfc3339;

use super::App;
pub use wire::Format;
use wire::Node;

/// The longest span `GET requests` covers, and the span it covers when given no dates.
const SPAN_MS: i64 = 90 * 24 * 3_600_000;
/// The most requests one `GET requests` answers.
const MOST_REQUESTS: usize = 1_000;
/// The spec this implements, as discovery names it.
const SPECIFICATION: &str = "http://wiki.open311.org/GeoReport_v2";

/// The routes, under `/open311`.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/discovery.{format}", get(discovery))
        .route("/v2/services.{format}", get(services))
        .route("/v2/requests.{format}", get(requests).post(post_request))
        .route("/v2/services/{file}", get(definition))
        .route("/v2/requests/{file}", get(one_request))
        .fallback(unknown)
        .method_not_allowed_fallback(wrong_method)
}

/// A refusal of these routes.
#[derive(Debug)]
pub struct Refused {
    status: StatusCode,
    description: String,
}

impl Refused {
    fn bad(description: impl Into<String>) -> Refused {
        Refused { status: StatusCode::BAD_REQUEST, description: description.into() }
    }

    fn forbidden(description: impl Into<String>) -> Refused {
        Refused { status: StatusCode::FORBIDDEN, description: description.into() }
    }

    fn not_found(description: impl Into<String>) -> Refused {
        Refused { status: StatusCode::NOT_FOUND, description: description.into() }
    }

    fn answer(&self, format: Format) -> Response {
        wire::refusal(format, self.status, &self.description)
    }
}

/// A refusal of the edge (`guard`) on one of these routes: said as the spec's 400 (the
/// request: its size, its speed, its host), or 403 (who sent it: another site, too many at once).
pub fn edge_refusal(format: Format, refused: &super::AppError) -> Response {
    use super::AppError;
    let status = match refused {
        AppError::ForeignOrigin(_) | AppError::TooManyConnections(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    };
    wire::refusal(format, status, &refused.to_string())
}

/// A refusal with the format to say it in.
#[derive(Debug)]
pub struct Said(Format, Refused);

impl IntoResponse for Said {
    fn into_response(self) -> Response {
        self.1.answer(self.0)
    }
}

/// What a handler answers: its answer, or a refusal made before there was one (an unknown
/// format).
type Reply = Result<Response, Said>;

/// An answer of these routes: `root` (the XML document element) holding the node.
type Answer = Result<(&'static str, Node), Refused>;

/// A path's part, or 400 when it is not UTF-8 text.
type Part = Result<Path<String>, PathRejection>;

fn part(part: Part) -> Result<String, Said> {
    part.map(|Path(part)| part)
        .map_err(|e| Said(Format::Json, Refused::bad(format!("the path cannot be read: {e}"))))
}

/// The format `file` asks for and the name before it, or a refusal.
fn format_of(file: &str) -> Result<(&str, Format), Said> {
    Format::split(file).ok_or_else(|| unknown_format(file))
}

/// The format a `.{format}` route was asked for, or a refusal.
fn format(extension: Part) -> Result<Format, Said> {
    let extension = part(extension)?;
    Format::split(&format!(".{extension}"))
        .map(|(_, f)| f)
        .ok_or_else(|| unknown_format(&extension))
}

fn unknown_format(asked: &str) -> Said {
    Said(Format::Json, Refused::not_found(format!("{asked:?}: ask for .json or .xml")))
}

fn respond(format: Format, answer: Answer) -> Response {
    match answer {
        Ok((root, node)) => format.answer(StatusCode::OK, root, &node),
        Err(refused) => refused.answer(format),
    }
}

/// The path asked for, without its format: what a refusal names.
fn resource(uri: &OriginalUri) -> &str {
    let path = uri.path();
    Format::split(path).map_or(path, |(name, _)| name)
}

async fn unknown(uri: OriginalUri) -> Response {
    Refused::not_found(format!("no such Open311 resource: {}", resource(&uri)))
        .answer(Format::of_path(uri.path()))
}

async fn wrong_method(uri: OriginalUri) -> Response {
    Refused::bad(format!("{} does not take that method", resource(&uri)))
        .answer(Format::of_path(uri.path()))
}

/// The query's parameters, in order.
fn parameters(query: Option<&str>) -> Result<Vec<(String, String)>, Refused> {
    serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|e| Refused::bad(format!("the query cannot be read: {e}")))
}

/// A parameter's value; an empty one counts as absent.
fn parameter<'a>(parameters: &'a [(String, String)], name: &str) -> Option<&'a str> {
    parameters.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

/// The community `jurisdiction_id` names; without it, the one this server serves.
fn jurisdiction(app: &App, given: Option<&str>) -> Result<Arc<Community>, Refused> {
    let office = app.hub.store().office();
    let communities = &office.office.communities;
    let mut all = communities.values();
    match (given, all.next(), all.next()) {
        (Some(id), _, _) => communities
            .get(&CommunityId(id.into()))
            .cloned()
            .ok_or_else(|| Refused::not_found(format!("no jurisdiction {id:?} here"))),
        (None, Some(only), None) => Ok(only.clone()),
        (None, _, _) => {
            Err(Refused::bad("jurisdiction_id is required: this server serves several communities"))
        }
    }
}

/// Where the endpoint is and what it speaks.
#[utoipa::path(get, path = "/open311/discovery.{format}", tag = "open311",
    params(("format" = String, Path, description = "`json` or `xml`")),
    responses(
        (status = 200, description = "The discovery document", content((schema::Discovery = "application/json"), (String = "text/xml"))),
        (status = 404, description = "An unknown format", content((Vec<schema::Error> = "application/json"), (String = "text/xml"))),
    ))]
async fn discovery(
    State(app): State<App>,
    extension: Part,
    headers: axum::http::HeaderMap,
) -> Reply {
    let format = format(extension)?;
    let office = app.hub.store().office();
    let names: Vec<&str> = office.office.communities.values().map(|c| c.name.as_str()).collect();
    // The address the client used (the guard let only our own names through); https when a
    // TLS proxy serves this server (`--secure-cookies`).
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok());
    let scheme = if app.secure_cookies { "https" } else { "http" };
    let url = format!("{scheme}://{}/open311/v2", host.unwrap_or("127.0.0.1"));
    let endpoint = Node::Record(vec![
        ("specification", Node::text(SPECIFICATION)),
        ("url", Node::text(url)),
        ("changeset", Node::text(CHANGESET)),
        ("type", Node::text("production")),
        ("formats", Node::list("format", ["text/xml", "application/json"].map(Node::text))),
    ]);
    let node = Node::Record(vec![
        ("changeset", Node::text(CHANGESET)),
        ("contact", Node::text(names.join("、"))),
        ("key_service", Node::text("an api_key is issued by the office's supervisors (接口密钥)")),
        ("endpoints", Node::list("endpoint", [endpoint])),
    ]);
    Ok(format.answer(StatusCode::OK, "discovery", &node))
}

/// The service `code` names: a category of `community` still offered.
fn service<'a>(community: &'a Community, code: &str) -> Option<&'a hongfan_shared::Category> {
    community.categories.iter().find(|c| c.id.0 == code && !c.retired)
}

/// When this interface last changed (discovery's `changeset`).
const CHANGESET: &str = "2026-12-07T00:00:00+08:00";

/// The jurisdiction's services: its categories.
#[utoipa::path(get, path = "/open311/v2/services.{format}", tag = "open311",
    params(("format" = String, Path, description = "`json` or `xml`"),
        ("jurisdiction_id" = Option<String>, Query, description = "The community; needed only where several are served")),
    responses(
        (status = 200, description = "Every category offered", content((Vec<schema::Service> = "application/json"), (String = "text/xml"))),
        (status = 400, description = "No jurisdiction_id where several communities are served", content((Vec<schema::Error> = "application/json"), (String = "text/xml"))),
        (status = 404, description = "An unknown format or jurisdiction", content((Vec<schema::Error> = "application/json"), (String = "text/xml"))),
    ))]
async fn services(State(app): State<App>, extension: Part, RawQuery(query): RawQuery) -> Reply {
    let format = format(extension)?;
    let answer = (|| {
        let parameters = parameters(query.as_deref())?;
        let community = jurisdiction(&app, parameter(&parameters, "jurisdiction_id"))?;
        let offered =
            community.categories.iter().filter(|c| service(&community, &c.id.0).is_some());
        let services = offered.map(|category| {
            Node::Record(vec![
                ("service_code", Node::text(category.id.0.clone())),
                ("service_name", Node::text(category.name.clone())),
                ("description", Node::text(category.name_en.clone())),
                ("metadata", Node::Bool(true)),
                ("type", Node::text("realtime")),
                ("keywords", Node::text(category.phrases.join(","))),
                ("group", Node::text(community.name.clone())),
            ])
        });
        Ok(("services", Node::list("service", services)))
    })();
    Ok(respond(format, answer))
}

/// What a request of one service may carry beyond its place.
#[utoipa::path(get, path = "/open311/v2/services/{service_code}.{format}", tag = "open311",
    params(("service_code" = String, Path, description = "A category's id"), ("format" = String, Path, description = "`json` or `xml`"),
        ("jurisdiction_id" = Option<String>, Query, description = "The community; needed only where several are served")),
    responses(
        (status = 200, description = "The service's attributes", content((schema::ServiceDefinition = "application/json"), (String = "text/xml"))),
        (status = 400, description = "No jurisdiction_id where several communities are served", content((Vec<schema::Error> = "application/json"), (String = "text/xml"))),
        (status = 404, description = "An unknown format, jurisdiction or service", content((Vec<schema::Error> = "application/json"), (String = "text/xml"))),
    ))]
async fn definition(State(app): State<App>, file: Part, RawQuery(query): RawQuery) -> Reply {
    let file = part(file)?;
    let (code, format) = format_of(&file)?;
    let answer = (|| {
        let parameters = parameters(query.as_deref())?;
        let community = jurisdiction(&app, parameter(&parameters, "jurisdiction_id"))?;
        let category = service(&community, code)
            .ok_or_else(|| Refused::not_found(format!("no service {code:?}")))?;
        let node = Node::Record(vec![
            ("service_code", Node::text(category.id.0.clone())),
            (
                "attributes",
                Node::list("attribute", ATTRIBUTES.iter().zip(1..).map(Attribute::node)),
            ),
        ]);
        Ok(("service_definition", node))
    })();
    Ok(respond(format, answer))
}

/// An attribute of every service's definition.
struct Attribute {
    code: &'static str,
    datatype: &'static str,
    description: &'static str,
    datatype_description: &'static str,
    /// `(key, name)` of a list's values.
    values: &'static [(&'static str, &'static str)],
}

/// What a request may add beyond the place (`address_id`): the unit, the room, how urgent.
const ATTRIBUTES: &[Attribute] = &[
    Attribute {
        code: "unit",
        datatype: "string",
        description: "单元 (unit)",
        datatype_description: "as the community writes it, for example 1单元; at most 20 characters",
        values: &[],
    },
    Attribute {
        code: "room",
        datatype: "string",
        description: "门牌号 (room)",
        datatype_description: "for example 502; at most 20 characters",
        values: &[],
    },
    Attribute {
        code: "urgency",
        datatype: "singlevaluelist",
        description: "紧急程度 (urgency)",
        datatype_description: "normal when not given",
        values: &[("normal", "一般"), ("urgent", "紧急")],
    },
];

impl Attribute {
    fn node((attribute, order): (&Attribute, i64)) -> Node {
        let mut fields = vec![
            ("variable", Node::Bool(true)),
            ("code", Node::text(attribute.code)),
            ("datatype", Node::text(attribute.datatype)),
            ("required", Node::Bool(false)),
            ("datatype_description", Node::text(attribute.datatype_description)),
            ("order", Node::Number(order)),
            ("description", Node::text(attribute.description)),
        ];
        if !attribute.values.is_empty() {
            let values = attribute.values.iter().map(|(key, name)| {
                Node::Record(vec![("key", Node::text(*key)), ("name", Node::text(*name))])
            });
            fields.push(("values", Node::list("value", values)));
        }
        Node::Record(fields)
    }
}

/// The jurisdiction's service requests (every incident, whatever reported it), newest first:
/// at most 1,000, reported within 90 days (the last 90 without dates).
#[utoipa::path(get, path = "/open311/v2/requests.{format}", tag = "open311",
    params(("format" = String, Path, description = "`json` or `xml`"),
        ("jurisdiction_id" = Option<String>, Query, description = "The community; needed only where several are served"),
        ("service_request_id" = Option<String>, Query, description = "Ids, comma-separated: every other filter is then ignored"),
        ("service_code" = Option<String>, Query, description = "Category ids, comma-separated"),
        ("start_date" = Option<String>, Query, description = "W3C datetime (or date, in Beijing time): reported at or after"),
        ("end_date" = Option<String>, Query, description = "W3C datetime (or date): reported at or before; at most 90 days after start_date"),
        ("status" = Option<String>, Query, description = "`open`, `closed`, comma-separated")),
    responses(
        (status = 200, description = "The requests", content((Vec<schema::ServiceRequest> = "application/json"), (String = "text/xml"))),
        (status = 400, description = "A filter that cannot be read, a span over 90 days, no jurisdiction_id where several communities are served", content((Vec<schema::Error> = "application/json"), (String = "text/xml"))),
        (status = 403, description = "The store cannot be read now", content((Vec<schema::Error> = "application/json"), (String = "text/xml"))),
        (status = 404, description = "An unknown format or jurisdiction", content((Vec<schema::Error> = "application/json"), (String = "text/xml"))),
    ))]
async fn requests(State(app): State<App>, extension: Part, RawQuery(query): RawQuery) -> Reply {
    Ok(respond(format(extension)?, find(&app, query.as_deref()).await))
}

async fn find(app: &App, query: Option<&str>) -> Answer {
    let parameters = parameters(query)?;
    let community = jurisdiction(app, parameter(&parameters, "jurisdiction_id"))?;
    let store = app.hub.store();
    let ids: Vec<IncidentId> = match parameter(&parameters, "service_request_id") {
        // Named requests: every other filter is ignored, as the spec says.
        Some(named) => named
            .split(',')
            .map(|id| {
                id.trim()
                    .parse()
                    .map(IncidentId)
                    .map_err(|_| Refused::bad(format!("service_request_id {id:?} is not a number")))
            })
            .collect::<Result<_, _>>()?,
        None => {
            let filter = Filter::read(&parameters, store.now())?;
            let query = hongfan_shared::audit::AuditQuery {
                from: filter.start,
                to: filter.end,
                compound: None,
                worker: None,
                category: None,
                within: Some(community.compounds.iter().map(|c| c.id.clone()).collect()),
            };
            let mut rows = store.audit_rows(&query).map_err(unavailable)?;
            rows.retain(|row| filter.takes(row.status, &row.category.0));
            rows.reverse();
            rows.into_iter().map(|row| row.id).collect()
        }
    };
    Ok(("service_requests", Node::list("request", requests_of(app, &community, ids).await?)))
}

/// The requests `ids` name that are the jurisdiction's, at most `MOST_REQUESTS`.
async fn requests_of(
    app: &App,
    community: &Community,
    mut ids: Vec<IncidentId>,
) -> Result<Vec<Node>, Refused> {
    ids.truncate(MOST_REQUESTS);
    let found = app.hub.store().incidents_with_times(ids).await.map_err(unavailable)?;
    Ok(found
        .iter()
        .filter(|(incident, _)| community.compound(&incident.report.compound).is_some())
        .map(|(incident, updated)| request(community, incident, *updated))
        .collect())
}

/// A report from another system, form-encoded, with its `api_key` (docs/open311.md): needs
/// `service_code`, `address_id` and `description`; takes `lat`/`long`, `phone`,
/// `attribute[unit]`, `attribute[room]`, `attribute[urgency]`; keeps nothing else.
#[utoipa::path(post, path = "/open311/v2/requests.{format}", tag = "open311",
    params(("format" = String, Path, description = "`json` or `xml`")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "api_key, jurisdiction_id, service_code, address_id, description, lat, long, phone, attribute[unit], attribute[room], attribute[urgency]"),
    responses(
        (status = 200, description = "Stored: its id and ticket", content((Vec<schema::Posted> = "application/json"), (String = "text/xml"))),
        (status = 400, description = "A field missing, unknown or not valid; a body over 16 KiB or not UTF-8", content((Vec<schema::Error> = "application/json"), (String = "text/xml"))),
        (status = 403, description = "No api_key, or one unknown, revoked or of another jurisdiction; too many reports from this key; a standby", content((Vec<schema::Error> = "application/json"), (String = "text/xml"))),
        (status = 404, description = "An unknown format or jurisdiction", content((Vec<schema::Error> = "application/json"), (String = "text/xml"))),
    ))]
async fn post_request(State(app): State<App>, extension: Part, body: axum::body::Bytes) -> Reply {
    let format = format(extension)?;
    let answer = async {
        let fields = form(&body)?;
        let (who, community, report) = submission(&app, &fields)?;
        let store = app.hub.store();
        store.metrics().reports_received.inc();
        let (hub, key) = (app.hub.clone(), who.actor.id.clone());
        let admit = Box::new(move || hub.report_limiter().admit(&key));
        let request_id = format!("open311-{}", hex::encode(rand::random::<[u8; 8]>()));
        let reported = store
            .report_if(&who, &request_id, report, admit)
            .await
            .map_err(|e| store_refusal(&e))?;
        let incident = reported.incident;
        tracing::info!(incident = incident.id.0, key = %who.actor.id, "Open311 report stored");
        let posted = Node::Record(vec![
            ("service_request_id", Node::text(incident.id.0.to_string())),
            (
                "service_notice",
                Node::text(format!(
                    "工单 {} 已交{}",
                    incident.ticket.0,
                    grid(&community, &incident)
                )),
            ),
            ("account_id", Node::Nothing),
        ]);
        Ok(("service_requests", Node::list("request", [posted])))
    };
    Ok(respond(format, answer.await))
}

/// The grid (网格) an incident's compound belongs to, as residents know it.
fn grid(community: &Community, incident: &Incident) -> String {
    community.compound(&incident.report.compound).map_or_else(String::new, |c| c.grid.clone())
}

/// A form-encoded body's fields, or 400 when it is not one of UTF-8 text.
fn form(body: &[u8]) -> Result<Vec<(String, String)>, Refused> {
    let bad =
        || Refused::bad("the body is not a form (application/x-www-form-urlencoded) of UTF-8 text");
    let decode = |part: &[u8]| -> Result<String, Refused> {
        let spaced: Vec<u8> = part.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
        let decoded: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
        String::from_utf8(decoded).map_err(|_| bad())
    };
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut halves = pair.splitn(2, |&b| b == b'=');
            let name = decode(halves.next().unwrap_or_default())?;
            let value = decode(halves.next().unwrap_or_default())?;
            Ok((name, value))
        })
        .collect()
}

/// The fields of a POST the spec names that hongfan does not keep: nobody's email, name, device
/// or account is needed to fix a lamp (个人信息保护法: no more than the purpose needs).
const NOT_KEPT: &[&str] =
    &["email", "first_name", "last_name", "device_id", "account_id", "media_url", "address_string"];

/// Who sent a POST, for which community, and the report it makes; or why not.
fn submission(
    app: &App,
    fields: &[(String, String)],
) -> Result<(hongfan_shared::Principal, Arc<Community>, hongfan_shared::Report), Refused> {
    let field = |name: &str| parameter(fields, name).map(str::trim).filter(|v| !v.is_empty());
    let store = app.hub.store();
    let key = field("api_key")
        .ok_or_else(|| Refused::forbidden("an api_key is needed to post a request"))?;
    let key = crate::office::keys::verify(store, key)
        .ok_or_else(|| Refused::forbidden("this api_key is unknown or revoked"))?;
    let community = jurisdiction(app, Some(field("jurisdiction_id").unwrap_or(&key.community.0)))?;
    if community.id != key.community {
        return Err(Refused::forbidden(format!(
            "this api_key is not for jurisdiction {:?}",
            community.id.0
        )));
    }
    let code = field("service_code").ok_or_else(|| Refused::bad("service_code is required"))?;
    let category = service(&community, code)
        .ok_or_else(|| Refused::bad(format!("service_code {code:?} is not a service here")))?;
    match (field("lat"), field("long")) {
        (None, None) => {}
        (Some(lat), Some(long)) => {
            let within = |value: &str, bound: f64| {
                value.parse::<f64>().is_ok_and(|v| v.is_finite() && v.abs() <= bound)
            };
            if !within(lat, 90.0) || !within(long, 180.0) {
                return Err(Refused::bad("lat is -90 to 90 and long -180 to 180"));
            }
        }
        _ => return Err(Refused::bad("lat and long come together")),
    }
    let place = field("address_id").ok_or_else(|| {
        Refused::bad("address_id is required: <compound>/<building>, or <compound> for 公共区域")
    })?;
    let (compound, building) = match place.split_once('/') {
        Some((compound, building)) => (compound, building.trim()),
        None => (place, hongfan_shared::community::PUBLIC_AREA),
    };
    let compound = community.compounds.iter().find(|c| c.id.0 == compound).ok_or_else(|| {
        Refused::bad(format!("address_id {place:?}: no compound {compound:?} here"))
    })?;
    let mut unit = String::new();
    let mut room = String::new();
    let mut urgency = hongfan_shared::Urgency::Normal;
    let (mut external_id, mut due) = (None, None);
    for (name, value) in fields {
        let Some(attribute) = name.strip_prefix("attribute[").and_then(|n| n.strip_suffix(']'))
        else {
            let known = ["api_key", "jurisdiction_id", "service_code", "lat", "long", "address_id"];
            if known.contains(&name.as_str())
                || NOT_KEPT.contains(&name.as_str())
                || ["description", "phone"].contains(&name.as_str())
            {
                continue;
            }
            return Err(Refused::bad(format!("{name:?} is not a field of a request")));
        };
        match attribute {
            "unit" => unit = value.trim().to_owned(),
            "room" => room = value.trim().to_owned(),
            "urgency" => {
                urgency = match value.trim() {
                    "normal" | "" => hongfan_shared::Urgency::Normal,
                    "urgent" => hongfan_shared::Urgency::Urgent,
                    other => {
                        return Err(Refused::bad(format!(
                            "attribute[urgency] {other:?}: normal or urgent"
                        )));
                    }
                }
            }
            // 上级派单: a platform's key only.
            "external_id" if key.upstream.is_some() => external_id = Some(value.trim().to_owned()),
            "due" if key.upstream.is_some() => {
                let at = w3c_parse("attribute[due]", value.trim())?;
                if at <= store.now() {
                    return Err(Refused::bad("attribute[due] has passed"));
                }
                due = Some(at);
            }
            other => {
                return Err(Refused::bad(format!("no attribute {other:?} (see services/{code})")));
            }
        }
    }
    let order = match &key.upstream {
        Some(upstream) => {
            let external_id = external_id.filter(|id| !id.is_empty()).ok_or_else(|| {
                Refused::bad("attribute[external_id] is required: the platform's own number")
            })?;
            Some(hongfan_shared::WorkOrder {
                key: key.id.clone(),
                source: upstream.source,
                external_id,
                due,
            })
        }
        None => None,
    };
    let description =
        field("description").ok_or_else(|| Refused::bad("description is required"))?;
    let report = hongfan_shared::Report {
        compound: compound.id.clone(),
        category: category.id.clone(),
        urgency,
        building: building.to_owned(),
        unit,
        room,
        description: description.to_owned(),
        phone: field("phone").map(str::to_owned),
        attachments: Vec::new(),
        order,
    };
    let actor = hongfan_shared::Actor {
        id: key.id.clone(),
        name: key.name.clone(),
        role: hongfan_shared::Role::Platform,
    };
    let scope = hongfan_shared::Scope::Compounds(
        community.compounds.iter().map(|c| c.id.clone()).collect(),
    );
    Ok((hongfan_shared::Principal { actor, scope }, community, report))
}

/// A report the store refused: 400 for what the request said (too long, a bad phone), 403 for
/// what the sender may not do now (too many, a standby, a store that cannot write).
fn store_refusal(e: &crate::store::StoreError) -> Refused {
    use hongfan_shared::protocol::ErrorCode;
    let body = crate::hub::wire_error(e);
    match body.code {
        ErrorCode::RateLimited
        | ErrorCode::Standby
        | ErrorCode::Unavailable
        | ErrorCode::Forbidden => Refused::forbidden(body.message),
        _ => Refused::bad(body.message),
    }
}

/// One service request, as a list of one.
#[utoipa::path(get, path = "/open311/v2/requests/{service_request_id}.{format}", tag = "open311",
    params(("service_request_id" = String, Path, description = "An incident's id"), ("format" = String, Path, description = "`json` or `xml`"),
        ("jurisdiction_id" = Option<String>, Query, description = "The community; needed only where several are served")),
    responses(
        (status = 200, description = "The request", content((Vec<schema::ServiceRequest> = "application/json"), (String = "text/xml"))),
        (status = 400, description = "No jurisdiction_id where several communities are served", content((Vec<schema::Error> = "application/json"), (String = "text/xml"))),
        (status = 403, description = "The store cannot be read now", content((Vec<schema::Error> = "application/json"), (String = "text/xml"))),
        (status = 404, description = "An unknown format, jurisdiction or request", content((Vec<schema::Error> = "application/json"), (String = "text/xml"))),
    ))]
async fn one_request(State(app): State<App>, file: Part, RawQuery(query): RawQuery) -> Reply {
    let file = part(file)?;
    let (id, format) = format_of(&file)?;
    let answer = async {
        let parameters = parameters(query.as_deref())?;
        let community = jurisdiction(&app, parameter(&parameters, "jurisdiction_id"))?;
        let missing = || Refused::not_found(format!("no service request {id:?}"));
        let id = id.parse().map(IncidentId).map_err(|_| missing())?;
        let found = requests_of(&app, &community, vec![id]).await?;
        if found.is_empty() {
            return Err(missing());
        }
        Ok(("service_requests", Node::list("request", found)))
    };
    Ok(respond(format, answer.await))
}

/// The store cannot answer: said as a client error, as the spec knows no other.
fn unavailable(e: crate::store::StoreError) -> Refused {
    tracing::warn!(error = %e, "an Open311 read failed");
    Refused::forbidden("the server cannot read its store now; try again later")
}

/// What `GET requests` was asked for, when no request is named.
struct Filter {
    start: Timestamp,
    end: Timestamp,
    codes: Option<Vec<String>>,
    statuses: Option<Vec<bool>>,
}

impl Filter {
    fn read(parameters: &[(String, String)], now: Timestamp) -> Result<Filter, Refused> {
        let date = |name: &str| parameter(parameters, name).map(|v| w3c_parse(name, v)).transpose();
        let (start, end) = match (date("start_date")?, date("end_date")?) {
            (Some(start), Some(end)) => (start, end),
            (Some(start), None) => (start, Timestamp(start.0.saturating_add(SPAN_MS))),
            (None, Some(end)) => (Timestamp(end.0.saturating_sub(SPAN_MS)), end),
            (None, None) => (Timestamp(now.0 - SPAN_MS), now),
        };
        if end.0 < start.0 {
            return Err(Refused::bad("end_date is before start_date"));
        }
        if end.0 - start.0 > SPAN_MS {
            return Err(Refused::bad("start_date to end_date spans more than 90 days"));
        }
        let list = |name: &str| {
            parameter(parameters, name)
                .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect::<Vec<_>>())
        };
        let statuses = list("status")
            .map(|names| {
                names
                    .iter()
                    .map(|s| match s.as_str() {
                        "open" => Ok(true),
                        "closed" => Ok(false),
                        other => Err(Refused::bad(format!("status {other:?}: open or closed"))),
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        // `to` of an audit query is exclusive; end_date is not, and names a whole second
        // when it gives no fraction (answers give datetimes to the second).
        let end = Timestamp(end.0 + if end.0 % 1000 == 0 { 1000 } else { 1 });
        Ok(Filter { start, end, codes: list("service_code"), statuses })
    }

    fn takes(&self, status: Status, code: &str) -> bool {
        self.codes.as_ref().is_none_or(|codes| codes.iter().any(|c| c == code))
            && self.statuses.as_ref().is_none_or(|open| open.contains(&is_open(status)))
    }
}

/// `open` while it waits, is held or is with the street office; `closed` once resolved,
/// cancelled or sent back.
fn is_open(status: Status) -> bool {
    status.is_open()
}

/// One service request, as `view::published` lets anyone see it; `updated` is when its last
/// event was recorded.
fn request(community: &Community, incident: &Incident, updated: Timestamp) -> Node {
    let Published {
        id,
        category,
        compound,
        building,
        description,
        status,
        status_notes,
        reported_at,
        resolve_by,
    } = view::published(incident, community);
    let place = community.compound(&compound);
    let compound_name = place.map_or_else(|| compound.0.clone(), |c| c.name.clone());
    let (address, address_id) = match &building {
        Some(building) => {
            (format!("{compound_name} {building}"), format!("{}/{building}", compound.0))
        }
        None => (compound_name, compound.0.clone()),
    };
    let service_name = community.category(&category).map(|c| c.name.clone());
    Node::Record(vec![
        ("service_request_id", Node::text(id.0.to_string())),
        ("status", Node::text(if is_open(status) { "open" } else { "closed" })),
        ("status_notes", Node::maybe(status_notes)),
        ("service_name", Node::maybe(service_name)),
        ("service_code", Node::text(category.0)),
        ("description", Node::maybe(description)),
        ("agency_responsible", Node::maybe(place.map(|c| c.grid.clone()))),
        ("service_notice", Node::Nothing),
        ("requested_datetime", Node::text(w3c(reported_at))),
        ("updated_datetime", Node::text(w3c(updated))),
        ("expected_datetime", Node::text(w3c(resolve_by))),
        ("address", Node::text(address)),
        ("address_id", Node::text(address_id)),
        ("zipcode", Node::Nothing),
        ("lat", Node::Nothing),
        ("long", Node::Nothing),
        ("media_url", Node::Nothing),
    ])
}

/// Beijing time, which the W3C form of every datetime carries.
const OFFSET: time::UtcOffset = time::macros::offset!(+8);

/// `2026-11-02T09:00:00+08:00`.
pub fn w3c(at: Timestamp) -> String {
    let seconds = at.0.div_euclid(1000);
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .map(|t| t.to_offset(OFFSET))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// A W3C datetime with its offset (`2026-11-02T09:00:00+08:00`, `…Z`), or a date, taken as
/// midnight in Beijing.
fn w3c_parse(name: &str, value: &str) -> Result<Timestamp, Refused> {
    let wrong = || Refused::bad(format!("{name} {value:?} is not a W3C datetime"));
    // An offset's `+` sent unencoded arrives as a space.
    let value = &value.replace(' ', "+");
    let at = match time::OffsetDateTime::parse(value, &Rfc3339) {
        Ok(at) => at,
        Err(_) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            let date = time::Date::parse(value, &format).map_err(|_| wrong())?;
            date.midnight().assume_offset(OFFSET)
        }
    };
    let ms = at.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms).map(Timestamp).map_err(|_| wrong())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_are_w3c_in_beijing_time() {
        let nine = Timestamp(1_793_581_200_000);
        assert_eq!(w3c(nine), "2026-11-02T09:00:00+08:00");
        assert_eq!(w3c_parse("d", "2026-11-02T09:00:00+08:00").unwrap(), nine);
        assert_eq!(w3c_parse("d", "2026-11-02T01:00:00Z").unwrap(), nine);
        assert_eq!(w3c_parse("d", "2026-11-02").unwrap(), Timestamp(nine.0 - 9 * 3_600_000));
        assert!(w3c_parse("d", "yesterday").is_err());
    }
}
