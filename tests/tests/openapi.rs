//! The OpenAPI description at `/api/openapi.json` is the contract for HTTP clients: every route
//! it lists is called here, every answer's status must be one it documents, with the documented
//! content type, and every JSON body must match the documented schema. A route the description
//! lists that no call below reaches fails the test, and so does an answer it does not describe.

use std::collections::BTreeSet;

use hongfan_shared::protocol::{ClientMessage, ServerMessage};
use hongfan_tests::report;
use hongfan_tests::server::{PASSWORD, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

/// What a call sends.
struct Call {
    method: Method,
    /// The path template as the description writes it, e.g. `/api/audit/incidents/{id}`.
    template: &'static str,
    /// The path and query actually called.
    url: String,
    cookie: Option<String>,
    bearer: Option<String>,
    body: Option<Value>,
    bytes: Option<Vec<u8>>,
}

fn call(method: Method, template: &'static str, url: impl Into<String>) -> Call {
    Call { method, template, url: url.into(), cookie: None, bearer: None, body: None, bytes: None }
}

impl Call {
    fn cookie(mut self, cookie: &str) -> Call {
        self.cookie = Some(cookie.to_owned());
        self
    }
    fn bearer(mut self, token: &str) -> Call {
        self.bearer = Some(token.to_owned());
        self
    }
    fn json(mut self, body: Value) -> Call {
        self.body = Some(body);
        self
    }
    fn bytes(mut self, bytes: &[u8]) -> Call {
        self.bytes = Some(bytes.to_vec());
        self
    }
}

/// `/api/a/{b}` → `~1api~1a~1{b}`, as a JSON pointer segment.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

struct Checker {
    spec: Value,
    server_url: String,
    called: BTreeSet<(String, String)>,
    problems: Vec<String>,
}

impl Checker {
    async fn check(&mut self, c: Call) -> (u16, String) {
        let method = c.method.as_str().to_lowercase();
        let mut request = reqwest::Client::new()
            .request(c.method.clone(), format!("{}{}", self.server_url, c.url))
            .header("origin", &self.server_url);
        if let Some(cookie) = &c.cookie {
            request = request.header("cookie", cookie);
        }
        if let Some(token) = &c.bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = &c.body {
            request = request.json(body);
        }
        if let Some(bytes) = &c.bytes {
            request = request.body(bytes.clone());
        }
        let response = request.send().await.expect("http");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .to_owned();
        let text = response.text().await.unwrap_or_default();
        self.called.insert((method.clone(), c.template.to_owned()));
        let what = format!("{} {} → {status}", c.method, c.url);
        let pointer = format!("/paths/{}/{method}", escape(c.template));
        let Some(operation) = self.spec.pointer(&pointer) else {
            self.problems.push(format!("{what}: the description has no {method} {}", c.template));
            return (status, text);
        };
        let Some(answer) = operation.pointer(&format!("/responses/{status}")) else {
            self.problems.push(format!("{what}: status {status} is not described"));
            return (status, text);
        };
        let Some(content) = answer.get("content").and_then(Value::as_object) else {
            if !text.is_empty() {
                self.problems.push(format!("{what}: a body where none is described: {text}"));
            }
            return (status, text);
        };
        if !content.contains_key(&content_type) {
            self.problems.push(format!(
                "{what}: content type {content_type:?}, described: {:?}",
                content.keys().collect::<Vec<_>>()
            ));
            return (status, text);
        }
        if content_type == "application/json" {
            let body: Value = match serde_json::from_str(&text) {
                Ok(body) => body,
                Err(e) => {
                    self.problems.push(format!("{what}: not JSON ({e}): {text}"));
                    return (status, text);
                }
            };
            let schema_pointer = format!(
                "#{pointer}/responses/{status}/content/{}/schema",
                escape("application/json")
            );
            let mut schema = self.spec.clone();
            schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
            // A JSON pointer in a URI fragment: braces percent-encoded.
            schema["$ref"] = json!(schema_pointer.replace('{', "%7B").replace('}', "%7D"));
            let validator = jsonschema::validator_for(&schema).expect("the description compiles");
            for error in validator.iter_errors(&body) {
                self.problems.push(format!("{what}: at {}: {error}", error.instance_path()));
            }
        }
        (status, text)
    }
}

#[tokio::test]
async fn every_route_answers_as_the_openapi_description_says() {
    let server = TestServer::start().await;
    let spec: Value = reqwest::get(format!("{}/api/openapi.json", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    // Something to audit: a report with a voice note, and the slip's code for the status page.
    let voice = [&[0x1A, 0x45, 0xDF, 0xA3][..], b"a voice note"].concat();
    let c1_kiosk = server.pair_kiosk("c1").await;
    let attachment: hongfan_shared::Attachment = reqwest::Client::new()
        .post(format!("{}/api/attachments", server.url))
        .header("cookie", &c1_kiosk)
        .body(voice.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut kiosk = server.kiosk("c1").await;
    let with_voice = hongfan_shared::Report {
        attachments: vec![attachment.clone()],
        ..report("c1", "灯坏了")
    };
    kiosk.send(&ClientMessage::Report { request_id: "r1".into(), report: with_voice }).await;
    let (reported, _) = kiosk.recv_until(|m| matches!(m, ServerMessage::Reported { .. })).await;
    let ServerMessage::Reported { incident, key: Some(key), .. } = reported else {
        panic!("{reported:?}")
    };
    let slip = json!({ "ticket": incident.ticket.0, "key": key });
    let file = format!("/api/incidents/{}/attachments/{}", incident.id.0, attachment.id);

    let boss = server.login("boss").await;
    let wang = server.login("wang").await;
    let head = server.login("head").await;
    let mut community: Value =
        reqwest::get(format!("{}/api/community", server.url)).await.unwrap().json().await.unwrap();
    community["categories"][0]["phrases"] = json!(["门口有人摔倒"]);
    let kiosk_cookie = server.pair_kiosk("c2").await;
    let token = std::fs::read_to_string(server.data_dir().join("operator.token")).unwrap();
    // An API key for Open311's POST.
    let issued: Value = reqwest::Client::new()
        .post(format!("{}/api/admin/open311/keys", server.url))
        .header("cookie", &boss)
        .json(&json!({ "name": "12345 热线" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let posted = format!(
        "api_key={}&service_code=repair&address_id=c1&description=%E7%81%AF",
        issued["api_key"].as_str().unwrap()
    );
    let mut c = Checker {
        spec: spec.clone(),
        server_url: server.url.clone(),
        called: BTreeSet::new(),
        problems: Vec::new(),
    };
    use Method as M;
    let period = "from=0&to=9999999999999";
    let calls = vec![
        call(M::GET, "/healthz", "/healthz"),
        call(M::GET, "/metrics", "/metrics"),
        call(M::GET, "/metrics", "/metrics").cookie(&boss),
        call(M::GET, "/metrics", "/metrics").cookie(&wang),
        call(M::GET, "/metrics", "/metrics").bearer(token.trim()),
        call(M::GET, "/api/openapi.json", "/api/openapi.json"),
        call(M::GET, "/ws", "/ws"),
        call(M::GET, "/ws", "/ws").cookie(&wang),
        call(M::POST, "/api/login", "/api/login")
            .json(json!({ "login": "wang", "password": PASSWORD })),
        call(M::POST, "/api/login", "/api/login")
            .json(json!({ "login": "wang", "password": "wrong-password" })),
        call(M::POST, "/api/kiosk/pair", "/api/kiosk/pair")
            .json(json!({ "credential": server.kiosk_credential("c1") })),
        call(M::POST, "/api/kiosk/pair", "/api/kiosk/pair").json(json!({ "credential": "x.y" })),
        call(M::POST, "/api/login", "/api/login").json(json!({ "login": "x".repeat(5000) })),
        call(M::GET, "/api/me", "/api/me").cookie(&wang),
        call(M::GET, "/api/me", "/api/me?as=kiosk").cookie(&kiosk_cookie),
        call(M::GET, "/api/me", "/api/me"),
        call(M::GET, "/api/community", "/api/community"),
        call(M::GET, "/api/rules", "/api/rules"),
        call(M::GET, "/api/workers", "/api/workers").cookie(&boss),
        call(M::GET, "/api/workers", "/api/workers").cookie(&wang),
        call(M::GET, "/api/workers", "/api/workers"),
        call(M::GET, "/api/callbacks", "/api/callbacks").cookie(&boss),
        call(M::GET, "/api/callbacks", "/api/callbacks").cookie(&wang),
        call(M::GET, "/api/callbacks", "/api/callbacks"),
        call(M::GET, "/api/building-heads", "/api/building-heads").cookie(&wang),
        call(M::GET, "/api/building-heads", "/api/building-heads").cookie(&head),
        call(M::GET, "/api/building-heads", "/api/building-heads"),
        call(M::POST, "/api/patrols", "/api/patrols")
            .cookie(&head)
            .json(json!({ "buildings": ["3号楼"], "checked": "消防通道", "found": "" })),
        call(M::POST, "/api/patrols", "/api/patrols")
            .cookie(&head)
            .json(json!({ "buildings": [], "checked": "" })),
        call(M::POST, "/api/patrols", "/api/patrols").cookie(&wang).json(json!({})),
        call(M::POST, "/api/points", "/api/points")
            .cookie(&boss)
            .json(json!({ "head": "head", "points": 2, "reason": "组织楼道清理" })),
        call(M::POST, "/api/points", "/api/points")
            .cookie(&boss)
            .json(json!({ "head": "wang", "points": 2, "reason": "x" })),
        call(M::POST, "/api/points", "/api/points").cookie(&wang).json(json!({})),
        call(M::GET, "/api/points", "/api/points?year=2026").cookie(&boss),
        call(M::GET, "/api/points", "/api/points?year=soon").cookie(&boss),
        call(M::GET, "/api/points", "/api/points").cookie(&wang),
        call(M::GET, "/api/points/export", "/api/points/export").cookie(&boss),
        call(M::GET, "/api/points/export", "/api/points/export"),
        call(M::GET, "/api/audit/summary", format!("/api/audit/summary?{period}")).cookie(&boss),
        call(M::GET, "/api/audit/summary", "/api/audit/summary?from=soon").cookie(&boss),
        call(M::GET, "/api/audit/summary", format!("/api/audit/summary?{period}")).cookie(&wang),
        call(M::GET, "/api/audit/summary", "/api/audit/summary"),
        call(M::GET, "/api/audit/incidents", format!("/api/audit/incidents?{period}&only=open"))
            .cookie(&boss),
        call(M::GET, "/api/audit/incidents", "/api/audit/incidents"),
        call(M::GET, "/api/audit/incidents/{id}", "/api/audit/incidents/1").cookie(&boss),
        call(M::GET, "/api/audit/incidents/{id}", "/api/audit/incidents/99").cookie(&boss),
        call(M::GET, "/api/audit/export", format!("/api/audit/export?{period}")).cookie(&boss),
        call(M::GET, "/api/audit/export", format!("/api/audit/export?{period}&format=json"))
            .cookie(&boss),
        call(M::GET, "/api/audit/export", "/api/audit/export"),
        call(M::GET, "/api/operator/backup", "/api/operator/backup").bearer(token.trim()),
        call(M::GET, "/api/operator/backup", "/api/operator/backup").bearer("guess"),
        call(M::GET, "/api/admin/people", "/api/admin/people").cookie(&boss),
        call(M::GET, "/api/admin/people", "/api/admin/people").cookie(&wang),
        call(M::GET, "/api/admin/people", "/api/admin/people").bearer(token.trim()),
        call(M::POST, "/api/admin/people", "/api/admin/people")
            .cookie(&boss)
            .json(json!({ "login": "sun", "name": "孙丽", "role": "worker", "compounds": ["c2"] })),
        call(M::POST, "/api/admin/people", "/api/admin/people")
            .cookie(&boss)
            .json(json!({ "login": "sun", "role": "worker", "compounds": ["c2"] })),
        call(M::POST, "/api/admin/people", "/api/admin/people")
            .cookie(&boss)
            .json(json!({ "login": "Bad Login", "role": "worker", "compounds": ["c2"] })),
        call(M::POST, "/api/admin/people", "/api/admin/people").cookie(&boss).json(json!([])),
        call(M::PUT, "/api/admin/people/{login}", "/api/admin/people/sun")
            .cookie(&boss)
            .json(json!({ "name": "孙丽丽", "compounds": ["c2", "c3"] })),
        call(M::PUT, "/api/admin/people/{login}", "/api/admin/people/nobody")
            .cookie(&boss)
            .json(json!({ "name": "x", "compounds": ["c2"] })),
        call(M::POST, "/api/admin/people/{login}/reset", "/api/admin/people/sun/reset")
            .cookie(&boss),
        call(M::POST, "/api/admin/people/{login}/password", "/api/admin/people/sun/password")
            .bearer(token.trim())
            .json(json!({ "password": "long-enough-password" })),
        call(M::POST, "/api/admin/people/{login}/password", "/api/admin/people/sun/password")
            .bearer(token.trim())
            .json(json!({ "password": "short" })),
        call(M::POST, "/api/admin/people/{login}/disable", "/api/admin/people/nobody/disable")
            .cookie(&boss),
        call(M::POST, "/api/admin/people/{login}/disable", "/api/admin/people/li/disable"),
        call(M::POST, "/api/admin/people/{login}/disable", "/api/admin/people/li/disable")
            .cookie(&boss),
        call(M::POST, "/api/admin/people/{login}/enable", "/api/admin/people/li/enable")
            .cookie(&boss),
        call(M::GET, "/api/admin/kiosks", "/api/admin/kiosks").cookie(&boss),
        call(M::POST, "/api/admin/kiosks", "/api/admin/kiosks")
            .cookie(&boss)
            .json(json!({ "compound": "c3", "name": "第三小区驿站二号机" })),
        call(M::POST, "/api/admin/kiosks", "/api/admin/kiosks")
            .cookie(&boss)
            .json(json!({ "compound": "c9" })),
        call(M::POST, "/api/admin/kiosks/{id}/pairing", "/api/admin/kiosks/kiosk-1/pairing")
            .cookie(&boss),
        call(M::POST, "/api/admin/kiosks/{id}/pairing", "/api/admin/kiosks/kiosk-9/pairing")
            .cookie(&boss),
        call(M::POST, "/api/admin/kiosks/{id}/revoke", "/api/admin/kiosks/kiosk-9/revoke")
            .cookie(&boss),
        call(M::POST, "/api/admin/kiosks/{id}/revoke", "/api/admin/kiosks/kiosk-2/revoke")
            .cookie(&wang),
        call(M::POST, "/api/admin/kiosks/{id}/revoke", "/api/admin/kiosks/kiosk-2/revoke")
            .cookie(&boss),
        call(M::GET, "/api/admin/rota/{compound}", "/api/admin/rota/c1").cookie(&boss),
        call(M::GET, "/api/admin/rota/{compound}", "/api/admin/rota/c9").cookie(&boss),
        call(M::PUT, "/api/admin/rota/{compound}", "/api/admin/rota/c1").cookie(&boss).json(
            json!({ "week": [[{ "from": 510, "to": 720, "workers": ["wang"] }], [], [], [], [], [], []],
                    "otherwise": ["li"] }),
        ),
        call(M::PUT, "/api/admin/rota/{compound}", "/api/admin/rota/c1").cookie(&boss).json(
            json!({ "week": [[], [], [], [], [], [], []], "otherwise": ["zhao"] }),
        ),
        call(M::PUT, "/api/admin/community", "/api/admin/community")
            .cookie(&boss)
            .json(community.clone()),
        call(M::PUT, "/api/admin/community", "/api/admin/community")
            .cookie(&boss)
            .json(json!({ "name": "", "street_office": "", "compounds": [], "categories": [] })),
        call(M::PUT, "/api/admin/community", "/api/admin/community")
            .cookie(&wang)
            .json(community.clone()),
        call(M::GET, "/api/admin/history", "/api/admin/history").cookie(&boss),
        call(M::GET, "/api/admin/webhooks", "/api/admin/webhooks").cookie(&boss),
        call(M::GET, "/api/admin/webhooks", "/api/admin/webhooks").cookie(&wang),
        call(M::GET, "/api/admin/history", "/api/admin/history?limit=2&before=5").cookie(&boss),
        call(M::GET, "/api/admin/history", "/api/admin/history?limit=many").cookie(&boss),
        call(M::GET, "/api/admin/history", "/api/admin/history?points=true").cookie(&boss),
        call(M::POST, "/api/me/password", "/api/me/password")
            .cookie(&wang)
            .json(json!({ "current": "wrong-password", "new": "a-new-password" })),
        call(M::POST, "/api/me/password", "/api/me/password")
            .cookie(&wang)
            .json(json!({ "current": PASSWORD, "new": "a-new-password" })),
        call(M::POST, "/api/status", "/api/status").json(slip.clone()),
        call(M::POST, "/api/status", "/api/status")
            .json(json!({ "ticket": incident.ticket.0, "key": "0000000000" })),
        call(M::POST, "/api/status", "/api/status").json(json!({ "ticket": "1" })),
        call(M::POST, "/api/status/link", "/api/status/link").json(slip.clone()),
        call(M::POST, "/api/status/rate", "/api/status/rate")
            .json(json!({ "ticket": incident.ticket.0, "key": key, "rating": "satisfied" })),
        call(M::POST, "/api/attachments", "/api/attachments").cookie(&c1_kiosk).bytes(&voice),
        call(M::POST, "/api/attachments", "/api/attachments").cookie(&c1_kiosk).bytes(b"text"),
        call(M::POST, "/api/attachments", "/api/attachments").bytes(&voice),
        call(M::GET, "/api/incidents/{id}/attachments/{file}", file.clone()).cookie(&boss),
        call(M::GET, "/api/incidents/{id}/attachments/{file}", file.clone()),
        call(M::GET, "/api/incidents/{id}/attachments/{file}", format!("{file}0")).cookie(&boss),
        call(M::GET, "/api/admin/open311/keys", "/api/admin/open311/keys").cookie(&wang),
        call(M::POST, "/api/admin/open311/keys", "/api/admin/open311/keys")
            .cookie(&boss)
            .json(json!({ "name": "济阳街道办" })),
        call(M::POST, "/api/admin/open311/keys", "/api/admin/open311/keys")
            .cookie(&boss)
            .json(json!({ "name": "" })),
        call(M::POST, "/api/admin/open311/keys", "/api/admin/open311/keys")
            .cookie(&wang)
            .json(json!({ "name": "x" })),
        call(M::GET, "/api/admin/open311/keys", "/api/admin/open311/keys").cookie(&boss),
        call(M::GET, "/open311/discovery.{format}", "/open311/discovery.json"),
        call(M::GET, "/open311/discovery.{format}", "/open311/discovery.xml"),
        call(M::GET, "/open311/discovery.{format}", "/open311/discovery.csv"),
        call(M::GET, "/open311/v2/services.{format}", "/open311/v2/services.json"),
        call(M::GET, "/open311/v2/services.{format}", "/open311/v2/services.xml"),
        call(M::GET, "/open311/v2/services.{format}", "/open311/v2/services.json?jurisdiction_id=x"),
        call(M::GET, "/open311/v2/services/{service_code}.{format}", "/open311/v2/services/repair.json"),
        call(M::GET, "/open311/v2/services/{service_code}.{format}", "/open311/v2/services/repair.xml"),
        call(M::GET, "/open311/v2/services/{service_code}.{format}", "/open311/v2/services/x.json"),
        call(M::GET, "/open311/v2/requests.{format}", "/open311/v2/requests.json"),
        call(M::GET, "/open311/v2/requests.{format}", "/open311/v2/requests.xml"),
        call(M::GET, "/open311/v2/requests.{format}", "/open311/v2/requests.json?status=lost"),
        call(M::GET, "/open311/v2/requests/{service_request_id}.{format}", "/open311/v2/requests/1.json"),
        call(M::GET, "/open311/v2/requests/{service_request_id}.{format}", "/open311/v2/requests/1.xml"),
        call(M::GET, "/open311/v2/requests/{service_request_id}.{format}", "/open311/v2/requests/99.json"),
        call(M::POST, "/open311/v2/requests.{format}", "/open311/v2/requests.json")
            .bytes(posted.as_bytes()),
        call(M::POST, "/open311/v2/requests.{format}", "/open311/v2/requests.xml")
            .bytes(posted.as_bytes()),
        call(M::POST, "/open311/v2/requests.{format}", "/open311/v2/requests.json")
            .bytes(b"service_code=repair&address_id=c1&description=x"),
        call(M::POST, "/open311/v2/requests.{format}", "/open311/v2/requests.json")
            .bytes(b"api_key=key-1.0&service_code=repair"),
        call(M::POST, "/open311/v2/requests.{format}", "/open311/v2/requests.json?jurisdiction_id=x")
            .bytes(b"jurisdiction_id=x&api_key=key-1.0"),
        call(M::POST, "/api/admin/open311/keys/{id}/revoke", "/api/admin/open311/keys/key-9/revoke")
            .cookie(&boss),
        call(M::POST, "/api/admin/open311/keys/{id}/revoke", "/api/admin/open311/keys/key-1/revoke")
            .cookie(&boss),
        call(M::POST, "/api/logout", "/api/logout").cookie(&wang),
    ];
    let mut statuses = Vec::new();
    for one in calls {
        let what = format!("{} {}", one.method, one.url);
        statuses.push((what, c.check(one).await.0));
    }
    assert!(
        c.problems.is_empty(),
        "answers that differ from the description:\n{}",
        c.problems.join("\n")
    );

    // The anonymous export is told to log in before anything is said about its query.
    assert!(statuses.contains(&("GET /api/audit/export".to_owned(), 401)), "{statuses:?}");
    let listed: BTreeSet<(String, String)> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().unwrap().keys().map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let missed: Vec<_> = listed.difference(&c.called).collect();
    assert!(missed.is_empty(), "routes the description lists that no call reached: {missed:?}");
}
