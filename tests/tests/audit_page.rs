//! The audit page as a 书记 reads it, without help: what each figure means, breaches counted as
//! breaches and as incidents, durations in words, no "P90", categories in the community's order,
//! the period before, what is late right now, the residents' answers, tables that fit a phone,
//! an English view without doubled or untranslated headings, a refusal without empty charts, axe
//! clean with every rule, and a printable monthly report with one page per compound.

use hongfan::clock::ManualClock;
use hongfan_shared::protocol::{ClientMessage, ServerMessage};
use hongfan_shared::{CategoryId, Millis, Report, Timestamp, Urgency};
use hongfan_tests::browser::{
    Driver, board_log_in, check_page, click, resize, screenshots, text_of, wait_js,
};
use hongfan_tests::report;
use hongfan_tests::server::{TestServer, WsClient};

fn now() -> Timestamp {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    Timestamp(i64::try_from(since.as_millis()).unwrap())
}

async fn done(client: &mut WsClient, message: ClientMessage) {
    let answer = client.ask(&message).await;
    assert!(matches!(answer, ServerMessage::Done { .. }), "{answer:?}");
}

async fn js(client: &fantoccini::Client, script: &str) -> serde_json::Value {
    client.execute(script, vec![]).await.unwrap()
}

/// When the story below starts: seven hours before now, so that what it makes fall due has by
/// now, but never before this week's Monday (Asia/Shanghai): the page opens on "this week", by
/// the browser's own clock, and all of it must be in that week whatever day the test runs.
fn start() -> Timestamp {
    const DAY: i64 = 86_400_000;
    let now = now();
    let today = hongfan_shared::audit::day_start(now);
    // 1970-01-01 (Shanghai) was a Thursday: Monday is 0.
    let weekday = ((today.0 + 8 * 3_600_000).div_euclid(DAY) + 3).rem_euclid(7);
    Timestamp((now.0 - Millis::from_hours(7).0 as i64).max(today.0 - weekday * DAY))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secretary_reads_the_audit_without_help() {
    let clock = ManualClock::new(start());
    let server = TestServer::start_in_process(clock.clone()).await;
    let mut kiosk1 = server.kiosk("c1").await;
    let mut kiosk2 = server.kiosk("c2").await;
    let (mut zhao, mut boss) = (server.user("zhao").await, server.user("boss").await);
    // A: urgent repair in c1 (15 min to claim, 6 h to resolve): both targets pass.
    let urgent = Report { urgency: Urgency::Urgent, ..report("c1", "电梯困人") };
    let a = kiosk1.file(urgent).await;
    // B: a dispute in c1 (its claim target passes).
    let dispute =
        Report { category: CategoryId("dispute".into()), ..report("c1", "邻里噪音纠纷") };
    let b = kiosk1.file(dispute).await;
    // C: elderly care in c2, claimed and resolved at once; the resident answers at the kiosk.
    let elderly = Report { category: CategoryId("elderly".into()), ..report("c2", "独居老人") };
    let (c, key) = kiosk2.file_slip(elderly).await;
    done(&mut zhao, ClientMessage::Claim { id: 1, incident: c.id }).await;
    let resolve =
        ClientMessage::Resolve { id: 2, incident: c.id, outcome: "已上门".into(), proof: None };
    done(&mut zhao, resolve).await;
    let rating = hongfan_shared::Rating::Satisfied;
    let rate = ClientMessage::Rate { id: 3, incident: c.id, rating, key: Some(key), solved: true };
    done(&mut kiosk2, rate).await;
    clock.advance(Millis::from_hours(7));
    // A write to each records what fell due: 3 breaches (A twice, B once) of 2 incidents.
    for (n, incident) in [a.id, b.id].into_iter().enumerate() {
        let urge = ClientMessage::Urge { id: 10 + n as u64, incident, note: "请尽快".into() };
        done(&mut boss, urge).await;
    }

    let driver = Driver::start();
    let (desk, worker) = (driver.session().await, driver.session().await);
    board_log_in(&desk, &server, "boss").await;
    desk.goto(&format!("{}/audit", server.url)).await.unwrap();
    wait_js(&desk, "the figures", "return document.querySelectorAll('.figure').length > 10 && document.querySelectorAll('#late-now li').length === 2").await;

    // What 响应率 is, on the page.
    let rate = text_of(&desk, ".figure[data-figure=response_rate]").await;
    assert!(rate.contains("时限内接单的事项占上报数的比例"), "{rate}");
    // Target lines: the office's goal beside the figure, and dashed in the daily chart.
    let goal = text_of(&desk, ".figure[data-figure=response_rate] .goal").await;
    assert_eq!(goal, "✗ 目标 ≥ 90%", "one of three answered in time");
    assert_eq!(
        js(&desk, "return document.querySelectorAll('#chart-daily .goal-line').length").await,
        serde_json::json!(1)
    );
    // Breaches and incidents, each named.
    let breaches = text_of(&desk, ".figure[data-figure=breaches] strong").await;
    assert_eq!(breaches, "3 次超时 / 2 件");
    // Durations in words; no P90.
    let spread = text_of(&desk, ".figure[data-figure=response_spread] strong").await;
    assert!(!spread.contains(':') && spread.contains('秒'), "{spread}");
    let body = text_of(&desk, "body").await;
    assert!(!body.contains("P90"), "P90 is not a word a 书记 reads");
    // Categories in the community's order (the kiosk's), not by their English ids.
    let categories = js(&desk, "return [...document.querySelectorAll('#tables .table-scroll:nth-child(3) tbody th')].map(th => th.textContent)").await;
    assert_eq!(categories, serde_json::json!(["助老", "矛盾纠纷", "设施报修"]));
    // The period before, the residents' answers, and what is late right now.
    let previous = text_of(&desk, ".figure[data-figure=reports] .previous").await;
    assert_eq!(previous, "上期 0");
    let answered = text_of(&desk, ".figure[data-figure=answer_rate] strong").await;
    assert_eq!(answered, "100.0%", "the one resolved report was answered");
    assert!(text_of(&desk, "#by-source").await.contains("自助机 100.0%（1）"));
    let late = text_of(&desk, "#late-now").await;
    assert!(
        late.contains(a.ticket.as_str())
            && late.contains(b.ticket.as_str())
            && !late.contains(c.ticket.as_str()),
        "{late}"
    );
    screenshots(&desk, "audit-readable").await;
    check_page(&desk, "audit page").await;
    // The list behind a figure says incidents, and stays clean too.
    click(&desk, ".figure[data-figure=breaches]").await;
    wait_js(
        &desk,
        "the breached list",
        "return document.getElementById('list-title').textContent.endsWith('· 2 件')",
    )
    .await;
    check_page(&desk, "audit list").await;

    // On a phone nothing is wider than the screen.
    resize(&desk, (390, 844)).await;
    let wide = js(&desk, "return new Promise(r => requestAnimationFrame(() => r(document.documentElement.scrollWidth)))").await;
    assert!(wide.as_u64().unwrap() <= 390, "the page is {wide} px wide on a 390 px phone");
    resize(&desk, (1280, 800)).await;

    // English: no heading twice, no Chinese in the labels.
    click(&desk, "#lang").await;
    wait_js(&desk, "English", "return document.querySelector('.figure[data-figure=response_rate] .name').textContent === 'Answered in time'").await;
    let heads = js(&desk, "return [...document.querySelectorAll('#tables table')].map(t => [...t.querySelectorAll('thead th')].map(th => th.textContent))").await;
    for head in heads.as_array().unwrap() {
        let names: Vec<&str> =
            head.as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "a heading twice: {names:?}");
        assert!(
            names.iter().all(|n| !n.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))),
            "{names:?}"
        );
    }
    let labels = js(&desk, "return [...document.querySelectorAll('.figure .name, .figure .definition')].map(e => e.textContent).join('|')").await;
    let labels = labels.as_str().unwrap();
    assert!(!labels.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{labels}");
    screenshots(&desk, "audit-english").await;
    click(&desk, "#lang").await;

    // 月报: one A4 page per compound, for the street office.
    js(&desk, "window.print = () => {}; return true").await;
    click(&desk, "#print-report").await;
    wait_js(
        &desk,
        "a page per compound",
        "return document.querySelectorAll('#report .report-page').length === 3",
    )
    .await;
    let page = text_of(&desk, "#report .report-page:nth-child(2)").await;
    assert!(
        page.contains("第二小区") && page.contains("督办月报") && page.contains("一次解决率"),
        "{page}"
    );
    let pdf = desk.print(fantoccini::wd::PrintConfiguration::default()).await.unwrap();
    std::fs::write(hongfan_tests::browser::screenshot_dir().join("audit-monthly-report.pdf"), &pdf)
        .unwrap();
    let marker = b"/Type /Page";
    let pages = pdf
        .windows(marker.len() + 1)
        .filter(|w| w.starts_with(marker) && w[marker.len()] != b's')
        .count();
    assert_eq!(pages, 3, "one page per compound");

    // Refused: the reason, and no empty chart frames.
    board_log_in(&worker, &server, "wang").await;
    worker.goto(&format!("{}/audit", server.url)).await.unwrap();
    wait_js(
        &worker,
        "the refusal",
        "const r = document.getElementById('refused'); return r && !r.hidden",
    )
    .await;
    let frames = js(&worker, "return [...document.querySelectorAll('figure')].filter(f => f.offsetParent !== null).length").await;
    assert_eq!(frames, serde_json::json!(0), "no empty chart frames on the refused page");
    screenshots(&worker, "audit-refused").await;
    check_page(&worker, "refused page").await;
}

