//! Open311 GeoReport v2 as a client written from the spec calls it: every route in JSON and in
//! XML (the two saying the same), every filter of `requests`, every refusal in the spec's shape,
//! and nothing personal in any public answer.

use hongfan_shared::{Action, IncidentId, Report};
use hongfan_tests::api::{Answer, Api};
use hongfan_tests::{kiosk, report, worker};
use serde_json::{Value, json};

/// Elements of the XML answers that hold a list, each of its items.
const LISTS: &[&str] =
    &["services", "service_requests", "errors", "attributes", "values", "endpoints", "formats"];

/// An XML answer read as the JSON one would be: a list element as an array, a record as an
/// object, an empty element as null, every scalar as its text.
fn xml_as_json(body: &[u8]) -> Value {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    // Each open element: its name, its children so far, its text.
    type Open = (String, Vec<(String, Value)>, String);
    let mut stack: Vec<Open> = Vec::new();
    let mut buffer = Vec::new();
    let finish = |name: &str, children: Vec<(String, Value)>, text: String| -> Value {
        if LISTS.contains(&name) {
            Value::Array(children.into_iter().map(|(_, v)| v).collect())
        } else if !children.is_empty() {
            Value::Object(children.into_iter().collect())
        } else if text.is_empty() {
            Value::Null
        } else {
            Value::String(text)
        }
    };
    loop {
        match reader.read_event_into(&mut buffer).expect("well-formed XML") {
            Event::Start(e) => {
                stack.push((String::from_utf8(e.name().0.to_vec()).unwrap(), vec![], String::new()))
            }
            Event::Empty(e) => {
                let name = String::from_utf8(e.name().0.to_vec()).unwrap();
                let value = finish(&name, vec![], String::new());
                stack.last_mut().expect("inside the root").1.push((name, value));
            }
            Event::Text(t) => {
                stack.last_mut().expect("text inside an element").2 += &t.decode().expect("UTF-8");
            }
            Event::GeneralRef(r) => {
                let entity = r.decode().expect("UTF-8");
                let text = match entity.as_ref() {
                    "lt" => "<",
                    "gt" => ">",
                    "amp" => "&",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("entity {other}"),
                };
                stack.last_mut().expect("inside an element").2 += text;
            }
            Event::End(_) => {
                let (name, children, text) = stack.pop().expect("balanced");
                let value = finish(&name, children, text);
                match stack.last_mut() {
                    Some(parent) => parent.1.push((name, value)),
                    None => return value,
                }
            }
            Event::Eof => panic!("no document element"),
            _ => {}
        }
        buffer.clear();
    }
}

/// Every scalar as its text, as XML says it.
fn as_text(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(as_text).collect()),
        Value::Object(fields) => {
            Value::Object(fields.iter().map(|(k, v)| (k.clone(), as_text(v))).collect())
        }
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Number(n) => Value::String(n.to_string()),
        Value::String(s) if s.is_empty() => Value::Null,
        other => other.clone(),
    }
}

/// `GET path` (without its extension) in both formats: the JSON answer, once the XML one is
/// held to it (same status, same content, its declaration and content type).
async fn both(api: &Api, path: &str) -> (u16, Value) {
    let (file, query) = path.split_once('?').map_or((path, ""), |(f, q)| (f, q));
    let query = if query.is_empty() { String::new() } else { format!("?{query}") };
    let json = api.get(&format!("{file}.json{query}"), &[]).await;
    let xml = api.get(&format!("{file}.xml{query}"), &[]).await;
    assert_eq!(json.header("content-type"), "application/json; charset=utf-8", "{path}");
    assert_eq!(xml.header("content-type"), "text/xml; charset=utf-8", "{path}");
    assert!(
        xml.body.starts_with(b"<?xml version=\"1.0\" encoding=\"utf-8\"?>"),
        "{path}: {}",
        String::from_utf8_lossy(&xml.body)
    );
    assert_eq!(json.status, xml.status, "{path}");
    let value = json.json();
    assert_eq!(xml_as_json(&xml.body), as_text(&value), "{path}: the XML says otherwise");
    (json.status, value)
}

/// A refusal in the spec's shape, in both formats: its status and description.
async fn refused(api: &Api, path: &str) -> (u16, String) {
    let (status, body) = both(api, path).await;
    let errors = body.as_array().unwrap_or_else(|| panic!("{path}: {body}"));
    assert_eq!(errors.len(), 1, "{path}: {body}");
    assert_eq!(errors[0]["code"], json!(status), "{path}: {body}");
    (status, errors[0]["description"].as_str().unwrap().to_owned())
}

