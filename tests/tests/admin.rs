//! The admin page in headless Chromium: a supervisor runs the office while the server runs —
//! people, kiosks, the rota (on a clock the test moves), the community, the history — and a
//! compound leader or a worker gets no more than theirs. Every screen is photographed at desk
//! and phone size and checked with every axe rule.

use fantoccini::Client;
use hongfan::ManualClock;
use hongfan_shared::protocol::close;
use hongfan_tests::browser::{Driver, check_page, click, fill, screenshots, text_of, wait_js};
use hongfan_tests::server::{Closed, PASSWORD, TestServer};
use hongfan_tests::{T0, report};
use tokio::sync::Semaphore;

/// Two browsers at a time on two cores: the tests in this file take turns.
static TURN: Semaphore = Semaphore::const_new(1);

async fn log_in(client: &Client, server: &TestServer, login: &str, password: &str, next: &str) {
    client.goto(&format!("{}/login?next={next}", server.url)).await.unwrap();
    fill(client, "#login", login).await;
    fill(client, "#password", password).await;
    click(client, "#submit").await;
}

/// Opens a tab of the admin page and waits for it to be drawn.
async fn tab(client: &Client, name: &str, ready: &str) {
    click(client, &format!("a[data-tab={name}]")).await;
    wait_js(
        client,
        &format!("the {name} tab"),
        &format!("return !!document.querySelector({ready:?})"),
    )
    .await;
}

async fn js(client: &Client, script: &str) -> serde_json::Value {
    client.execute(script, vec![]).await.expect(script)
}

/// Submits the dialog's form (its primary button).
async fn submit_dialog(client: &Client) {
    click(client, "#dialog form .actions button[type=submit]").await;
}

async fn close_dialog(client: &Client) {
    click(client, "#dialog form .actions button[type=button]").await;
    wait_js(client, "the dialog to close", "return !document.getElementById('dialog').open").await;
}

/// Ticks the checkbox labelled `label` within `scope`.
async fn tick(client: &Client, scope: &str, label: &str) {
    let script = format!(
        "const l = [...document.querySelectorAll({scope:?} + ' label')].find(l => l.textContent.trim() === {label:?}); if (!l) return false; l.querySelector('input').click(); return true;"
    );
    wait_js(client, &format!("{label} in {scope}"), &script).await;
}