/// 每月一题 and the printed 月报: a problem reported again says how often lately (the reports
/// before the period count), and each compound's A4 page has its recurring problems, says when
/// its month is not over yet, and fits its page (no blank page after the last).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_report_has_a_page_per_compound_with_its_recurring_problems() {
    let now = now();
    let clock = ManualClock::new(Timestamp(now.0 - Millis::from_hours(40 * 24).0 as i64));
    let server = TestServer::start_in_process(clock.clone()).await;
    let mut kiosk = server.kiosk("c1").await;
    // Twice 40 days ago (another month), then today: the third is 每月一题.
    let at = |text| Report { building: "5号楼".into(), ..report("c1", text) };
    for text in ["楼道灯坏了", "楼道灯又坏了"] {
        kiosk.file(at(text)).await;
    }
    clock.set(now);
    let third = kiosk.file(at("楼道灯还是坏的")).await;
    assert_eq!(third.recurring.len(), 2);

    let driver = Driver::start();
    let desk = driver.session().await;
    board_log_in(&desk, &server, "boss").await;
    desk.goto(&format!("{}/audit", server.url)).await.unwrap();
    click(&desk, "button[data-period=month]").await;
    let line =
        wait_js(&desk, "每月一题", "return document.querySelector('#recurring li')?.textContent")
            .await;
    assert_eq!(line, "第一小区 5号楼 · 设施报修 · 近期共 3 次（本期 1 件）：0003");
    check_page(&desk, "每月一题").await;

    js(&desk, "window.print = () => {}; return true").await;
    click(&desk, "#print-report").await;
    wait_js(
        &desk,
        "a page per compound",
        "return document.querySelectorAll('#report .report-page').length === 3",
    )
    .await;
    let first = text_of(&desk, "#report .report-page:nth-child(1)").await;
    assert!(
        first.contains("每月一题")
            && first.contains("第一小区 5号楼 · 设施报修 · 近期共 3 次（本期 1 件）：0003"),
        "{first}"
    );
    assert!(first.contains("本月尚未结束，数字截至"), "{first}");
    let second = text_of(&desk, "#report .report-page:nth-child(2)").await;
    assert!(second.contains("本期没有反复发生的问题"), "{second}");
    // On A4 with the stylesheet's margins: three pages, no more.
    let a4 = fantoccini::wd::PrintConfiguration::builder()
        .size(fantoccini::wd::PrintSize::A4)
        .margins(fantoccini::wd::PrintMargins { top: 1.5, bottom: 1.5, left: 1.5, right: 1.5 })
        .shrink_to_fit(false)
        .build()
        .unwrap();
    let pdf = desk.print(a4).await.unwrap();
    std::fs::write(
        hongfan_tests::browser::screenshot_dir().join("audit-monthly-report-a4.pdf"),
        &pdf,
    )
    .unwrap();
    let marker = b"/Type /Page";
    let pages = pdf
        .windows(marker.len() + 1)
        .filter(|w| w.starts_with(marker) && w[marker.len()] != b's')
        .count();
    assert_eq!(pages, 3, "one A4 page per compound");
    desk.close().await.unwrap();
}