/// What a resident told the kiosk or a worker wrote: never in a public answer.
const SECRETS: &[&str] = &[
    "13800001234",
    "1234",
    "2单元",
    "301",
    "独居老人王奶奶",
    "已电话联系王奶奶",
    "内部备注",
    "kiosk-c",
];

fn scan(path: &str, body: &Value) {
    let text = body.to_string();
    for secret in SECRETS {
        assert!(!text.contains(secret), "{path} shows {secret:?}: {text}");
    }
}

/// The tests' office with three incidents: a repair in c1 resolved (with a worker's note), a
/// 助老 in c2 resolved (private: its words are the family's), and a repair in c3 still waiting.
async fn office() -> (Api, [IncidentId; 3]) {
    let api = Api::open(|_| {}).await;
    let store = api.app().hub.store().clone();
    let lamp = store.report(&kiosk("c1"), "r1", report("c1", "楼道灯坏了")).await.unwrap();
    let wang = worker("wang", "c1");
    store.act(&wang, lamp.incident.id, Action::Claim).await.unwrap();
    let note = Action::Note { text: "内部备注".into() };
    store.act(&wang, lamp.incident.id, note).await.unwrap();
    let resolve = Action::Resolve { outcome: "已更换灯泡".into(), proof: None };
    store.act(&wang, lamp.incident.id, resolve).await.unwrap();
    let elderly = Report {
        category: hongfan_shared::CategoryId("elderly".into()),
        ..report("c2", "独居老人王奶奶需要送饭")
    };
    let meals = store.report(&kiosk("c2"), "r2", elderly).await.unwrap();
    let zhao = worker("zhao", "c2");
    store.act(&zhao, meals.incident.id, Action::Claim).await.unwrap();
    let resolve = Action::Resolve { outcome: "已电话联系王奶奶".into(), proof: None };
    store.act(&zhao, meals.incident.id, resolve).await.unwrap();
    let waiting = store.report(&kiosk("c3"), "r3", report("c3", "井盖松动")).await.unwrap();
    (api, [lamp.incident.id, meals.incident.id, waiting.incident.id])
}

