//! Several communities in one data folder: each numbers its own tickets, and nobody sees, hears
//! or manages what belongs to a community they do not act in.

use hongfan::ManualClock;
use hongfan::{auth::Accounts, office::NewPerson};
use hongfan_shared::protocol::{ClientMessage, ErrorCode, ServerMessage};
use hongfan_shared::{CommunityId, Compound, CompoundId, Principal, Role};
use hongfan_tests::server::{PASSWORD, TestServer, WsClient, seed_accounts};
use hongfan_tests::{T0, community, open_store_with, report, until_released};

/// The test accounts of the default community (c1, c2…), and a second community `b` with one
/// compound `b1`: its 书记 `bshuji`, its grid worker `bwang` and a kiosk.
async fn two_communities() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut kiosks = seed_accounts(&data).await;
    let clock = ManualClock::new(T0);
    let store = open_store_with(&data, &clock, Default::default()).await.expect("open store");
    let accounts = Accounts::new(store.clone(), clock.clone()).expect("accounts");
    let operator = Principal::operator();
    let mut b = (*community()).clone();
    b.id = CommunityId("b".into());
    b.name = "乙社区".into();
    b.compounds = vec![Compound {
        id: CompoundId("b1".into()),
        name: "乙小区".into(),
        station: "乙驿站".into(),
        grid: "乙网格".into(),
        buildings: Vec::new(),
    }];
    hongfan::office::set_community(&store, &operator, b).await.expect("second community");
    for (login, role, compounds) in
        [("bshuji", Role::Supervisor, vec![]), ("bwang", Role::Worker, vec!["b1"])]
    {
        let person = NewPerson {
            login: login.into(),
            name: login.into(),
            role,
            community: Some(CommunityId("b".into())),
            compounds: compounds.into_iter().map(|c| CompoundId(c.into())).collect(),
            communities: Vec::new(),
            buildings: Vec::new(),
        };
        accounts.add_user(&operator, person, PASSWORD).await.expect("add user");
    }
    let (_, credential) =
        accounts.add_kiosk(&operator, &CompoundId("b1".into()), "").await.expect("kiosk");
    kiosks.push(("b1".into(), credential));
    store.close().await.expect("close");
    drop((accounts, store));
    until_released(&data).await;
    let mut server = TestServer::start_on(data, &[]);
    server.kiosks = kiosks;
    (server, dir)
}

/// Sends `body` to `path` as the operator, with the token the server wrote into its folder.
async fn as_operator(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    let token = std::fs::read_to_string(server.data_dir().join("operator.token")).unwrap();
    reqwest::Client::new()
        .request(method, format!("{}{path}", server.url))
        .bearer_auth(token.trim())
        .json(&body)
        .send()
        .await
        .expect("http")
}