/// 楼长积分 on the audit page: the standings by month, a correction with a reason recorded at
/// the desk, every award listed, and the 5·20 楼长节 list to print.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_points_standings_are_read_corrected_and_printed() {
    let clock = ManualClock::new(now());
    let server = TestServer::start_in_process(clock.clone()).await;
    let head = server.login("head").await;
    let patrol = reqwest::Client::new()
        .post(format!("{}/api/patrols", server.url))
        .header("cookie", head)
        .header("origin", &server.url)
        .json(&serde_json::json!({ "buildings": ["3号楼"], "checked": "消防通道", "found": "" }))
        .send()
        .await
        .unwrap();
    assert_eq!(patrol.status(), 200);

    let driver = Driver::start();
    let desk = driver.session().await;
    board_log_in(&desk, &server, "boss").await;
    desk.goto(&format!("{}/audit", server.url)).await.unwrap();
    wait_js(
        &desk,
        "the standings",
        "return document.querySelector('#standings tbody tr th')?.textContent === '周楼长'",
    )
    .await;
    let row = text_of(&desk, "#standings tbody tr").await;
    assert!(row.ends_with('1'), "one patrol: {row}");
    // A correction needs a reason, and is recorded with it.
    js(&desk, "document.getElementById('adjust-points').value = '2'; document.getElementById('adjust-reason').value = '组织楼道大扫除'; return true").await;
    click(&desk, "#adjust button[type=submit]").await;
    wait_js(
        &desk,
        "the new total",
        "return document.querySelector('#standings tbody tr td:last-child')?.textContent === '3'",
    )
    .await;
    js(&desk, "document.getElementById('ledger-box').open = true; return true").await;
    let ledger = text_of(&desk, "#ledger").await;
    assert!(
        ledger.contains("+2 · 书记调整 · 组织楼道大扫除 · 胡书记") && ledger.contains("+1 · 巡防"),
        "{ledger}"
    );
    js(&desk, "document.getElementById('points').scrollIntoView(); return true").await;
    screenshots(&desk, "audit-points").await;
    check_page(&desk, "points standings").await;
    js(&desk, "window.print = () => {}; return true").await;
    click(&desk, "#print-points").await;
    let list = text_of(&desk, "#festival").await;
    assert!(list.contains("5·20 楼长节") && list.contains("周楼长"), "{list}");
}