#[tokio::test]
async fn every_read_route_answers_in_both_formats_and_shows_nothing_personal() {
    let (api, [lamp, meals, waiting]) = office().await;

    let (status, discovery) = both(&api, "/open311/discovery").await;
    assert_eq!(status, 200);
    let endpoint = &discovery["endpoints"][0];
    assert_eq!(endpoint["specification"], "http://wiki.open311.org/GeoReport_v2");
    assert_eq!(
        endpoint["url"], "http://127.0.0.1:8080/open311/v2",
        "absolute, as the client asked"
    );
    assert_eq!(discovery["contact"], "财工街社区");
    // Public: a dashboard on another site may read it.
    let read = api.get("/open311/v2/services.json", &[]).await;
    assert_eq!(read.header("access-control-allow-origin"), "*");
    assert_eq!(endpoint["formats"], json!(["text/xml", "application/json"]));

    let (_, services) = both(&api, "/open311/v2/services").await;
    let codes: Vec<&str> =
        services.as_array().unwrap().iter().map(|s| s["service_code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"repair") && codes.contains(&"elderly"), "{codes:?}");
    let repair = services.as_array().unwrap().iter().find(|s| s["service_code"] == "repair");
    let repair = repair.unwrap();
    assert_eq!(repair["service_name"], "设施报修");
    assert_eq!(repair["metadata"], true);
    assert_eq!(repair["type"], "realtime");
    assert!(repair["keywords"].as_str().unwrap().contains("楼道灯不亮,水管漏水"), "{repair}");

    let (_, definition) = both(&api, "/open311/v2/services/repair").await;
    assert_eq!(definition["service_code"], "repair");
    let attributes: Vec<&str> = definition["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["code"].as_str().unwrap())
        .collect();
    assert_eq!(attributes, ["unit", "room", "urgency"]);
    assert_eq!(
        definition["attributes"][2]["values"][1],
        json!({ "key": "urgent", "name": "紧急" })
    );

    let (_, requests) = both(&api, "/open311/v2/requests").await;
    let ids: Vec<&str> = requests
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["service_request_id"].as_str().unwrap())
        .collect();
    let id = |i: IncidentId| i.0.to_string();
    assert_eq!(ids, [id(waiting), id(meals), id(lamp)], "newest first");
    let lamp_request = &requests[2];
    assert_eq!(lamp_request["status"], "closed");
    assert_eq!(lamp_request["status_notes"], "已更换灯泡");
    assert_eq!(lamp_request["description"], "楼道灯坏了");
    assert_eq!(lamp_request["service_name"], "设施报修");
    assert_eq!(lamp_request["address_id"], "c1/3号楼");
    assert_eq!(lamp_request["address"], "第一小区 3号楼");
    assert_eq!(lamp_request["agency_responsible"], "第一网格");
    // T0 is 09:00 in Beijing; the W3C form carries the offset.
    assert_eq!(lamp_request["requested_datetime"], "2026-11-02T09:00:00+08:00");
    assert!(lamp_request["expected_datetime"].as_str().unwrap().ends_with("+08:00"));
    // A private category: its status, code, name, times and compound, nothing of the family.
    let meals_request = &requests[1];
    assert_eq!(meals_request["status"], "closed");
    assert_eq!(meals_request["service_code"], "elderly");
    assert_eq!(meals_request["address_id"], "c2");
    assert_eq!(meals_request["description"], Value::Null);
    assert_eq!(meals_request["status_notes"], Value::Null);
    assert_eq!(requests[0]["status"], "open");

    let (_, one) = both(&api, &format!("/open311/v2/requests/{}", id(lamp))).await;
    assert_eq!(one, json!([lamp_request]));

    // A report without a building is at the compound's 公共区域.
    let store = api.app().hub.store().clone();
    let courtyard = Report { building: String::new(), ..report("c1", "院里积水") };
    let courtyard = store.report(&worker("wang", "c1"), "r4", courtyard).await.unwrap();
    let (_, found) =
        both(&api, &format!("/open311/v2/requests/{}", id(courtyard.incident.id))).await;
    assert_eq!(found[0]["address_id"], "c1/公共区域");

    for (path, body) in [
        ("discovery", &discovery),
        ("services", &services),
        ("definition", &definition),
        ("requests", &requests),
        ("one", &one),
    ] {
        scan(path, body);
    }
}

#[tokio::test]
async fn every_filter_of_requests() {
    let (api, [lamp, meals, waiting]) = office().await;
    let ids = |body: Value| -> Vec<u64> {
        body.as_array()
            .unwrap()
            .iter()
            .map(|r| r["service_request_id"].as_str().unwrap().parse().unwrap())
            .collect()
    };
    let asked = |query: String| {
        let api = &api;
        async move { ids(both(api, &format!("/open311/v2/requests?{query}")).await.1) }
    };
    // Named requests: every other filter is ignored.
    let named = format!("service_request_id={},{}&status=open", lamp.0, meals.0);
    assert_eq!(asked(named).await, [lamp.0, meals.0]);
    assert_eq!(asked("service_code=repair".into()).await, [waiting.0, lamp.0]);
    assert_eq!(asked("service_code=elderly,repair".into()).await, [waiting.0, meals.0, lamp.0]);
    assert_eq!(asked("status=open".into()).await, [waiting.0]);
    assert_eq!(asked("status=closed".into()).await, [meals.0, lamp.0]);
    assert_eq!(asked("status=open,closed&service_code=repair".into()).await, [waiting.0, lamp.0]);
    assert_eq!(asked("jurisdiction_id=default".into()).await, [waiting.0, meals.0, lamp.0]);
    // Reported at 09:00 on 2026-11-02, Beijing time.
    let within = "start_date=2026-11-02T08:00:00%2B08:00&end_date=2026-11-02T10:00:00Z";
    assert_eq!(asked(within.into()).await.len(), 3);
    let after = "start_date=2026-11-02T09:30:00%2B08:00";
    assert_eq!(asked(after.into()).await, Vec::<u64>::new());
    let before = "end_date=2026-11-01";
    assert_eq!(asked(before.into()).await, Vec::<u64>::new());
    assert_eq!(asked("start_date=2026-11-01".into()).await.len(), 3);
    // An offset's `+` sent unencoded (a space) is still read.
    let unencoded = "start_date=2026-11-02T08:00:00+08:00";
    assert_eq!(asked(unencoded.into()).await.len(), 3);
    // end_date names its whole second: one reported half a second after it is within.
    api.clock.advance(hongfan_shared::Millis(500));
    let store = api.app().hub.store().clone();
    let late = store.report(&kiosk("c1"), "late", report("c1", "路灯闪")).await.unwrap();
    let second = "end_date=2026-11-02T09:00:00%2B08:00&service_code=repair";
    assert_eq!(asked(second.into()).await, [late.incident.id.0, waiting.0, lamp.0]);
    // Without dates, the last 90 days: 91 days on, nothing.
    api.clock.advance(hongfan_shared::Millis::from_hours(91 * 24));
    // The timers that ran out meanwhile are recorded first (an update of the waiting one).
    api.app().hub.store().tick().await.unwrap();
    assert_eq!(asked(String::new()).await, Vec::<u64>::new());
    assert_eq!(asked("start_date=2026-11-01".into()).await.len(), 4);
}

#[tokio::test]
async fn every_refusal_is_in_the_specs_shape() {
    let (api, _) = office().await;
    for (path, status, says) in [
        ("/open311/v2/services/parking", 404, "no service"),
        ("/open311/v2/services?jurisdiction_id=elsewhere", 404, "no jurisdiction"),
        ("/open311/v2/requests/99999", 404, "no service request"),
        ("/open311/v2/requests/abc", 404, "no service request"),
        ("/open311/v2/tickets", 404, "no such Open311 resource"),
        ("/open311/v2/requests?status=lost", 400, "status"),
        ("/open311/v2/requests?start_date=yesterday", 400, "W3C"),
        ("/open311/v2/requests?start_date=2026-01-01&end_date=2026-11-01", 400, "90 days"),
        ("/open311/v2/requests?start_date=2026-11-02&end_date=2026-11-01", 400, "before"),
        ("/open311/v2/requests?service_request_id=1,x", 400, "not a number"),
    ] {
        let (got, description) = refused(&api, path).await;
        assert_eq!(got, status, "{path}: {description}");
        assert!(description.contains(says), "{path}: {description}");
    }
    // A path that is not UTF-8, and /open311 itself at the edge.
    let raw = api.get("/open311/discovery.%FF", &[]).await;
    assert_eq!((raw.status, raw.json()[0]["code"].clone()), (400, json!(400)), "{raw:?}");
    let bare = api.get("/open311", &[("host", "evil.example")]).await;
    assert_eq!((bare.status, bare.json()[0]["code"].clone()), (400, json!(400)), "{bare:?}");
    // An unknown format is refused in JSON.
    let csv = api.get("/open311/v2/services.csv", &[]).await;
    assert_eq!(csv.status, 404);
    assert_eq!(csv.json()[0]["code"], 404);
    // The edge's refusals too: a name that is not ours, a body far too large.
    let rebound = api.get("/open311/v2/services.xml", &[("host", "evil.example")]).await;
    assert_eq!((rebound.status, rebound.header("content-type")), (400, "text/xml; charset=utf-8"));
    assert!(String::from_utf8_lossy(&rebound.body).contains("<errors><error><code>400</code>"));
    let large = api_post(&api, "/open311/v2/requests.json", vec![b'a'; 200 << 10]).await;
    assert_eq!(large.status, 400);
    assert_eq!(large.json()[0]["code"], 400, "{large:?}");
}

async fn api_post(api: &Api, path: &str, body: Vec<u8>) -> Answer {
    let request = axum::http::Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(body))
        .unwrap();
    api.send(request).await
}

/// Percent-encodes a form's fields, as a browser or the `georeport` client sends them.
fn encoded(fields: &[(&str, &str)]) -> Vec<u8> {
    fields
        .iter()
        .map(|(name, value)| {
            let escape = |text: &str| -> String {
                text.bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                            (b as char).to_string()
                        }
                        b' ' => "+".into(),
                        other => format!("%{other:02X}"),
                    })
                    .collect()
            };
            format!("{}={}", escape(name), escape(value))
        })
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// A supervisor issues a key on the admin API; the key.
async fn issued_key(api: &Api, name: &str) -> String {
    let boss = api.login("boss").await;
    let answer =
        api.post("/api/admin/open311/keys", &[("cookie", &boss)], &json!({ "name": name })).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let body = answer.json();
    assert_eq!(body["key"]["name"], name);
    assert_eq!(body["key"].get("secret"), None, "the hash is not shown");
    body["api_key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_system_with_a_key_posts_a_request_that_anyone_follows_and_nothing_personal_shows() {
    let api = Api::open(|_| {}).await;
    let key = issued_key(&api, "济阳街道办").await;
    // 500 Chinese characters, url-encoded: about 4.5 KB.
    let long = "路".repeat(499) + "灯";
    let fields = [
        ("api_key", key.as_str()),
        ("service_code", "repair"),
        ("address_id", "c1/3号楼"),
        ("lat", "35.41"),
        ("long", "116.59"),
        ("description", long.as_str()),
        ("attribute[unit]", "2单元"),
        ("attribute[room]", "301"),
        ("attribute[urgency]", "urgent"),
        ("phone", "13800001234"),
        ("email", "resident@example.org"),
        ("first_name", "秀兰"),
        ("last_name", "王"),
        ("device_id", "device-7"),
        ("account_id", "account-9"),
    ];
    let body = encoded(&fields);
    assert!(body.len() > 4500, "{}", body.len());
    let posted = api_post(&api, "/open311/v2/requests.xml", body).await;
    assert_eq!(posted.status, 200, "{posted:?}");
    assert_eq!(posted.header("content-type"), "text/xml; charset=utf-8");
    let posted = xml_as_json(&posted.body);
    let id = posted[0]["service_request_id"].as_str().unwrap().to_owned();
    assert!(posted[0]["service_notice"].as_str().unwrap().contains("第一网格"), "{posted}");

    // Anyone follows it; what the resident gave is not there.
    let (_, found) = both(&api, &format!("/open311/v2/requests/{id}")).await;
    assert_eq!(found[0]["status"], "open");
    assert_eq!(found[0]["address_id"], "c1/3号楼");
    assert_eq!(found[0]["description"], json!(long));
    let text = found.to_string();
    for personal in ["13800001234", "2单元", "301", "resident@", "秀兰", "device-7", "account-9"]
    {
        assert!(!text.contains(personal), "{personal}: {text}");
    }
    // A key unlocks nothing more in a GET.
    let with_key = api.get(&format!("/open311/v2/requests/{id}.json?api_key={key}"), &[]).await;
    assert_eq!(with_key.json(), found);

    // On the board and in the audit it is the key's holder's report, urgent, with the unit,
    // room and phone the grid worker needs; nothing else the POST said is kept.
    let incident = api.app().hub.store().incident(IncidentId(id.parse().unwrap())).await;
    let incident = incident.unwrap().unwrap();
    assert_eq!(incident.reported_by.name, "济阳街道办");
    assert_eq!(incident.reported_by.role, hongfan_shared::Role::Platform);
    assert_eq!(incident.report.urgency, hongfan_shared::Urgency::Urgent);
    assert_eq!((incident.report.unit.as_str(), incident.report.room.as_str()), ("2单元", "301"));
    assert_eq!(incident.report.phone.as_deref(), Some("13800001234"));
    let stored = serde_json::to_string(&incident).unwrap();
    for dropped in ["resident@", "秀兰", "device-7", "account-9", "35.41"] {
        assert!(!stored.contains(dropped), "{dropped} was kept: {stored}");
    }

    // A place without a building is 公共区域.
    let public = [
        ("api_key", key.as_str()),
        ("service_code", "sanitation"),
        ("address_id", "c2"),
        ("description", "垃圾桶满了"),
    ];
    let posted = api_post(&api, "/open311/v2/requests.json", encoded(&public)).await;
    assert_eq!(posted.status, 200, "{posted:?}");
    let id = posted.json()[0]["service_request_id"].as_str().unwrap().to_owned();
    let (_, found) = both(&api, &format!("/open311/v2/requests/{id}")).await;
    assert_eq!(found[0]["address_id"], "c2/公共区域");
}

#[tokio::test]
async fn a_post_without_a_live_key_or_with_a_wrong_field_is_refused_in_the_specs_shape() {
    let api = Api::open(|_| {}).await;
    let key = issued_key(&api, "12345 热线").await;
    let good = |extra: &[(&'static str, &'static str)]| {
        let mut fields = vec![
            ("service_code", "repair"),
            ("address_id", "c1/3号楼"),
            ("description", "楼道灯不亮"),
        ];
        fields.extend_from_slice(extra);
        fields
    };
    assert_eq!(post_form(&api, &key, good(&[]), false).await.0, 403);
    assert_eq!(post_form(&api, &key, good(&[("api_key", "key-1.0000")]), false).await.0, 403);
    for (extra, status, says) in [
        (&[("jurisdiction_id", "elsewhere")][..], 404, "no jurisdiction"),
        (&[("lat", "35.4")][..], 400, "together"),
        (&[("lat", "135.4"), ("long", "116.6")][..], 400, "-90 to 90"),
        (&[("lat", "north"), ("long", "116.6")][..], 400, "-90 to 90"),
        (&[("attribute[urgency]", "now")][..], 400, "normal or urgent"),
        (&[("attribute[colour]", "red")][..], 400, "no attribute"),
        (&[("nickname", "x")][..], 400, "not a field"),
        (&[("phone", "call me")][..], 400, "phone"),
    ] {
        let (got, description) = post_form(&api, &key, good(extra), true).await;
        assert_eq!((got, description.contains(says)), (status, true), "{extra:?}: {description}");
    }
    let without = |name: &str| good(&[]).into_iter().filter(|(n, _)| *n != name).collect();
    assert!(
        post_form(&api, &key, without("service_code"), true)
            .await
            .1
            .contains("service_code is required")
    );
    assert!(
        post_form(&api, &key, without("address_id"), true)
            .await
            .1
            .contains("address_id is required")
    );
    assert!(
        post_form(&api, &key, without("description"), true)
            .await
            .1
            .contains("description is required")
    );
    let parking = vec![("service_code", "parking"), ("address_id", "c1"), ("description", "x")];
    assert!(post_form(&api, &key, parking, true).await.1.contains("not a service"));
    let nowhere =
        vec![("service_code", "repair"), ("address_id", "c9/1号楼"), ("description", "x")];
    assert!(post_form(&api, &key, nowhere, true).await.1.contains("no compound"));
    let long = "灯".repeat(501);
    let (status, description) = post_form(
        &api,
        &key,
        good(&[])
            .into_iter()
            .filter(|(n, _)| *n != "description")
            .chain([("description", long.as_str())])
            .collect(),
        true,
    )
    .await;
    assert_eq!(status, 400, "{description}");
    // Bytes that are not UTF-8.
    let bad = format!("api_key={key}&service_code=repair&address_id=c1&description=%FF%FE");
    let refused = api_post(&api, "/open311/v2/requests.json", bad.into_bytes()).await;
    assert_eq!(refused.status, 400);
    assert!(refused.json()[0]["description"].as_str().unwrap().contains("UTF-8"));

    // Like a kiosk, a key has a burst of reports, then waits.
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(post_form(&api, &key, good(&[]), true).await.0);
    }
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 5, "{statuses:?}");
    assert_eq!(statuses.last(), Some(&403), "{statuses:?}");

    // Revoked, the key opens nothing.
    let boss = api.login("boss").await;
    let revoke = "/api/admin/open311/keys/key-1/revoke";
    let revoked = api.post(revoke, &[("cookie", &boss)], &json!({})).await;
    assert_eq!(revoked.status, 200, "{revoked:?}");
    api.clock.advance(hongfan_shared::Millis::from_mins(10));
    assert_eq!(post_form(&api, &key, good(&[]), true).await.0, 403);
    let listed = api.get("/api/admin/open311/keys", &[("cookie", &boss)]).await.json();
    assert_eq!(listed[0]["revoked"], true);
    // A worker issues nothing.
    let wang = api.login("wang").await;
    let refused =
        api.post("/api/admin/open311/keys", &[("cookie", &wang)], &json!({ "name": "x" })).await;
    assert_eq!(refused.status, 403);
}

