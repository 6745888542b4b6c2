//! The board as a grid worker's working tool and a 书记's desk: 派单 / 改派 and 督办 over the
//! protocol against the real binary; in headless Chromium on a clock the test moves, the time
//! left in words, the views and the search, buttons by role, dialogs with quick replies, the
//! assignee alerted, and a notification when the page is in the background.

use fantoccini::Client;
use hongfan::clock::ManualClock;
use hongfan_shared::protocol::{ClientMessage, ErrorCode, ServerMessage};
use hongfan_shared::{CategoryId, Millis, Report, Timestamp};
use hongfan_tests::browser::{
    Driver, board_log_in, card, check_page, click, fill, keypad, resize, screenshots, text_of,
    wait_js,
};
use hongfan_tests::report;
use hongfan_tests::server::{TestServer, WsClient};
use tokio::sync::Semaphore;

/// Two browsers at a time on two cores: the tests in this file take turns.
static TURN: Semaphore = Semaphore::const_new(1);

async fn answer(client: &mut WsClient, message: ClientMessage) -> ServerMessage {
    client.ask(&message).await
}

fn refused(answer: &ServerMessage) -> Option<ErrorCode> {
    match answer {
        ServerMessage::Error(e) => Some(e.code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_assigns_and_urges_and_the_worker_hears_it() {
    let server = TestServer::start().await;
    let mut kiosk = server.kiosk("c1").await;
    let mut li = server.user("li").await;
    li.subscribe(None).await;
    let mut head = server.user("head").await;
    head.subscribe(None).await;
    let incident = kiosk.file(report("c1", "楼道灯坏了")).await.id;
    let assign = |id, worker: &str| ClientMessage::Assign { id, incident, worker: worker.into() };

    let mut wang = server.user("wang").await;
    assert_eq!(refused(&answer(&mut wang, assign(1, "li")).await), Some(ErrorCode::Forbidden));
    let urge = ClientMessage::Urge { id: 2, incident, note: "请尽快".into() };
    assert_eq!(refused(&answer(&mut wang, urge).await), Some(ErrorCode::Forbidden));

    let mut boss = server.user("boss").await;
    let wrong = answer(&mut boss, assign(3, "zhao")).await;
    assert_eq!(refused(&wrong), Some(ErrorCode::NotAWorkerHere), "zhao works in c2");
    assert_eq!(
        refused(&answer(&mut boss, assign(4, "nobody")).await),
        Some(ErrorCode::NotAWorkerHere)
    );
    assert_eq!(refused(&answer(&mut boss, assign(5, "li")).await), None);
    // 李强 is alerted although he is not on duty, and holds it.
    let (alert, _) = li.recv_until(|m| matches!(m, ServerMessage::Alert { .. })).await;
    let ServerMessage::Alert { incident: assigned, .. } = alert else { unreachable!() };
    assert_eq!(assigned.holder.as_ref().map(|h| h.id.as_str()), Some("li"));
    assert_eq!(assigned.status, hongfan_shared::Status::Claimed);
    // 改派 to 王芳; again to her is refused as already hers.
    assert_eq!(refused(&answer(&mut boss, assign(6, "wang")).await), None);
    assert_eq!(
        refused(&answer(&mut boss, assign(7, "wang")).await),
        Some(ErrorCode::AlreadyClaimed)
    );

    // 督办: the note reaches workers; the building head's shared screen gets it without the note.
    let urge = ClientMessage::Urge { id: 8, incident, note: "居民再次来电".into() };
    assert_eq!(refused(&answer(&mut boss, urge).await), None);
    let is_urge = |m: &ServerMessage| matches!(m, ServerMessage::Event { event, .. } if event.change.name() == "urged");
    let (seen_by_li, _) = li.recv_until(is_urge).await;
    assert!(serde_json::to_string(&seen_by_li).unwrap().contains("居民再次来电"));
    let (seen_by_head, _) = head.recv_until(is_urge).await;
    assert!(!serde_json::to_string(&seen_by_head).unwrap().contains("居民再次来电"));

    // The audit counts it.
    let cookie = server.login("boss").await;
    let (_, summary) = server.get_json("/api/audit/summary?from=0&to=9999999999999", &cookie).await;
    assert_eq!(
        (summary["figures"]["urges"].as_u64(), summary["figures"]["urged"].as_u64()),
        (Some(1), Some(1))
    );
}

async fn timer(client: &Client, ticket: &str) -> String {
    text_of(client, &format!("{} .timer", card(ticket))).await
}

async fn js(client: &Client, script: &str) -> serde_json::Value {
    client.execute(script, vec![]).await.expect(script)
}

fn now() -> Timestamp {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    Timestamp(i64::try_from(since.as_millis()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_shows_time_left_in_words_views_and_only_the_allowed_buttons() {
    let _turn = TURN.acquire().await.unwrap();
    let clock = ManualClock::new(now());
    let server = TestServer::start_in_process(clock.clone()).await;
    let mut kiosk = server.kiosk("c1").await;
    kiosk.file(report("c1", "楼道灯坏了")).await;
    let elderly = Report {
        category: CategoryId("elderly".into()),
        ..report("c1", "独居老人需要探望")
    };
    let private = kiosk.file(elderly).await;
    let mut boss = server.user("boss").await;

    let driver = Driver::start();
    let (worker, desk) = (driver.session().await, driver.session().await);
    board_log_in(&worker, &server, "wang").await;
    wait_js(
        &worker,
        "both cards",
        &format!(
            "return !!document.querySelector(\"{}\") && !!document.querySelector(\"{}\")",
            card("0001"),
            card("0002")
        ),
    )
    .await;

    // Time left, in words, with an icon, and the deadline.
    let left = timer(&worker, "0001").await;
    assert!(left.starts_with("⏳ 接单剩余"), "{left}");
    assert!(text_of(&worker, &format!("{} .deadline", card("0001"))).await.starts_with("时限"));
    screenshots(&worker, "board-time-left").await;
    check_page(&worker, "board").await;
    // 50 minutes on (the server's clock, which the board follows): near its target.
    clock.advance(Millis::from_mins(50));
    let urge = ClientMessage::Urge { id: 1, incident: private.id, note: "请尽快上门".into() };
    assert_eq!(refused(&answer(&mut boss, urge).await), None);
    wait_js(
        &worker,
        "near in words",
        &format!(
            "return document.querySelector(\"{} .timer\").textContent.includes('即将超时')",
            card("0001")
        ),
    )
    .await;
    assert!(
        timer(&worker, "0001").await.starts_with("⚠️ 接单剩余 9分")
            || timer(&worker, "0001").await.starts_with("⚠️ 接单剩余 10分")
    );
    // 15 more: past it, still in words (the breach that the server logs moves the board's clock).
    clock.advance(Millis::from_mins(15));
    let urge = ClientMessage::Urge { id: 2, incident: private.id, note: "再催一次".into() };
    assert_eq!(refused(&answer(&mut boss, urge).await), None);
    wait_js(&worker, "late in words", &format!("return document.querySelector(\"{} .timer\").textContent.startsWith('⛔ 接单已超时 5分')", card("0001"))).await;
    assert!(text_of(&worker, &format!("{} .status", card("0002"))).await.contains("已督办 2"));
    screenshots(&worker, "board-late").await;

    // Views with counts, and the ticket search.
    let tab = |v: &str| format!("#view-{v} .count");
    assert_eq!(text_of(&worker, &tab("unclaimed")).await, "2");
    assert_eq!(text_of(&worker, &tab("mine")).await, "0");
    click(&worker, &format!("{} button[data-action=claim]", card("0001"))).await;
    wait_js(
        &worker,
        "mine: 1",
        "return document.querySelector('#view-mine .count').textContent === '1'",
    )
    .await;
    click(&worker, "#view-mine").await;
    wait_js(&worker, "only mine", &format!("return document.querySelectorAll('.card').length === 1 && !!document.querySelector(\"{}\")", card("0001"))).await;
    click(&worker, "#view-all").await;
    fill(&worker, "#search", "2").await;
    wait_js(&worker, "the search", &format!("return document.querySelectorAll('.card').length === 1 && !!document.querySelector(\"{}\")", card("0002"))).await;
    worker
        .execute("const s = document.getElementById('search'); s.value = ''; s.dispatchEvent(new Event('input')); return true", vec![])
        .await
        .unwrap();
    // A worker has no 派单 or 督办, and 撤销 waits under 更多.
    let offered = worker.execute("return [...document.querySelectorAll('.card button[data-action]')].map(b => b.dataset.action)", vec![]).await.unwrap();
    let offered: Vec<String> = serde_json::from_value(offered).unwrap();
    assert!(!offered.iter().any(|a| a == "assign" || a == "urge"), "{offered:?}");
    let cancel_hidden = worker.execute(&format!("const b = document.querySelector(\"{} button[data-action=cancel]\"); return !!b && b.closest('details.more') && !b.closest('details.more').open", card("0001")), vec![]).await.unwrap();
    assert_eq!(cancel_hidden, serde_json::json!(true), "撤销 is behind 更多: {offered:?}");

    // Resolving with a quick reply, from the dialog, with one hand.
    click(&worker, &format!("{} button[data-action=resolve]", card("0001"))).await;
    wait_js(
        &worker,
        "the quick replies",
        "return document.querySelectorAll('#ask-quick .chip').length > 0",
    )
    .await;
    screenshots(&worker, "board-resolve-dialog").await;
    check_page(&worker, "resolve dialog").await;
    // Empty: our own words say so, not the browser's.
    click(&worker, "#ask-ok").await;
    assert_eq!(text_of(&worker, "#ask-error").await, "请填写内容，或点一条常用回复");
    click(&worker, "#ask-quick .chip").await;
    // A photo of the result (影像证明), as the phone's camera would hand it over.
    worker
        .execute(
            "const c = document.createElement('canvas'); c.width = 64; c.height = 48; c.getContext('2d').fillRect(0, 0, 32, 24);
             c.toBlob(b => { const d = new DataTransfer(); d.items.add(new File([b], 'result.jpg', { type: 'image/jpeg' }));
             const i = document.getElementById('ask-proof'); i.files = d.files; i.dispatchEvent(new Event('change')); }, 'image/jpeg');
             return true",
            vec![],
        )
        .await
        .unwrap();
    wait_js(
        &worker,
        "the photo stored",
        "return document.getElementById('ask-proof-state').textContent.startsWith('✓')",
    )
    .await;
    click(&worker, "#ask-ok").await;
    wait_js(
        &worker,
        "resolved and gone",
        &format!("return !document.querySelector(\"{}\")", card("0001")),
    )
    .await;
    // The photo is in the incident's timeline for the audit.
    let cookie = server.login("boss").await;
    let get = |path: String| {
        let cookie = cookie.clone();
        let url = format!("{}{path}", server.url);
        async move { reqwest::Client::new().get(url).header("cookie", cookie).send().await.unwrap() }
    };
    let timeline: serde_json::Value =
        get("/api/audit/incidents/1".into()).await.json().await.unwrap();
    let events = timeline["events"].as_array().unwrap();
    let resolved = events.iter().find(|e| e["event"]["change"]["type"] == "resolved").unwrap();
    assert_eq!(resolved["event"]["change"]["outcome"], "已处理完毕");
    let proof = resolved["event"]["change"]["proof"]["id"].as_str().unwrap().to_owned();
    assert_eq!(get(format!("/api/incidents/1/attachments/{proof}")).await.status(), 200);

    // The 书记 assigns the private case to 王芳: it reaches her board, with a notification while
    // her page is in the background.
    worker.execute("window.shown = []; window.Notification = class { static permission = 'granted'; constructor(title) { window.shown.push(title); } }; return true", vec![]).await.unwrap();
    let board = worker.window().await.unwrap();
    let elsewhere = worker.new_window(true).await.unwrap().handle;
    worker.switch_to_window(elsewhere.clone()).await.unwrap();
    board_log_in(&desk, &server, "boss").await;
    wait_js(
        &desk,
        "the private case",
        &format!(
            "return !!document.querySelector(\"{} button[data-action=assign]\")",
            card("0002")
        ),
    )
    .await;
    screenshots(&desk, "board-supervisor").await;
    check_page(&desk, "supervisor's board").await;
    click(&desk, &format!("{} button[data-action=assign]", card("0002"))).await;
    wait_js(
        &desk,
        "the workers",
        "return [...document.querySelectorAll('#ask-worker option')].some(o => o.value === 'wang')",
    )
    .await;
    desk.execute("document.getElementById('ask-worker').value = 'wang'; return true", vec![])
        .await
        .unwrap();
    screenshots(&desk, "board-assign-dialog").await;
    check_page(&desk, "assign dialog").await;
    click(&desk, "#ask-ok").await;
    wait_js(
        &desk,
        "assigned to 王芳",
        &format!(
            "return document.querySelector(\"{} .status\").textContent.includes('王芳')",
            card("0002")
        ),
    )
    .await;
    worker.switch_to_window(board).await.unwrap();
    let shown =
        wait_js(&worker, "a notification", "return window.shown.length > 0 && window.shown").await;
    assert!(shown.to_string().contains("0002"), "{shown}");
    assert!(shown.to_string().contains("派给您"), "{shown}");
    wait_js(
        &worker,
        "now hers, in full",
        &format!(
            "return document.querySelector(\"{} .desc\").textContent === '独居老人需要探望'",
            card("0002")
        ),
    )
    .await;

    // A building head sees no claim, no duty switch: only 告知居民.
    let head = driver.session().await;
    board_log_in(&head, &server, "head").await;
    wait_js(&head, "the card", &format!("return !!document.querySelector(\"{}\")", card("0002")))
        .await;
    let buttons = head.execute("return [...document.querySelectorAll('.card button[data-action]')].filter(b => b.dataset.action !== 'tell').length + (document.getElementById('duty-box').hidden ? 0 : 100)", vec![]).await.unwrap();
    assert_eq!(
        buttons,
        serde_json::json!(0),
        "a building head's board offers nothing he may not do"
    );
    screenshots(&head, "board-building-head").await;
    check_page(&head, "building head's board").await;
    head.close().await.unwrap();
    desk.close().await.unwrap();
    worker.close().await.unwrap();
}

/// The building head's phone: the 待回访 list of their buildings, the two questions asked and
/// answered with taps, the card gone once recorded; the second handling marked on the board.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_building_head_calls_back_from_the_list_and_not_solved_is_handled_again() {
    let _turn = TURN.acquire().await.unwrap();
    let clock = ManualClock::new(now());
    let server = TestServer::start_in_process(clock.clone()).await;
    let mut kiosk = server.kiosk("c1").await;
    let mut wang = server.user("wang").await;
    let mut done = Vec::new();
    for text in ["楼道灯坏了", "水管漏水"] {
        let incident = kiosk.file(report("c1", text)).await;
        for message in [
            ClientMessage::Claim { id: wang.id(), incident: incident.id },
            ClientMessage::Resolve {
                id: wang.id(),
                incident: incident.id,
                outcome: "已修好".into(),
                proof: None,
            },
        ] {
            assert_eq!(refused(&answer(&mut wang, message).await), None);
        }
        done.push(incident);
    }
    let driver = Driver::start();
    let (phone, desk) = (driver.session().await, driver.session().await);
    resize(&phone, (390, 844)).await;
    board_log_in(&phone, &server, "head").await;
    clock.advance(Millis::from_hours(25));
    click(&phone, "#view-callbacks").await;
    wait_js(&phone, "two to call back", "return document.querySelectorAll('.card').length === 2 && document.querySelector('#view-callbacks .count').textContent === '2'").await;
    screenshots(&phone, "board-callbacks").await;
    check_page(&phone, "the 回访 list").await;
    let first = format!(".card[data-ticket='{}']", done[0].ticket.0);
    click(&phone, &format!("{first} button[data-solved=true]")).await;
    click(&phone, &format!("{first} button[data-rating=satisfied]")).await;
    wait_js(&phone, "answered, off the list", &format!("return !document.querySelector(\"{first}\") && document.querySelectorAll('.card').length === 1")).await;
    let second = format!(".card[data-ticket='{}']", done[1].ticket.0);
    click(&phone, &format!("{second} button[data-solved=false]")).await;
    screenshots(&phone, "board-callback-not-solved").await;
    check_page(&phone, "the 回访 questions").await;
    click(&phone, &format!("{second} button[data-rating=dissatisfied]")).await;
    wait_js(&phone, "the list empty", "return document.querySelectorAll('.card').length === 0 && !document.getElementById('empty').hidden").await;

    // The 书记's board: the second handling is open again, unclaimed, and marked so.
    board_log_in(&desk, &server, "boss").await;
    click(&desk, "#view-unclaimed").await;
    wait_js(
        &desk,
        "marked as a second handling",
        &format!(
            "return document.querySelector(\"{second} .round-tag\")?.textContent === '二次办理'"
        ),
    )
    .await;
    screenshots(&desk, "board-second-handling").await;
    check_page(&desk, "board with a second handling").await;
    let mut boss = server.user("boss").await;
    boss.subscribe(None).await;
    let incident = boss.incident(done[1].id);
    assert_eq!((incident.round, incident.answers[0].by.name.as_str()), (1, "周楼长"), "who called");
}

/// 挂起 on the board: the worker asks with a tap on a reason, the 书记 sees the request and
/// approves it, the worker's card shows the clock standing still, and the audit lists the pause
/// with its reason and approver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_is_asked_on_the_phone_and_approved_at_the_desk() {
    let _turn = TURN.acquire().await.unwrap();
    let clock = ManualClock::new(now());
    let server = TestServer::start_in_process(clock.clone()).await;
    let mut kiosk = server.kiosk("c1").await;
    let incident = kiosk.file(report("c1", "楼顶漏水，要等施工队")).await;
    let mut wang = server.user("wang").await;
    assert_eq!(
        refused(&answer(&mut wang, ClientMessage::Claim { id: 1, incident: incident.id }).await),
        None
    );

    let driver = Driver::start();
    let (phone, desk) = (driver.session().await, driver.session().await);
    resize(&phone, (390, 844)).await;
    board_log_in(&phone, &server, "wang").await;
    board_log_in(&desk, &server, "boss").await;
    let on_card = |what: &str| format!("{} {what}", card(incident.ticket.as_str()));
    click(&phone, &on_card("button[data-action=pause]")).await;
    wait_js(
        &phone,
        "the reasons",
        "return document.querySelectorAll('#ask-quick .chip').length === 3",
    )
    .await;
    click(&phone, "#ask-quick .chip:nth-child(2)").await;
    let reason =
        phone.execute("return document.getElementById('ask-text').value", vec![]).await.unwrap();
    assert_eq!(reason, serde_json::json!("等待物业/施工方"));
    click(&phone, "#ask-ok").await;

    // The desk: the request, and the two buttons only a supervisor has.
    wait_js(
        &desk,
        "the request",
        &format!(
            "return document.querySelector(\"{}\")?.dataset.pause === 'asked'",
            on_card(".pause-line")
        ),
    )
    .await;
    let offered = phone
        .execute(
            &format!(
                "return [...document.querySelectorAll(\"{}\")].map(b => b.dataset.action)",
                on_card("button[data-action]")
            ),
            vec![],
        )
        .await
        .unwrap();
    assert!(!offered.as_array().unwrap().iter().any(|a| a == "approve_pause"), "{offered}");
    screenshots(&desk, "board-pause-approval").await;
    check_page(&desk, "board with a pause to approve").await;
    click(&desk, &on_card("button[data-action=approve_pause]")).await;

    // The phone: the clock stands still, and the worker may resume.
    wait_js(&phone, "paused", &format!("return document.querySelector(\"{}\").textContent.startsWith('⏸') && !!document.querySelector(\"{}\")", on_card(".timer"), on_card("button[data-action=resume]"))).await;
    screenshots(&phone, "board-paused").await;
    check_page(&phone, "board with a running pause").await;

    // The audit lists the pause with its reason and approver.
    desk.goto(&format!("{}/audit", server.url)).await.unwrap();
    wait_js(&desk, "the pause record", "return !!document.querySelector('#pauses tbody tr')").await;
    let row = text_of(&desk, "#pauses tbody tr").await;
    assert!(
        row.contains("等待物业/施工方") && row.contains("王芳") && row.contains("胡书记"),
        "{row}"
    );
}

/// 上级派单 on the board: the card says where the order came from and its number; the holder
/// asks to send it back from the phone (under 更多), the desk sees why and sends it back with
/// the reason the platform is told, and the audit counts it by its origin and as sent back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_order_shows_its_number_and_is_sent_back_from_the_phone_through_the_desk() {
    let _turn = TURN.acquire().await.unwrap();
    let clock = ManualClock::new(now());
    let server = TestServer::start_in_process(clock.clone()).await;
    let boss_cookie = server.login("boss").await;
    let (key, _) = server.upstream_key(&boss_cookie, "hotline", "http://127.0.0.1:9/order").await;
    let incident = server.post_order(&key, "JS-20261207-0042", &[]).await;
    let mut wang = server.user("wang").await;
    assert_eq!(refused(&answer(&mut wang, ClientMessage::Claim { id: 1, incident }).await), None);
    let (snapshot, _) = wang.subscribe(None).await;
    let ServerMessage::Snapshot { incidents, .. } = snapshot else { panic!("{snapshot:?}") };
    let order = incidents.into_iter().find(|i| i.id == incident).unwrap();
    let on_card = |what: &str| format!("{} {what}", card(order.ticket.as_str()));

    let driver = Driver::start();
    let (phone, desk) = (driver.session().await, driver.session().await);
    resize(&phone, (390, 844)).await;
    board_log_in(&phone, &server, "wang").await;
    board_log_in(&desk, &server, "boss").await;
    wait_js(
        &phone,
        "the order's card",
        &format!("return !!document.querySelector(\"{}\")", on_card(".work-order")),
    )
    .await;
    let source = text_of(&phone, &on_card(".work-order")).await;
    assert!(source.contains("12345 工单 JS-20261207-0042"), "{source}");
    screenshots(&phone, "board-work-order").await;
    check_page(&phone, "board with a work order").await;
    click(&phone, &on_card("details.more summary")).await;
    click(&phone, &on_card("button[data-action=send_back]")).await;
    fill(&phone, "#ask-text", "门牌在邻近社区").await;
    click(&phone, "#ask-ok").await;

    // The desk: why, and the supervisor's two buttons; the phone has neither.
    wait_js(
        &desk,
        "the asking",
        &format!("return !!document.querySelector(\"{}\")", on_card(".send-back-line")),
    )
    .await;
    let line = text_of(&desk, &on_card(".send-back-line")).await;
    assert!(line.contains("门牌在邻近社区") && line.contains("王芳"), "{line}");
    let offered = phone
        .execute(
            &format!(
                "return [...document.querySelectorAll(\"{}\")].map(b => b.dataset.action)",
                on_card("button[data-action]")
            ),
            vec![],
        )
        .await
        .unwrap();
    assert!(!offered.to_string().contains("approve_send_back"), "{offered}");
    screenshots(&desk, "board-send-back-asked").await;
    check_page(&desk, "board with a send-back to decide").await;
    click(&desk, &on_card("button[data-action=approve_send_back]")).await;
    let help = text_of(&desk, "#ask-help").await;
    assert!(help.contains("门牌在邻近社区"), "the supervisor sees why: {help}");
    fill(&desk, "#ask-text", "该地址属于邻近社区，请转派").await;
    click(&desk, "#ask-ok").await;
    wait_js(
        &phone,
        "the order gone from the open board",
        &format!("return !document.querySelector(\"#incidents {}\")", card(order.ticket.as_str())),
    )
    .await;

    // The audit: by origin, and the figure of orders sent back.
    desk.goto(&format!("{}/audit", server.url)).await.unwrap();
    wait_js(
        &desk,
        "the figure",
        "return !!document.querySelector('[data-figure=sent_back_figure]')",
    )
    .await;
    let tables = text_of(&desk, "#tables").await;
    assert!(tables.contains("按来源") && tables.contains("12345"), "{tables}");
    screenshots(&desk, "audit-work-order-sent-back").await;
    check_page(&desk, "audit with a work order sent back").await;
}

/// 每月一题 on the board: the third report of a category at one building is marked, with links
/// to the earlier two; the second is not; the audit names it as the problem of the month.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_third_report_at_a_building_is_marked_recurring() {
    let _turn = TURN.acquire().await.unwrap();
    let server = TestServer::start().await;
    let mut kiosk = server.kiosk("c1").await;
    let mut filed = Vec::new();
    for text in ["楼道灯坏了", "楼道灯又坏了", "楼道灯还是坏"] {
        filed.push(kiosk.file(report("c1", text)).await);
    }
    let driver = Driver::start();
    let desk = driver.session().await;
    board_log_in(&desk, &server, "boss").await;
    let third = card(&filed[2].ticket.0);
    wait_js(&desk, "the third marked", &format!("return document.querySelector(\"{third} .recurring-line\")?.textContent.includes('第3次')")).await;
    let links = desk.execute(&format!("return [...document.querySelectorAll(\"{third} .recurring-line a\")].map(a => a.textContent + ' ' + a.getAttribute('href'))"), vec![]).await.unwrap();
    let (one, two) = (filed[0].id.0, filed[1].id.0);
    assert_eq!(
        links,
        serde_json::json!([
            format!("0001 /audit#incident={one}"),
            format!("0002 /audit#incident={two}")
        ])
    );
    let second = desk
        .execute(
            &format!(
                "return !!document.querySelector(\"{} .recurring-line\")",
                card(&filed[1].ticket.0)
            ),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(second, serde_json::json!(false), "the second is not recurring yet");
    screenshots(&desk, "board-recurring").await;
    check_page(&desk, "board with a recurring problem").await;
    // The link opens the earlier report's timeline in the audit.
    click(&desk, &format!("{third} .recurring-line a")).await;
    wait_js(&desk, "the earlier report's timeline", "return document.getElementById('timeline-dialog').open && document.getElementById('timeline').textContent.includes('楼道灯坏了')").await;
    let problem = text_of(&desk, "#recurring").await;
    assert!(problem.contains("3号楼") && problem.contains("3 件"), "{problem}");
}

/// 全部 in the order a worker acts in: a new report nobody has taken comes before claimed ones
/// merely near their target (it needs someone now; they have someone), after what is late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_unclaimed_report_comes_before_claimed_ones_near_their_target() {
    let _turn = TURN.acquire().await.unwrap();
    let clock = ManualClock::new(now());
    let server = TestServer::start_in_process(clock.clone()).await;
    let mut kiosk = server.kiosk("c1").await;
    let mut wang = server.user("wang").await;
    // Two claimed, then 37 hours on: both near their 2-day resolution target.
    for (n, text) in ["楼道灯坏了", "水管漏水"].into_iter().enumerate() {
        let incident = kiosk.file(report("c1", text)).await.id;
        let claim = ClientMessage::Claim { id: n as u64 + 1, incident };
        assert_eq!(refused(&answer(&mut wang, claim).await), None);
        clock.advance(Millis::from_mins(1));
    }
    clock.advance(Millis::from_mins(37 * 60));
    // Then a new one, with its hour to be answered still ahead.
    kiosk.file(report("c1", "电梯故障")).await;

    let driver = Driver::start();
    let desk = driver.session().await;
    board_log_in(&desk, &server, "wang").await;
    click(&desk, "#view-all").await;
    let order = wait_js(&desk, "three cards", "const cards = [...document.querySelectorAll('#incidents .card')]; return cards.length === 3 && cards.map(c => `${c.dataset.ticket} ${c.dataset.status} ${c.dataset.level}`)").await;
    assert_eq!(
        order,
        serde_json::json!(["0003 reported ok", "0001 claimed near", "0002 claimed near"])
    );
    screenshots(&desk, "board-all-order").await;
    check_page(&desk, "全部, a new report first").await;
    // In English, all of it: the roster and the duty line too.
    click(&desk, "#lang").await;
    wait_js(
        &desk,
        "English",
        "return document.getElementById('roster').textContent.startsWith('On duty: ')",
    )
    .await;
    screenshots(&desk, "board-english").await;
    check_page(&desk, "the board in English").await;
    desk.close().await.unwrap();
}

/// The building head's phone: their buildings' view, a patrol round recorded with taps, what was
/// found turned into a 代报 in one tap, and the incident showing it came through the 楼长.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_building_head_patrols_and_reports_for_a_resident_from_the_phone() {
    let _turn = TURN.acquire().await.unwrap();
    let server = TestServer::start().await;
    let driver = Driver::start();
    let phone = driver.session().await;
    resize(&phone, (390, 844)).await;
    board_log_in(&phone, &server, "head").await;
    wait_js(&phone, "the building head's tools", "return !document.getElementById('head-tools').hidden && !!document.getElementById('view-buildings')").await;
    click(&phone, "#view-buildings").await;
    screenshots(&phone, "board-head-phone").await;
    check_page(&phone, "the building head's board").await;

    click(&phone, "#patrol-open").await;
    click(&phone, "#patrol-quick .chip:nth-child(1)").await;
    click(&phone, "#patrol-quick .chip:nth-child(2)").await;
    fill(&phone, "#patrol-found", "5楼楼道堆放纸箱，堵住消防通道").await;
    screenshots(&phone, "board-head-patrol").await;
    check_page(&phone, "the patrol dialog").await;
    click(&phone, "#patrol-ok").await;
    // Something found: the 代报 opens in one tap, with the kiosk's own pickers (the same code):
    // the category as tiles first (no category is taken for the resident), then phrases, every
    // building of the compound (the building head's own marked, the patrolled one chosen), its
    // units, the keypad and the urgency. What was found is already written.
    wait_js(&phone, "the 代报's categories", "return document.getElementById('proxy').open && document.querySelectorAll('#proxy .categories button').length === 9").await;
    screenshots(&phone, "board-head-proxy-category").await;
    check_page(&phone, "the 代报's categories").await;
    click(&phone, "#proxy .categories button[data-category=safety]").await;
    let form = wait_js(
        &phone,
        "the 代报's pickers",
        "const q = (css) => document.querySelector('#proxy ' + css); return q('#proxy-text')?.value.includes('纸箱') && [q(\"button[data-building='3号楼']\").getAttribute('aria-pressed'), q(\"button[data-building='3号楼']\").classList.contains('mine'), document.querySelectorAll('#proxy .buildings button').length, !!q(\"button[data-building='公共区域']\"), document.querySelectorAll('#proxy button[data-phrase]').length, !!q('#urgency-urgent')]",
    )
    .await;
    assert_eq!(form, serde_json::json!(["true", true, 9, true, 4, true]), "{form}");
    click(&phone, "#proxy button[data-phrase='消防通道被堵']").await;
    click(&phone, "#proxy button[data-unit='2单元']").await;
    keypad(&phone, "#proxy #key-room", "502").await;
    click(&phone, "#proxy #urgency-urgent").await;
    screenshots(&phone, "board-head-proxy").await;
    check_page(&phone, "the 代报 dialog").await;
    click(&phone, "#proxy-ok").await;

    // The resident's slip, as the kiosk gives it: the number, when the office promised to act,
    // the 查询码 and its QR code to photograph, and a slip to print.
    wait_js(&phone, "the slip", "return document.querySelector('#proxy #ticket')?.textContent === '0001' && document.getElementById('status-qr')?.dataset.link").await;
    let title = text_of(&phone, "#proxy-title").await;
    assert_eq!(title, "已代报，受理号 0001");
    let promise = text_of(&phone, "#proxy #promise").await;
    assert!(promise.starts_with("网格员将在 5 分钟内联系您"), "{promise}");
    let code = text_of(&phone, "#proxy #slip-code").await.replace(' ', "");
    assert_eq!(code.len(), 10, "{code}");
    let link = js(&phone, "return document.getElementById('status-qr').dataset.link").await;
    let link = link.as_str().unwrap().to_owned();
    assert!(link.ends_with(&format!("/s#0001-{code}")), "{link}");
    screenshots(&phone, "board-head-proxy-slip").await;
    check_page(&phone, "the 代报's slip").await;
    let slip = text_of(&phone, "#slip").await;
    assert!(
        slip.contains("0001")
            && slip.contains("第一小区 3号楼 2单元 502")
            && slip.contains(&code[..4]),
        "{slip}"
    );
    let pdf = phone.print(fantoccini::wd::PrintConfiguration::default()).await.unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    js(&phone, "document.body.classList.add('printing'); return true").await;
    screenshots(&phone, "board-head-proxy-slip-printed").await;
    js(&phone, "document.body.classList.remove('printing'); return true").await;
    // The resident can follow it with that code.
    let status: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/api/status", server.url))
        .json(&serde_json::json!({ "ticket": "0001", "key": code }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "reported", "{status}");
    click(&phone, "#proxy #done").await;
    wait_js(
        &phone,
        "the dialog closed",
        "return !document.getElementById('proxy').open && !document.getElementById('slip')",
    )
    .await;
    wait_js(&phone, "the card, through the 楼长", &format!("return document.querySelector(\"{} .via-head\")?.textContent.includes('楼长代报：周楼长')", card("0001"))).await;

    // The supervisors see the patrol's point, and the report came through the building head.
    let mut boss = server.user("boss").await;
    boss.subscribe(None).await;
    let incident = boss.incident(hongfan_shared::IncidentId(1));
    let r = &incident.report;
    assert_eq!(
        (incident.reported_by.name.as_str(), r.category.0.as_str(), r.building.as_str()),
        ("周楼长", "safety", "3号楼")
    );
    assert_eq!((r.unit.as_str(), r.room.as_str()), ("2单元", "502"));
    assert_eq!(r.urgency, hongfan_shared::Urgency::Urgent);
    assert_eq!(r.description, "消防通道被堵；5楼楼道堆放纸箱，堵住消防通道");
    let cookie = server.login("boss").await;
    let (_, points) = server.get_json("/api/points", &cookie).await;
    assert_eq!(points["ledger"][0]["award"]["rule"], "patrol");
}

/// 调解 on the board: the worker hands a dispute to the building head of its building, the
/// building head settles it from the phone, and the card shows what came of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispute_is_handed_to_the_building_head_and_settled_from_the_phone() {
    let _turn = TURN.acquire().await.unwrap();
    let server = TestServer::start().await;
    let mut kiosk = server.kiosk("c1").await;
    let dispute =
        Report { category: CategoryId("dispute".into()), ..report("c1", "楼上装修噪音") };
    let incident = kiosk.file(dispute).await;
    let mut wang = server.user("wang").await;
    assert_eq!(
        refused(&answer(&mut wang, ClientMessage::Claim { id: 1, incident: incident.id }).await),
        None
    );

    let driver = Driver::start();
    let (desk, phone) = (driver.session().await, driver.session().await);
    board_log_in(&desk, &server, "wang").await;
    let on_card = |what: &str| format!("{} {what}", card(incident.ticket.as_str()));
    click(&desk, &on_card("button[data-action=mediate]")).await;
    wait_js(&desk, "the building heads", "return [...document.querySelectorAll('#ask-worker option')].map(o => o.textContent).join() === '周楼长'").await;
    click(&desk, "#ask-ok").await;
    wait_js(
        &desk,
        "mediating",
        &format!(
            "return document.querySelector(\"{}\")?.dataset.mediation === 'running'",
            on_card(".mediation-line")
        ),
    )
    .await;

    resize(&phone, (390, 844)).await;
    board_log_in(&phone, &server, "head").await;
    click(&phone, "#view-all").await;
    click(&phone, &on_card("button[data-action=mediation_settled]")).await;
    fill(&phone, "#ask-text", "双方已和解，约定晚十点后不施工").await;
    screenshots(&phone, "board-mediation").await;
    check_page(&phone, "the mediation dialog").await;
    click(&phone, "#ask-ok").await;
    wait_js(
        &desk,
        "settled, on the worker's card",
        &format!(
            "return document.querySelector(\"{}\")?.textContent.includes('已调解成功')",
            on_card(".mediation-line")
        ),
    )
    .await;
}
