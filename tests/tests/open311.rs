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
    // Without dates, the last 90 days: 91 days on, nothing.
    api.clock.advance(hongfan_shared::Millis::from_hours(91 * 24));
    // The timers that ran out meanwhile are recorded first (an update of the waiting one).
    api.app().hub.store().tick().await.unwrap();
    assert_eq!(asked(String::new()).await, Vec::<u64>::new());
    assert_eq!(asked("start_date=2026-11-01".into()).await.len(), 3);
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