async fn status(server: &TestServer, body: serde_json::Value) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/status", server.url))
        .json(&body)
        .send()
        .await
        .expect("http");
    (response.status().as_u16(), response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn each_community_numbers_its_own_tickets_and_a_kiosk_finds_only_its_own() {
    let (server, _dir) = two_communities().await;
    let mut a = server.kiosk("c1").await;
    let mut b = server.kiosk("b1").await;
    let (first_a, key_a) = a.file_slip(report("c1", "楼道灯不亮")).await;
    let (first_b, key_b) = b.file_slip(report("b1", "乙小区漏水")).await;
    let (second_a, _) = a.file_slip(report("c1", "电梯异响")).await;
    let tickets = [&first_a, &first_b, &second_a].map(|i| i.ticket.as_str().to_owned());
    assert_eq!(tickets, ["0001", "0001", "0002"], "each community counts from one");
    assert_ne!(first_a.id, first_b.id);

    // B's kiosk finds B's 0001 with its slip's code; A's kiosk, asking for 0001 with that
    // code, is told the number and the proof do not match.
    let lookup_in = |community: Option<&str>, ticket: &str, key: &str| ClientMessage::Lookup {
        id: 1,
        ticket: ticket.into(),
        community: community.map(|c| CommunityId(c.into())),
        incident: None,
        phone_tail: None,
        key: Some(key.into()),
    };
    let lookup = |ticket: &str, key: &str| lookup_in(None, ticket, key);
    async fn answer(client: &mut WsClient, lookup: ClientMessage) -> ServerMessage {
        client.send(&lookup).await;
        let answered =
            |m: &ServerMessage| matches!(m, ServerMessage::Found { .. } | ServerMessage::Error(_));
        client.recv_until(answered).await.0
    }
    match answer(&mut b, lookup("0001", &key_b)).await {
        ServerMessage::Found { incident, .. } => assert_eq!(incident.id, first_b.id),
        other => panic!("B's kiosk did not find its ticket: {other:?}"),
    }
    match answer(&mut a, lookup("0001", &key_b)).await {
        ServerMessage::Error(e) => assert_eq!(e.code, ErrorCode::WrongKey),
        other => panic!("A's kiosk found B's ticket: {other:?}"),
    }
    // Saying another community changes nothing for a kiosk: its number is its own community's.
    match answer(&mut a, lookup_in(Some("b"), "0001", &key_a)).await {
        ServerMessage::Found { incident, .. } => assert_eq!(incident.id, first_a.id),
        other => panic!("A's kiosk did not find its own 0001: {other:?}"),
    }
    // Staff look up another community's ticket by naming it, and only one they act in.
    let mut boss = server.user("boss").await;
    let mut bshuji = server.user("bshuji").await;
    let staff = |community| ClientMessage::Lookup {
        id: 2,
        ticket: "0001".into(),
        community: Some(CommunityId(community)),
        incident: None,
        phone_tail: None,
        key: None,
    };
    match answer(&mut bshuji, staff("b".into())).await {
        ServerMessage::Found { incident, .. } => assert_eq!(incident.id, first_b.id),
        other => panic!("B's 书记 did not find B's 0001: {other:?}"),
    }
    match answer(&mut boss, staff("b".into())).await {
        ServerMessage::Error(e) => assert_eq!(e.code, ErrorCode::NotFound),
        other => panic!("A's 书记 found B's 0001: {other:?}"),
    }
    let by_id = ClientMessage::Lookup {
        id: 3,
        ticket: String::new(),
        community: None,
        incident: Some(first_b.id),
        phone_tail: None,
        key: None,
    };
    assert!(matches!(answer(&mut boss, by_id).await, ServerMessage::Error(_)));

    // The resident's page names the community after the code; without it, it is the default.
    let (code, seen) =
        status(&server, serde_json::json!({ "ticket": "0001", "key": key_b, "community": "b" }))
            .await;
    assert_eq!(code, 200, "{seen}");
    assert_eq!(seen["compound"], "b1");
    let (code, _) = status(&server, serde_json::json!({ "ticket": "0001", "key": key_b })).await;
    assert_eq!(code, 404, "A's 0001 does not open with B's code");
    let link: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/api/status/link", server.url))
        .json(&serde_json::json!({ "ticket": "0001", "key": key_b, "community": "b" }))
        .send()
        .await
        .expect("http")
        .json()
        .await
        .expect("json");
    let link = link["link"].as_str().expect("a link");
    assert!(link.ends_with(&format!("/s#0001-{key_b}-b")), "{link}");
}

#[tokio::test]
async fn the_counters_go_on_after_a_restart() {
    let (mut server, _dir) = two_communities().await;
    let mut b = server.kiosk("b1").await;
    b.file(report("b1", "一")).await;
    b.file(report("b1", "二")).await;
    drop(b);
    server.stop();
    server.restart();
    let mut b = server.kiosk("b1").await;
    let mut a = server.kiosk("c1").await;
    assert_eq!(b.file(report("b1", "三")).await.ticket.as_str(), "0003");
    assert_eq!(a.file(report("c1", "一")).await.ticket.as_str(), "0001");
}

/// The incidents of the events and alerts `client` hears up to the first event of `last`'s.
async fn heard_until(
    client: &mut WsClient,
    last: hongfan_shared::IncidentId,
) -> Vec<hongfan_shared::IncidentId> {
    let of = |m: &ServerMessage| match m {
        ServerMessage::Event { event, .. } => Some(event.incident),
        ServerMessage::Alert { incident, .. } => Some(incident.id),
        _ => None,
    };
    let event = |m: &ServerMessage| matches!(m, ServerMessage::Event { event, .. } if event.incident == last);
    let (message, before) = client.recv_until(event).await;
    before.iter().chain([&message]).filter_map(of).collect()
}

#[tokio::test]
async fn a_community_sees_and_hears_only_itself() {
    let (server, _dir) = two_communities().await;
    let mut boss = server.user("boss").await;
    let mut bshuji = server.user("bshuji").await;
    for (client, community) in [(&mut boss, "default"), (&mut bshuji, "b")] {
        let hello = client.hello.clone();
        let ServerMessage::Hello { identity, .. } = hello else { panic!("no hello") };
        assert_eq!(identity.community.0, community);
        assert!(identity.everything);
        client.subscribe(None).await;
    }
    let mut a = server.kiosk("c1").await;
    let mut b = server.kiosk("b1").await;
    let in_b = b.file(report("b1", "乙小区漏水")).await;
    let in_a = a.file(report("c1", "楼道灯不亮")).await;
    // Events come in order: had A's 书记 heard of B's report, she would hear it first.
    let heard = heard_until(&mut boss, in_a.id).await;
    assert!(!heard.contains(&in_b.id), "A's 书记 hears of B: {heard:?}");
    let b_again = b.file(report("b1", "又漏水")).await;
    let heard = heard_until(&mut bshuji, b_again.id).await;
    assert!(heard.contains(&in_b.id) && !heard.contains(&in_a.id), "B's 书记 heard {heard:?}");

    // On-duty lists: each community's workers only.
    let mut wang = server.user("wang").await;
    let mut bwang = server.user("bwang").await;
    wang.subscribe(None).await;
    bwang.subscribe(None).await;
    for client in [&mut bwang, &mut wang] {
        let id = client.id();
        client.send(&ClientMessage::Duty { id, on: true }).await;
        client.recv_until(|m| matches!(m, ServerMessage::DutySet { .. })).await;
    }
    let (roster, _) = wang
        .recv_until(|m| match m {
            ServerMessage::Roster { on_duty } => on_duty.iter().any(|d| d.worker.id == "wang"),
            _ => false,
        })
        .await;
    let ServerMessage::Roster { on_duty } = roster else { unreachable!() };
    assert!(
        on_duty.iter().all(|d| d.worker.id != "bwang"),
        "A's list names B's worker: {on_duty:?}"
    );
}

#[tokio::test]
async fn a_community_supervisor_manages_only_her_own() {
    let (server, _dir) = two_communities().await;
    let bshuji = server.login("bshuji").await;
    let (code, people) = server.get_json("/api/admin/people", &bshuji).await;
    assert_eq!(code, 200);
    let logins: Vec<&str> =
        people.as_array().unwrap().iter().filter_map(|p| p["login"].as_str()).collect();
    assert!(logins.contains(&"bwang") && !logins.contains(&"wang"), "{logins:?}");
    // Nor does the history tell her of A's people or kiosks.
    let (code, history) = server.get_json("/api/admin/history?limit=500", &bshuji).await;
    assert_eq!(code, 200);
    let history = history.to_string();
    assert!(history.contains("\"login\":\"bwang\""), "{history}");
    assert!(
        !history.contains("\"login\":\"wang\"") && !history.contains("\"compound\":\"c1\""),
        "{history}"
    );

    // The community page: each by id, the default one without.
    let (code, b) = server.get_json("/api/community?id=b", "").await;
    assert_eq!((code, b["name"].as_str()), (200, Some("乙社区")));
    let (_, default) = server.get_json("/api/community", "").await;
    assert_eq!(default["id"], "default");
    assert_eq!(server.get_json("/api/community?id=nope", "").await.0, 404);

    // B's 书记 may not change A's community, nor add a person to A's compounds.
    let client = reqwest::Client::new();
    let put = client
        .put(format!("{}/api/admin/community", server.url))
        .header("cookie", &bshuji)
        .json(&default)
        .send()
        .await
        .expect("http");
    assert_eq!(put.status().as_u16(), 403);
    let add = client
        .post(format!("{}/api/admin/people", server.url))
        .header("cookie", &bshuji)
        .json(&serde_json::json!({ "login": "intruder", "role": "worker", "compounds": ["c1"] }))
        .send()
        .await
        .expect("http");
    assert_eq!(add.status().as_u16(), 403, "{:?}", add.text().await);

    // No compound belongs to two communities.
    let mut taken = default.clone();
    taken["id"] = "c".into();
    let put = as_operator(&server, reqwest::Method::PUT, "/api/admin/community", taken).await;
    assert_eq!(put.status().as_u16(), 400);
    let body: serde_json::Value = put.json().await.unwrap();
    assert_eq!(body["code"], "bad_community", "{body}");
}

#[tokio::test]
async fn a_district_configured_in_one_file_starts_and_its_street_office_audits_across_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("district.toml");
    std::fs::write(&config, hongfan_tests::district_toml(3)).unwrap();
    let data = dir.path().join("data");
    let config_arg = config.to_str().unwrap();
    let add = |login: &str, extra: &[&str]| {
        let mut args = vec!["user", "add", login, "--role", "supervisor"];
        args.extend_from_slice(extra);
        args.push("--password-stdin");
        let mut child = std::process::Command::new(hongfan_tests::server::binary())
            .args(&args)
            .arg("--data-dir")
            .arg(&data)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("hongfan user add");
        use std::io::Write as _;
        writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
        let output = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), text)
    };
    // Which community a 书记 runs must be said where there are several.
    let (ok, text) = add("nobody", &["--config", config_arg]);
    assert!(!ok && text.contains("say which community"), "{text}");
    assert!(add("shuji2", &["--community", "s0002", "--config", config_arg]).0);
    // A command run on the folder without the file adds nothing of the built-in community.
    assert!(add("shuji3", &["--community", "s0003"]).0);
    let (ok, text) =
        add("jiedao", &["--community", "s0001", "--community", "s0003", "--config", config_arg]);
    assert!(ok, "{text}");
    until_released(&data).await;

    let mut server = TestServer::start_on(data, &["--config", config_arg]);
    let jiedao = server.login("jiedao").await;
    let (_, me) = server.get_json("/api/me", &jiedao).await;
    assert_eq!(me["community"], "s0001");
    assert_eq!(me["communities"], serde_json::json!(["s0001", "s0003"]));
    let compounds: Vec<&str> =
        me["compounds"].as_array().unwrap().iter().filter_map(|c| c.as_str()).collect();
    assert_eq!(compounds.len(), 6);
    assert!(compounds.iter().all(|c| c.starts_with("s0001-") || c.starts_with("s0003-")));
    let (code, third) = server.get_json("/api/community?id=s0003", "").await;
    assert_eq!((code, third["name"].as_str()), (200, Some("第3社区")));
    assert_eq!(server.get_json("/api/community", "").await.0, 404, "no default community here");

    // A report in each community, from kiosks the operator makes.
    for compound in ["s0001-c1", "s0002-c2", "s0003-c3"] {
        let body = serde_json::json!({ "compound": compound });
        let added: serde_json::Value =
            as_operator(&server, reqwest::Method::POST, "/api/admin/kiosks", body)
                .await
                .json()
                .await
                .expect("json");
        let credential = added["credential"].as_str().expect("a credential").to_owned();
        server.kiosks.push((compound.to_owned(), credential));
        let mut kiosk = server.kiosk(compound).await;
        assert_eq!(kiosk.file(report(compound, "路灯坏了")).await.ticket.as_str(), "0001");
    }
    // The street office's supervisor audits both of theirs, and the figures name each
    // compound by its community's name for it; the second community's 书记 sees only hers.
    let (code, summary) =
        server.get_json("/api/audit/summary?from=0&to=4102444800000", &jiedao).await;
    assert_eq!(code, 200, "{summary}");
    assert_eq!(summary["figures"]["reports"], 2, "s0002's report is not theirs");
    let groups: Vec<(&str, &str)> = summary["by_compound"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["key"].as_str().unwrap(), g["label"].as_str().unwrap()))
        .collect();
    assert_eq!(groups, [("s0001-c1", "第一小区"), ("s0003-c3", "第三小区")]);
    // Their export says whose each 0001 is; a one-community 书记's has no such column.
    let export = "/api/audit/export?from=0&to=4102444800000&what=incidents&format=csv";
    let csv = server.get(export, &jiedao).await.text().await.unwrap();
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert!(lines[0].starts_with("受理号,社区,小区,"), "{csv}");
    assert_eq!(lines.len(), 3, "{csv}");
    let whose = |prefix: &str| lines[1..].iter().filter(|l| l.starts_with(prefix)).count();
    assert_eq!((whose("0001,第1社区,第一小区,"), whose("0001,第3社区,第三小区,")), (1, 1), "{csv}");
    let shuji2 = server.login("shuji2").await;
    let csv = server.get(export, &shuji2).await.text().await.unwrap();
    assert!(csv.trim_start_matches('\u{feff}').starts_with("受理号,小区,"), "{csv}");
    let (_, people) = server.get_json("/api/admin/people", &shuji2).await;
    let logins: Vec<&str> =
        people.as_array().unwrap().iter().filter_map(|p| p["login"].as_str()).collect();
    assert_eq!(logins, ["shuji2"], "{logins:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_street_office_supervisor_runs_the_people_of_each_community_from_the_admin_page() {
    use hongfan_tests::browser::{Driver, check_page, click, fill, screenshots, text_of, wait_js};
    let (server, _dir) = two_communities().await;
    // The operator makes the street office's supervisor, as the admin form does.
    let body = serde_json::json!({
        "login": "jiedao", "name": "街道王主任", "role": "supervisor",
        "community": "default", "communities": ["b"], "password": PASSWORD,
    });
    let added = as_operator(&server, reqwest::Method::POST, "/api/admin/people", body).await;
    assert_eq!(added.status().as_u16(), 200, "{:?}", added.text().await);

    let driver = Driver::start();
    let client = driver.session().await;
    client.goto(&format!("{}/login?next=/admin", server.url)).await.unwrap();
    fill(&client, "#login", "jiedao").await;
    fill(&client, "#password", PASSWORD).await;
    click(&client, "#submit").await;
    // Both communities' people, and both communities' compounds by name.
    let people = wait_js(
        &client,
        "the people of both communities",
        "const r = [...document.querySelectorAll('#people tbody tr')].map(r => r.dataset.login); return r.includes('bwang') && r.includes('wang') ? r.join(',') : null",
    )
    .await;
    assert!(!people.as_str().unwrap().contains("intruder"), "{people}");
    let bwang = text_of(&client, "#people tr[data-login=bwang]").await;
    assert!(bwang.contains("乙社区") && bwang.contains("乙小区"), "{bwang}");
    let jiedao = text_of(&client, "#people tr[data-login=jiedao]").await;
    assert!(jiedao.contains("财工街社区、乙社区"), "{jiedao}");
    screenshots(&client, "admin-street-office-people").await;

    // A new 书记 of the second community: chosen by name.
    click(&client, "#add-person").await;
    let options = wait_js(
        &client,
        "the community chooser",
        "const s = document.getElementById('p-community'); return s ? [...s.options].map(o => o.textContent).join(',') : null",
    )
    .await;
    assert_eq!(options, "财工街社区,乙社区");
    wait_js(
        &client,
        "a supervisor and the second community",
        "const r = document.getElementById('p-role'); r.value = 'supervisor'; r.dispatchEvent(new Event('change')); const c = document.getElementById('p-community'); c.value = 'b'; return true",
    )
    .await;
    fill(&client, "#p-name", "乙书记").await;
    fill(&client, "#p-login", "bshuji2").await;
    screenshots(&client, "admin-street-office-person-form").await;
    check_page(&client, "the form to add a 书记 of another community").await;
    click(&client, "#dialog form .actions button[type=submit]").await;
    let code = text_of(&client, "#one-time-code").await;
    assert_eq!(code.len(), 12, "{code}");
    let bshuji = server.login("bshuji").await;
    let (_, people) = server.get_json("/api/admin/people", &bshuji).await;
    let new = people.as_array().unwrap().iter().find(|p| p["login"] == "bshuji2").cloned();
    assert_eq!(
        new.map(|p| p["community"].clone()),
        Some(serde_json::json!("b")),
        "B's 书记 sees her new colleague"
    );
}