/// POSTs `fields` (with `key` as `api_key` when `with_key`) in both formats: the status and
/// the description of a refusal (held the same in XML).
async fn post_form(
    api: &Api,
    key: &str,
    mut fields: Vec<(&str, &str)>,
    with_key: bool,
) -> (u16, String) {
    if with_key {
        fields.push(("api_key", key));
    }
    let body = encoded(&fields);
    let json = api_post(api, "/open311/v2/requests.json", body.clone()).await;
    let xml = api_post(api, "/open311/v2/requests.xml", body).await;
    assert_eq!(json.status, xml.status);
    let answer = json.json();
    if json.status != 200 {
        assert_eq!(xml_as_json(&xml.body), as_text(&answer), "the XML says otherwise");
        assert_eq!(answer[0]["code"], json!(json.status), "{answer}");
    }
    (json.status, answer[0]["description"].as_str().unwrap_or_default().to_owned())
}

/// The spec's bound: at most 1,000 requests in one answer, the newest.
#[tokio::test]
async fn a_thousand_requests_at_most_the_newest() {
    let api = Api::open(|_| {}).await;
    let store = api.app().hub.store().clone();
    let reports = (0..1_001).map(|n| {
        let store = store.clone();
        async move {
            let text = format!("第{n}盏路灯不亮");
            store.report(&kiosk("c1"), &format!("r{n}"), report("c1", &text)).await.unwrap()
        }
    });
    let reported = futures::future::join_all(reports).await;
    let newest = reported.iter().map(|r| r.incident.id.0).max().unwrap();
    let oldest = reported.iter().map(|r| r.incident.id.0).min().unwrap();
    let answer = api.get("/open311/v2/requests.json", &[]).await.json();
    let ids: Vec<u64> = answer
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["service_request_id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 1_000);
    assert_eq!(ids[0], newest);
    assert!(!ids.contains(&oldest), "the oldest is left out");
}

/// 上级派单: only a platform's key gives a work order; it must name it, and a deadline it
/// gives must lie ahead, and then replaces the category's.
#[tokio::test]
async fn a_platforms_key_posts_work_orders_with_their_number_and_deadline() {
    let api = Api::open(|_| {}).await;
    let plain = issued_key(&api, "社区 App").await;
    let boss = api.login("boss").await;
    let upstream = json!({
        "name": "济阳街道办",
        "upstream": { "source": "street_office", "webhook": "http://127.0.0.1:9/orders" },
    });
    let issued = api.post("/api/admin/open311/keys", &[("cookie", &boss)], &upstream).await.json();
    let platform = issued["api_key"].as_str().unwrap().to_owned();
    assert_eq!(issued["webhook_secret"].as_str().map(str::len), Some(48), "{issued}");
    let bad =
        json!({ "name": "x", "upstream": { "source": "street_office", "webhook": "ftp://x" } });
    let refused = api.post("/api/admin/open311/keys", &[("cookie", &boss)], &bad).await;
    assert_eq!((refused.status, refused.json()["code"].clone()), (400, json!("bad_webhook")));

    let order = |extra: &[(&'static str, &'static str)]| {
        let mut fields = vec![
            ("service_code", "repair"),
            ("address_id", "c1/3号楼"),
            ("description", "路灯不亮"),
        ];
        fields.extend_from_slice(extra);
        fields
    };
    let (status, says) =
        post_form(&api, &plain, order(&[("attribute[external_id]", "A-1")]), true).await;
    assert_eq!((status, says.contains("no attribute")), (400, true), "{says}");
    let (status, says) = post_form(&api, &platform, order(&[]), true).await;
    assert_eq!(
        (status, says.contains("attribute[external_id] is required")),
        (400, true),
        "{says}"
    );
    let past = [("attribute[external_id]", "A-1"), ("attribute[due]", "2026-11-01T09:00:00+08:00")];
    let (status, says) = post_form(&api, &platform, order(&past), true).await;
    assert_eq!((status, says.contains("has passed")), (400, true), "{says}");
    let long = "9".repeat(65);
    let (status, _) =
        post_form(&api, &platform, order(&[("attribute[external_id]", long.leak())]), true).await;
    assert_eq!(status, 400);

    // T0 is 09:00; due at 11:00 the same day, before the repair's 48 hours.
    let due =
        [("attribute[external_id]", "JY-0042"), ("attribute[due]", "2026-11-02T11:00:00+08:00")];
    let body = encoded(&[&order(&due)[..], &[("api_key", platform.as_str())]].concat());
    let posted = api_post(&api, "/open311/v2/requests.json", body).await;
    assert_eq!(posted.status, 200, "{posted:?}");
    let id = posted.json()[0]["service_request_id"].as_str().unwrap().to_owned();
    let (_, found) = both(&api, &format!("/open311/v2/requests/{id}")).await;
    assert_eq!(found[0]["expected_datetime"], "2026-11-02T11:00:00+08:00");
    assert!(!found.to_string().contains("JY-0042"), "the platform's number is its own business");
    let incident = api.app().hub.store().incident(IncidentId(id.parse().unwrap())).await;
    let order = incident.unwrap().unwrap().report.order.unwrap();
    assert_eq!(
        (order.external_id.as_str(), order.source),
        ("JY-0042", hongfan_shared::Source::StreetOffice)
    );
}