/// Sets a time input the way a person's picking would: its value, then `change`.
async fn set_time(client: &Client, css: &str, value: &str) {
    let script = format!(
        "const i = document.querySelector({css:?}); if (!i) return false; i.value = {value:?}; i.dispatchEvent(new Event('change')); return true;"
    );
    wait_js(client, css, &script).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_runs_the_office_from_the_browser() {
    let _turn = TURN.acquire().await.unwrap();
    // Monday 2026-11-02, 09:00 in Shanghai, on a clock this test moves.
    let clock = ManualClock::new(T0);
    let server = TestServer::start_in_process(clock.clone()).await;
    let driver = Driver::start();
    let (boss, other) = (driver.session().await, driver.session().await);

    log_in(&boss, &server, "boss", PASSWORD, "/admin").await;
    wait_js(
        &boss,
        "the people",
        "return document.querySelectorAll('#people tbody tr').length === 5",
    )
    .await;
    screenshots(&boss, "admin-people").await;
    check_page(&boss, "people").await;

    // A new grid worker: added, handed a one-time password, logged in at once, and alerted.
    click(&boss, "#add-person").await;
    fill(&boss, "#p-name", "孙丽").await;
    fill(&boss, "#p-login", "sun").await;
    tick(&boss, "#dialog", "第一小区").await;
    screenshots(&boss, "admin-person-form").await;
    check_page(&boss, "the form to add a person").await;
    submit_dialog(&boss).await;
    let code = text_of(&boss, "#one-time-code").await;
    assert_eq!(code.len(), 12, "{code}");
    screenshots(&boss, "admin-person-added").await;
    close_dialog(&boss).await;
    wait_js(
        &boss,
        "sun in the list",
        "return !!document.querySelector('#people tr[data-login=sun]')",
    )
    .await;

    log_in(&other, &server, "sun", &code, "/board").await;
    wait_js(
        &other,
        "the form to set a password",
        "return !document.getElementById('change-form').hidden",
    )
    .await;
    screenshots(&other, "login-must-change").await;
    check_page(&other, "the form to set a password").await;
    fill(&other, "#new-password", "sun-own-password").await;
    fill(&other, "#repeat-password", "sun-own-password").await;
    click(&other, "#change-submit").await;
    wait_js(&other, "sun's board", "return location.pathname === '/board' && document.getElementById('link').dataset.state === 'online'").await;
    click(&other, "#duty").await;
    wait_js(&other, "sun on duty", "return document.getElementById('duty').dataset.on === 'true'")
        .await;
    let mut kiosk_c1 = server.kiosk("c1").await;
    let first = kiosk_c1.file(report("c1", "楼道灯坏了")).await;
    let fresh = format!(
        "return !!document.querySelector(\".card.fresh[data-ticket='{}']\")",
        first.ticket.0
    );
    wait_js(&other, "sun alerted of the report", &fresh).await;

    // A reset: 王芳's open connection ends at once; the code is shown once.
    let mut wang = server.user("wang").await;
    click(&boss, "#people tr[data-login=wang] button.reset").await;
    submit_dialog(&boss).await;
    let wang_code = text_of(&boss, "#one-time-code").await;
    assert!(matches!(wang.closed().await, Closed::Frame(code, _) if code == close::REVOKED));
    assert_eq!(server.login_with("wang", PASSWORD).await.unwrap_err().as_u16(), 401);
    assert!(server.login_with("wang", &wang_code).await.is_ok());
    close_dialog(&boss).await;

    // A new kiosk for 第一小区, paired by its QR code's link, seen online, then revoked: its page
    // must pair again.
    tab(&boss, "kiosks", "#kiosks tbody tr").await;
    screenshots(&boss, "admin-kiosks").await;
    check_page(&boss, "kiosks").await;
    click(&boss, "#add-kiosk").await;
    fill(&boss, "#k-name", "第一小区驿站二号机").await;
    submit_dialog(&boss).await;
    wait_js(&boss, "the QR code", "const q = document.getElementById('pairing-qr'); return q && q.complete && q.naturalWidth > 0").await;
    let link = text_of(&boss, "#pairing-link").await;
    assert!(link.starts_with(&format!("{}/kiosk#pair=kiosk-3.", server.url)), "{link}");
    screenshots(&boss, "admin-pairing").await;
    check_page(&boss, "the pairing code").await;
    let kiosk_window = other.new_window(true).await.unwrap().handle;
    other.switch_to_window(kiosk_window).await.unwrap();
    other.goto(&link).await.unwrap();
    wait_js(
        &other,
        "the paired kiosk",
        "return document.querySelectorAll('.categories button').length === 9",
    )
    .await;
    close_dialog(&boss).await;
    let state =
        "document.querySelector('#kiosks tr[data-kiosk=kiosk-3] .kiosk-state')?.textContent";
    wait_js(&boss, "kiosk-3 online", &format!("return {state} === '在线'")).await;
    // Used once: the same link pairs nothing now.
    let again = reqwest::Client::new()
        .post(format!("{}/api/kiosk/pair", server.url))
        .json(&serde_json::json!({ "credential": link.split("#pair=").nth(1).unwrap() }))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 401);
    click(&boss, "#kiosks tr[data-kiosk=kiosk-3] button.revoke").await;
    submit_dialog(&boss).await;
    wait_js(
        &other,
        "the revoked kiosk to ask for pairing",
        "return !!document.getElementById('credential')",
    )
    .await;
    wait_js(&boss, "kiosk-3 revoked", &format!("return {state} === '已停用'")).await;

    // The rota: 王芳 mornings, 李强 afternoons on Mondays; at 13:00 the next report alerts 李强.
    tab(&boss, "rota", "#save-rota").await;
    let monday = "section.day[data-day='0']";
    click(&boss, &format!("{monday} .add-shift")).await;
    set_time(
        &boss,
        &format!("{monday} li.shift:nth-child(1) input[type=time]:nth-of-type(1)"),
        "08:30",
    )
    .await;
    set_time(
        &boss,
        &format!("{monday} li.shift:nth-child(1) input[type=time]:nth-of-type(2)"),
        "12:00",
    )
    .await;
    tick(&boss, &format!("{monday} li.shift:nth-child(1)"), "王芳").await;
    click(&boss, &format!("{monday} .add-shift")).await;
    set_time(
        &boss,
        &format!("{monday} li.shift:nth-child(2) input[type=time]:nth-of-type(2)"),
        "17:30",
    )
    .await;
    tick(&boss, &format!("{monday} li.shift:nth-child(2)"), "李强").await;
    click(&boss, "#save-rota").await;
    wait_js(
        &boss,
        "the rota saved",
        "return document.querySelector('.saved-text')?.textContent.length > 0",
    )
    .await;
    boss.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
    screenshots(&boss, "admin-rota").await;
    check_page(&boss, "rota").await;
    let mut li = server.user("li").await;
    li.subscribe(None).await;
    clock.set(hongfan_shared::Timestamp(T0.0 + 4 * 3_600_000));
    let afternoon = kiosk_c1.file(report("c1", "下午的报修")).await;
    assert!(li.alerted(&afternoon).await, "李强's shift");
    assert!(!afternoon.escalated);

    // A category added in the browser appears on an open kiosk without a restart.
    let kiosk_c2 = other.new_window(true).await.unwrap().handle;
    other.switch_to_window(kiosk_c2).await.unwrap();
    other
        .goto(&format!("{}/kiosk#pair={}", server.url, server.kiosk_credential("c2")))
        .await
        .unwrap();
    wait_js(
        &other,
        "the c2 kiosk",
        "return document.querySelectorAll('.categories button').length === 9",
    )
    .await;
    tab(&boss, "community", "#save-community").await;
    boss.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
    screenshots(&boss, "admin-community").await;
    check_page(&boss, "community").await;
    click(&boss, "#add-category").await;
    let new = "#categories fieldset.category:last-of-type";
    // A category's name is called so (not a person's 姓名).
    let labels = js(&boss, &format!("return [...document.querySelectorAll('{new} .row:nth-of-type(1) label > span')].map(s => s.textContent)")).await;
    assert_eq!(labels, serde_json::json!(["编号", "类别名称", "英文名", "图标"]));
    for (nth, text) in [(1, "pets"), (2, "宠物扰民"), (3, "Pets")] {
        fill(&boss, &format!("{new} .row:nth-of-type(1) label:nth-child({nth}) input"), text).await;
    }
    click(&boss, "#save-community").await;
    wait_js(
        &boss,
        "the community saved",
        "return document.querySelector('.saved-text')?.textContent.length > 0",
    )
    .await;
    wait_js(&other, "the new category on the kiosk", "return [...document.querySelectorAll('.categories button')].some(b => b.textContent.includes('宠物扰民'))").await;
    // What the form does not edit survives the save: the emergency categories stay emergencies,
    // the 回访 time and the pause reasons stay as configured.
    let saved: serde_json::Value =
        reqwest::get(format!("{}/api/community", server.url)).await.unwrap().json().await.unwrap();
    let emergencies =
        saved["categories"].as_array().unwrap().iter().filter(|c| c["emergency"] == true).count();
    assert!(emergencies > 0, "{saved}");
    assert_eq!(saved["escalation"]["callback_after"], serde_json::json!(86_400_000));
    assert_eq!(saved["pauses"]["reasons"].as_array().map(Vec::len), Some(3));

    // The building head's patrols meanwhile: each a patrol and its point in the office's log.
    let head = server.login("head").await;
    for checked in ["消防通道", "楼道杂物", "电动车充电"] {
        let patrol = reqwest::Client::new()
            .post(format!("{}/api/patrols", server.url))
            .header("cookie", &head)
            .header("origin", &server.url)
            .json(&serde_json::json!({ "buildings": ["3号楼"], "checked": checked, "found": "" }))
            .send()
            .await
            .unwrap();
        assert_eq!(patrol.status(), 200);
    }

    // Every change, with who made it: the office's own first, not drowned in points.
    tab(&boss, "history", "#history li").await;
    let first_line = text_of(&boss, "#history li .what").await;
    assert_eq!(first_line, "修改社区设置");
    let points = js(&boss, "return [...document.querySelectorAll('#history .what')].filter(w => /楼长积分|巡防|award|patrol/.test(w.textContent)).length").await;
    assert_eq!(points, 0, "points and patrols only when asked for");
    let added = wait_js(&boss, "sun's addition", "return [...document.querySelectorAll('#history li')].find(l => l.textContent.includes('添加人员 · 孙丽（sun）'))?.textContent").await;
    assert!(added.as_str().unwrap().contains("胡书记"), "{added}");
    click(&boss, "#history li details summary").await;
    screenshots(&boss, "admin-history").await;
    check_page(&boss, "history").await;
    // Asked for: the points and patrols too, in words, with what was checked.
    click(&boss, "#show-points").await;
    let patrol = "[...document.querySelectorAll('#history li')].find(l => l.querySelector('.what').textContent === '巡防 · 3号楼')";
    wait_js(&boss, "the patrols", &format!("return !!{patrol}")).await;
    let award = wait_js(&boss, "the points", "return [...document.querySelectorAll('#history .what')].map(w => w.textContent).find(w => w.startsWith('楼长积分'))").await;
    assert_eq!(award, "楼长积分 · 周楼长 +1 · 巡防");
    js(&boss, &format!("{patrol}.querySelector('details').open = true; return true")).await;
    let details = js(&boss, &format!("return {patrol}.querySelector('details').textContent")).await;
    assert!(details.as_str().unwrap().contains("检查了什么：电动车充电"), "{details}");
    screenshots(&boss, "admin-history-points").await;
    check_page(&boss, "history with points").await;
    boss.close().await.unwrap();
    other.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compound_leader_sees_only_theirs_and_a_worker_cannot_open_the_admin_page() {
    let _turn = TURN.acquire().await.unwrap();
    let server = TestServer::start().await;
    let boss = server.login("boss").await;
    let leader = serde_json::json!({ "login": "qian", "name": "钱网格长", "role": "supervisor", "compounds": ["c1"], "password": "leader-password" });
    let added = reqwest::Client::new()
        .post(format!("{}/api/admin/people", server.url))
        .header("cookie", boss)
        .json(&leader)
        .send()
        .await
        .unwrap();
    assert_eq!(added.status().as_u16(), 200);
    let driver = Driver::start();
    let (qian, wang) = (driver.session().await, driver.session().await);

    log_in(&qian, &server, "qian", "leader-password", "/admin").await;
    let rows = wait_js(&qian, "c1's people", "const r = [...document.querySelectorAll('#people tbody tr')].map(r => r.dataset.login); return r.length ? r.join(',') : null").await;
    assert_eq!(rows, serde_json::json!("head,li,qian,wang"));
    screenshots(&qian, "admin-leader-people").await;
    tab(&qian, "community", ".notice").await;
    assert_eq!(text_of(&qian, "#panel .notice").await, "社区设置只有书记可以修改。");
    tab(&qian, "rota", "#rota-compound").await;
    let choices = qian
        .execute(
            "return [...document.querySelectorAll('#rota-compound option')].map(o => o.value)",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(choices, serde_json::json!(["c1"]));
    check_page(&qian, "a leader's rota").await;

    log_in(&wang, &server, "wang", PASSWORD, "/admin").await;
    let refused = wait_js(
        &wang,
        "the refusal",
        "const r = document.getElementById('refused'); return r && !r.hidden && r.textContent",
    )
    .await;
    assert_eq!(refused, serde_json::json!("此页面仅供书记、网格长使用。"));
    assert!(
        wang.execute("return document.getElementById('tabs').hidden", vec![])
            .await
            .unwrap()
            .as_bool()
            .unwrap()
    );
    screenshots(&wang, "admin-refused").await;
    check_page(&wang, "the refusal").await;
    qian.close().await.unwrap();
    wang.close().await.unwrap();
}

/// 接口密钥: the 书记 issues a key for the street office on the admin page (shown once), the
/// street office's system posts a report with it through Open311, a grid worker sees on the
/// board where it came from, and once revoked the key is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_issues_an_api_key_and_what_it_posts_reaches_the_board() {
    let _turn = TURN.acquire().await.unwrap();
    let server = TestServer::start().await;
    let driver = Driver::start();
    let (boss, wang) = (driver.session().await, driver.session().await);
    log_in(&boss, &server, "boss", PASSWORD, "/admin").await;
    wait_js(&boss, "the admin page", "return !document.getElementById('tabs').hidden").await;
    tab(&boss, "keys", "#no-keys").await;
    screenshots(&boss, "admin-keys").await;
    check_page(&boss, "no API keys yet").await;
    click(&boss, "#add-key").await;
    fill(&boss, "#key-name", "济阳街道办").await;
    check_page(&boss, "the form to issue a key").await;
    submit_dialog(&boss).await;
    let key = text_of(&boss, "#issued-key").await;
    assert!(key.starts_with("key-1."), "{key}");
    screenshots(&boss, "admin-key-issued").await;
    check_page(&boss, "the key shown once").await;
    close_dialog(&boss).await;
    let row = "document.querySelector('#keys tr[data-key=key-1]')?.textContent";
    let listed = wait_js(&boss, "the key listed", &format!("return {row}")).await;
    assert!(listed.as_str().unwrap().contains("济阳街道办"), "{listed}");
    assert!(!listed.as_str().unwrap().contains(&key[6..]), "the secret is not listed");

    let post = || {
        let (url, key) = (server.url.clone(), key.clone());
        async move {
            reqwest::Client::new()
                .post(format!("{url}/open311/v2/requests.json"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!(
                    "api_key={key}&service_code=repair&address_id=c1%2F3%E5%8F%B7%E6%A5%BC&description=%E8%B7%AF%E7%81%AF%E4%B8%8D%E4%BA%AE"
                ))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(post().await, 200);
    log_in(&wang, &server, "wang", PASSWORD, "/board").await;
    let from = wait_js(
        &wang,
        "the posted report on the board",
        "return document.querySelector('.card .via-platform')?.textContent",
    )
    .await;
    assert_eq!(from, " · 外部平台转来：济阳街道办");
    screenshots(&wang, "board-from-platform").await;
    check_page(&wang, "a report from another system").await;

    click(&boss, "#keys tr[data-key=key-1] button.revoke").await;
    submit_dialog(&boss).await;
    wait_js(&boss, "key-1 revoked", &format!("return {row}?.includes('已停用')")).await;
    assert_eq!(post().await, 403);
    tab(&boss, "history", "#history li").await;
    let lines = js(&boss, "return [...document.querySelectorAll('#history .what')].slice(0, 2).map(w => w.textContent)").await;
    assert_eq!(
        lines,
        serde_json::json!([
            "停用接口密钥 · 济阳街道办（key-1）",
            "发放接口密钥 · 济阳街道办（key-1）"
        ])
    );
    check_page(&boss, "the history of the keys").await;

    // The 12345 platform's key: its orders are answered at its webhook, signed with a secret
    // shown once too.
    tab(&boss, "keys", "#keys").await;
    click(&boss, "#add-key").await;
    fill(&boss, "#key-name", "12345 热线").await;
    js(&boss, "const s = document.getElementById('key-source'); s.value = 'hotline'; s.dispatchEvent(new Event('change')); return true").await;
    fill(&boss, "#key-webhook", "https://12345.example.org/hongfan").await;
    screenshots(&boss, "admin-key-upstream-form").await;
    check_page(&boss, "the form to issue a platform's key").await;
    submit_dialog(&boss).await;
    let secret = text_of(&boss, "#issued-secret").await;
    assert_eq!(secret.len(), 48, "{secret}");
    check_page(&boss, "a platform's key shown once").await;
    close_dialog(&boss).await;
    let row = "document.querySelector('#keys tr[data-key=key-2]')?.textContent";
    let listed = wait_js(&boss, "the platform's key listed", &format!("return {row}")).await;
    assert!(listed.as_str().unwrap().contains("12345 工单 · 12345.example.org"), "{listed}");
    boss.close().await.unwrap();
    wang.close().await.unwrap();
}
