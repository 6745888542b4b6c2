//! The kiosk as a first-time elderly resident meets it, in headless Chromium against the real
//! binary: a report with taps only, the on-screen keypad, a voice note and a photo, the ticket
//! kept on a slip and followed on the resident's own phone, a ticket number that alone opens
//! nothing, a report stored after its resident left, and the idle prompt. axe runs every rule on
//! every screen; each screen is photographed at 1280×800 and 390×844.

use fantoccini::Client;
use hongfan_shared::protocol::{ClientMessage, ServerMessage};
use hongfan_shared::{Incident, IncidentId};
use hongfan_tests::browser::{
    Driver, check_page, click, keypad, keypad_digits, on_screen, resize, screenshot,
    screenshot_dir, screenshots, tap, text_of, wait_js,
};
use hongfan_tests::server::TestServer;
use tokio::sync::Semaphore;

/// Two browsers at a time on two cores: the tests in this file take turns.
static TURN: Semaphore = Semaphore::const_new(1);

async fn pair(client: &Client, server: &TestServer) {
    let credential = server.kiosk_credential("c1");
    client.goto(&format!("{}/kiosk#pair={credential}", server.url)).await.unwrap();
    wait_js(
        client,
        "the categories",
        "return document.querySelectorAll('.categories button').length > 0",
    )
    .await;
}

/// Counts the taps (pointer presses) the page receives.
async fn count_taps(client: &Client) {
    client
        .execute("window.taps = 0; if (!window.counting) { window.counting = true; document.addEventListener('pointerdown', () => window.taps++, true); } return true", vec![])
        .await
        .unwrap();
}

async fn taps(client: &Client) -> u64 {
    client.execute("return window.taps", vec![]).await.unwrap().as_u64().unwrap()
}

/// The open incident behind a ticket on screen, as a supervisor sees it.
async fn incident(server: &TestServer, ticket: &str) -> Incident {
    let mut boss = server.user("boss").await;
    let (snapshot, _) = boss.subscribe(None).await;
    let ServerMessage::Snapshot { incidents, .. } = snapshot else { panic!("{snapshot:?}") };
    incidents.into_iter().find(|i| i.ticket.as_str() == ticket).expect("the ticket's incident")
}

async fn fetch_attachment(
    server: &TestServer,
    cookie: &str,
    incident: IncidentId,
    file: &str,
) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/api/incidents/{}/attachments/{file}", server.url, incident.0))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_time_resident_reports_with_taps_only_and_follows_it_on_their_phone() {
    let _turn = TURN.acquire().await.unwrap();
    let server = TestServer::start().await;
    let driver = Driver::start();
    let (kiosk, phone) = (driver.session().await, driver.session().await);
    pair(&kiosk, &server).await;
    screenshots(&kiosk, "kiosk-home").await;
    check_page(&kiosk, "home").await;

    // 助老: the emergency numbers first, in large type; a kiosk report is no emergency call.
    click(&kiosk, ".categories button[data-category=elderly]").await;
    let emergency = text_of(&kiosk, ".emergency").await;
    assert!(
        emergency.contains("110") && emergency.contains("119") && emergency.contains("120"),
        "{emergency}"
    );
    screenshots(&kiosk, "kiosk-form-emergency").await;
    check_page(&kiosk, "form with emergency numbers").await;
    click(&kiosk, "#back").await;

    // A repair, with taps only: category, phrase, building, submit. No key is pressed.
    count_taps(&kiosk).await;
    click(&kiosk, ".categories button[data-category=repair]").await;
    click(&kiosk, "button[data-phrase='楼道灯不亮']").await;
    screenshots(&kiosk, "kiosk-form").await;
    check_page(&kiosk, "form").await;
    click(&kiosk, "button[data-building='3号楼']").await;
    click(&kiosk, "#submit").await;
    wait_js(&kiosk, "the ticket", "return document.getElementById('ticket')?.textContent").await;
    assert!(taps(&kiosk).await <= 5, "at most 5 taps from the home screen: {}", taps(&kiosk).await);
    let ticket = text_of(&kiosk, "#ticket").await;
    assert_eq!(ticket, "0001");
    let shown = text_of(&kiosk, "main").await;
    assert!(!shown.contains("null") && !shown.contains("undefined"), "{shown}");
    let link = wait_js(
        &kiosk,
        "the status QR code",
        "return document.getElementById('status-qr')?.dataset.link",
    )
    .await;
    let link = link.as_str().unwrap().to_owned();
    let promise = text_of(&kiosk, "#promise").await;
    assert!(promise.starts_with("网格员将在 1 小时内联系您"), "{promise}");
    screenshots(&kiosk, "kiosk-ticket").await;
    check_page(&kiosk, "ticket").await;
    let reported = incident(&server, &ticket).await;
    assert_eq!(reported.report.description, "楼道灯不亮");
    assert_eq!(reported.report.building, "3号楼");

    // The slip: the receipt printer's layout (what the page shows while printing), printed to
    // PDF and photographed.
    let pdf = kiosk.print(fantoccini::wd::PrintConfiguration::default()).await.unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    std::fs::write(screenshot_dir().join("kiosk-slip.pdf"), pdf).unwrap();
    let slip = text_of(&kiosk, "#slip").await;
    assert!(slip.contains(&ticket) && slip.contains("第一小区 3号楼"), "{slip}");
    // The receipt printer's page size is one the browser takes (an invalid one is dropped).
    let page = js(&kiosk, "const all = (rules) => [...rules].flatMap((r) => [r, ...(r.cssRules ? all(r.cssRules) : [])]); return [...document.styleSheets].flatMap((s) => all(s.cssRules)).filter((r) => r instanceof CSSPageRule && r.selectorText === 'slip').map((r) => r.style.getPropertyValue('size'))").await;
    assert_eq!(page, serde_json::json!(["80mm 160mm"]), "@page size");
    let named = js(&kiosk, "document.body.classList.add('printing'); const page = getComputedStyle(document.getElementById('slip')).page; document.body.classList.remove('printing'); return page").await;
    assert_eq!(named, "slip", "the slip prints on the slip's page");
    // The page as it prints (the browser marks it `printing` between beforeprint and afterprint).
    kiosk.execute("document.body.classList.add('printing'); return true", vec![]).await.unwrap();
    screenshots(&kiosk, "kiosk-slip-printed").await;
    kiosk.refresh().await.unwrap();
    wait_js(
        &kiosk,
        "home again",
        "return document.querySelectorAll('.categories button').length > 0",
    )
    .await;

    // The resident's phone opens the QR code's link: the status page follows the incident live.
    resize(&phone, (390, 844)).await;
    phone.goto(&link).await.unwrap();
    wait_js(
        &phone,
        "the status page",
        "return document.getElementById('status')?.dataset.status === 'reported'",
    )
    .await;
    // What the office promised, from the server's deadline: the same words as the ticket's.
    let promise = text_of(&phone, "#promise").await;
    assert!(promise.starts_with("网格员将在 1 小时内联系您"), "{promise}");
    screenshots(&phone, "status-reported").await;
    check_page(&phone, "status page").await;
    let mut wang = server.user("wang").await;
    wang.send(&ClientMessage::Claim { id: 1, incident: reported.id }).await;
    wang.recv_until(|m| matches!(m, ServerMessage::Done { id: 1, .. })).await;
    wait_js(&phone, "claimed, with the worker's name", "return document.getElementById('status')?.dataset.status === 'claimed' && document.body.textContent.includes('王芳')").await;
    let promise = text_of(&phone, "#promise").await;
    assert!(promise.starts_with("承诺 ") && promise.ends_with(" 前办结"), "{promise}");
    // The building head tells the resident (not an internal note): it is on their page; the
    // workers' note is not.
    let mut head = server.user("head").await;
    head.send(&ClientMessage::Tell {
        id: 1,
        incident: reported.id,
        text: "已联系物业，明天上午来修".into(),
    })
    .await;
    head.recv_until(|m| matches!(m, ServerMessage::Done { id: 1, .. })).await;
    wang.send(&ClientMessage::Note { id: 9, incident: reported.id, text: "INTERNAL-NOTE".into() })
        .await;
    wang.recv_until(|m| matches!(m, ServerMessage::Done { id: 9, .. })).await;
    wait_js(&phone, "the building head's message", "return document.getElementById('notices')?.textContent.includes('周楼长') && document.getElementById('notices').textContent.includes('明天上午来修')").await;
    assert!(
        !text_of(&phone, "body").await.contains("INTERNAL-NOTE"),
        "internal notes stay internal"
    );
    screenshots(&phone, "status-message").await;
    wang.send(&ClientMessage::Resolve {
        id: 2,
        incident: reported.id,
        outcome: "已更换灯泡".into(),
        proof: None,
    })
    .await;
    wang.recv_until(|m| matches!(m, ServerMessage::Done { id: 2, .. })).await;
    wait_js(&phone, "已办结 and what was done", "return document.getElementById('status')?.textContent === '已办结' && document.getElementById('outcome')?.textContent.includes('已更换灯泡')").await;
    screenshots(&phone, "status-resolved").await;
    check_page(&phone, "status page, resolved").await;
    // 解决了吗？ Not yet: it is handled again (二次办理), and the page follows it again.
    click(&phone, "button[data-solved=false]").await;
    screenshots(&phone, "status-not-solved").await;
    check_page(&phone, "status page, answering").await;
    click(&phone, "button[data-rating=dissatisfied]").await;
    wait_js(
        &phone,
        "open again as a second handling",
        "return document.getElementById('status')?.dataset.status === 'reported' && document.getElementById('rated')?.textContent.includes('二次办理')",
    )
    .await;
    for (n, message) in [
        ClientMessage::Claim { id: 3, incident: reported.id },
        ClientMessage::Resolve {
            id: 4,
            incident: reported.id,
            outcome: "已更换整条线路".into(),
            proof: None,
        },
    ]
    .into_iter()
    .enumerate()
    {
        wang.send(&message).await;
        let id = 3 + n as u64;
        wang.recv_until(|m| matches!(m, ServerMessage::Done { id: i, .. } if *i == id)).await;
    }
    wait_js(
        &phone,
        "resolved again",
        "return document.getElementById('outcome')?.textContent.includes('整条线路')",
    )
    .await;
    click(&phone, "button[data-solved=true]").await;
    click(&phone, "button[data-rating=satisfied]").await;
    wait_js(
        &phone,
        "the thanks",
        "return document.getElementById('rated')?.textContent.includes('满意')",
    )
    .await;
    // Recorded by the server, as the status page's own answer says on a fresh look.
    let (ticket_no, key) = link.rsplit_once('#').unwrap().1.split_once('-').unwrap();
    let status: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/api/status", server.url))
        .json(&serde_json::json!({ "ticket": ticket_no, "key": key }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["rating"], "satisfied");
    screenshots(&phone, "status-rated").await;

    // A ticket number alone opens nothing at the kiosk; with the phone's last four digits (none
    // was given here: a wrong proof) it is refused too, in words.
    click(&kiosk, "#lookup").await;
    keypad(&kiosk, "#lookup-ticket", "1").await;
    let disabled =
        kiosk.execute("return document.getElementById('find').disabled", vec![]).await.unwrap();
    assert_eq!(disabled, serde_json::json!(true), "no lookup by the number alone");
    keypad(&kiosk, "#lookup-phone", "1234").await;
    screenshots(&kiosk, "kiosk-lookup").await;
    check_page(&kiosk, "lookup").await;
    click(&kiosk, "#find").await;
    let refused = text_of(&kiosk, "#problem").await;
    assert!(refused.contains("对不上"), "{refused}");
    // With the slip's code it opens; 完成 then goes home, with nothing left over on screen.
    keypad(&kiosk, "#lookup-key", key).await;
    click(&kiosk, "#find").await;
    wait_js(
        &kiosk,
        "the ticket found",
        "return document.getElementById('ticket')?.textContent === '0001'",
    )
    .await;
    assert!(text_of(&kiosk, "main").await.contains("谢谢您的评价：满意"));
    click(&kiosk, "#done").await;
    let home = kiosk
        .execute("return document.querySelectorAll('.categories button').length > 0 && document.getElementById('toast').hidden && !document.getElementById('problem')", vec![])
        .await
        .unwrap();
    assert_eq!(home, serde_json::json!(true), "完成 goes home, no stale message");
    kiosk.close().await.unwrap();
    phone.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keypad_a_voice_note_and_a_photo_reach_the_claiming_worker_only() {
    let _turn = TURN.acquire().await.unwrap();
    let server = TestServer::start().await;
    let driver = Driver::start();
    let kiosk = driver.session().await;
    pair(&kiosk, &server).await;
    click(&kiosk, ".categories button[data-category=repair]").await;

    // The room and the phone on the big keypad, no keyboard.
    click(&kiosk, "#key-room").await;
    screenshots(&kiosk, "kiosk-keypad").await;
    check_page(&kiosk, "keypad").await;
    for key in ["5", "0", "2", "delete", "1"] {
        click(&kiosk, &format!("#keypad [data-key='{key}']")).await;
    }
    assert_eq!(text_of(&kiosk, "#keypad-value").await, "501");
    click(&kiosk, "#keypad-ok").await;
    keypad(&kiosk, "#key-phone", "13912345678").await;
    assert!(text_of(&kiosk, "#key-room").await.contains("501"));

    // A voice note (the browser's test tone) and a photo (its test picture).
    click(&kiosk, "#record").await;
    wait_js(&kiosk, "recording", "return !!document.getElementById('recording')").await;
    click(&kiosk, "#record").await;
    wait_js(&kiosk, "the voice note saved", "return !!document.getElementById('voice-saved')")
        .await;
    click(&kiosk, "#photo").await;
    wait_js(&kiosk, "the camera", "return document.getElementById('camera-view')?.videoWidth > 0")
        .await;
    screenshots(&kiosk, "kiosk-camera").await;
    check_page(&kiosk, "camera").await;
    click(&kiosk, "#take-photo").await;
    wait_js(&kiosk, "the photo saved", "return !!document.getElementById('photo-saved')").await;
    screenshots(&kiosk, "kiosk-form-attached").await;
    check_page(&kiosk, "form with attachments").await;
    // Nothing said and no phrase: the voice note speaks for the resident. Where is still asked.
    click(&kiosk, "#submit").await;
    assert!(text_of(&kiosk, "#problem").await.contains("楼号"));
    click(&kiosk, "button[data-building='公共区域']").await;
    click(&kiosk, "#submit").await;
    let ticket =
        wait_js(&kiosk, "the ticket", "return document.getElementById('ticket')?.textContent")
            .await;
    let reported = incident(&server, ticket.as_str().unwrap()).await;
    assert_eq!(
        (reported.report.room.as_str(), reported.report.building.as_str()),
        ("501", "公共区域")
    );
    assert_eq!(reported.report.phone.as_deref(), Some("139****5678"));
    let kinds: Vec<_> = reported.report.attachments.iter().map(|a| a.kind).collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");

    // The claiming worker sees and hears them on the board; another compound's worker cannot.
    let mut wang = server.user("wang").await;
    wang.send(&ClientMessage::Claim { id: 1, incident: reported.id }).await;
    wang.recv_until(|m| matches!(m, ServerMessage::Done { id: 1, .. })).await;
    let (wang_cookie, zhao_cookie) = (server.login("wang").await, server.login("zhao").await);
    for attachment in &reported.report.attachments {
        assert_eq!(fetch_attachment(&server, &wang_cookie, reported.id, &attachment.id).await, 200);
        assert_eq!(fetch_attachment(&server, &zhao_cookie, reported.id, &attachment.id).await, 404);
    }
    let board = driver.session().await;
    hongfan_tests::browser::board_log_in(&board, &server, "wang").await;
    wait_js(&board, "the photo on the card", "const img = document.querySelector('.card .attachments img'); return img && img.complete && img.naturalWidth > 0").await;
    wait_js(
        &board,
        "the voice note on the card",
        "return !!document.querySelector('.card .attachments audio')",
    )
    .await;
    screenshots(&board, "board-attachments").await;
    kiosk.close().await.unwrap();
    board.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_stored_after_its_resident_left_is_announced_and_the_idle_kiosk_starts_over_in_chinese()
 {
    let _turn = TURN.acquire().await.unwrap();
    let mut server = TestServer::start().await;
    let driver = Driver::start();
    let kiosk = driver.session().await;
    resize(&kiosk, (1280, 800)).await;
    pair(&kiosk, &server).await;
    // This station gives two seconds before asking, two more before starting over.
    kiosk
        .execute("localStorage.setItem('hongfan.kiosk.idle', JSON.stringify({ ask: 2, form: 2, grace: 2 })); return true", vec![])
        .await
        .unwrap();
    kiosk.refresh().await.unwrap();
    wait_js(
        &kiosk,
        "the categories",
        "return document.querySelectorAll('.categories button').length > 0",
    )
    .await;

    // The link is down; the resident reports, the kiosk keeps it, the resident leaves.
    server.stop();
    wait_js(&kiosk, "offline", "return document.getElementById('link').dataset.state !== 'online'")
        .await;
    click(&kiosk, ".categories button[data-category=repair]").await;
    click(&kiosk, "button[data-phrase='水管漏水']").await;
    click(&kiosk, "button[data-building='5号楼']").await;
    keypad(&kiosk, "#key-phone", "13912345678").await;
    click(&kiosk, "#submit").await;
    wait_js(&kiosk, "kept offline", "return !!document.querySelector('.notice')").await;
    // Said where the finger is: above 提交, on the screen as it stands.
    assert!(on_screen(&kiosk, ".report-form .notice").await, "the notice is off screen");
    let greyed = text_of(&kiosk, "#submit").await;
    assert_eq!(greyed, "正在提交…");
    screenshots(&kiosk, "kiosk-offline-saved").await;
    check_page(&kiosk, "saved offline (the greyed button must be readable)").await;
    click(&kiosk, "#back").await;

    // Back online: stored, and the home screen says so with its ticket, for the slip.
    server.restart();
    let banner = text_of(&kiosk, ".notice.late").await;
    assert!(banner.contains("5号楼的上报已受理") && banner.contains("0001"), "{banner}");
    screenshots(&kiosk, "kiosk-late-ticket").await;
    check_page(&kiosk, "late ticket").await;
    // Anyone may read the banner; the slip goes to whoever knows the phone's last four digits.
    click(&kiosk, ".notice.late button").await;
    keypad_digits(&kiosk, "1234").await;
    assert!(text_of(&kiosk, "#problem").await.contains("对不上"));
    click(&kiosk, ".notice.late button").await;
    keypad_digits(&kiosk, "5678").await;
    assert_eq!(text_of(&kiosk, "#ticket").await, "0001");
    wait_js(
        &kiosk,
        "the slip's code",
        "return document.getElementById('slip-code')?.textContent.length > 0",
    )
    .await;
    click(&kiosk, "#done").await;

    // Idle: asked first; a touch keeps the form; untouched, it starts over, in Chinese.
    click(&kiosk, "#lang").await;
    wait_js(&kiosk, "English", "return document.documentElement.lang === 'en'").await;
    click(&kiosk, ".categories button[data-category=repair]").await;
    click(&kiosk, "button[data-phrase='电梯故障']").await;
    wait_js(&kiosk, "the idle question", "return !!document.getElementById('idle-ask')").await;
    screenshots(&kiosk, "kiosk-idle-ask").await;
    check_page(&kiosk, "idle question").await;
    click(&kiosk, "#more-time").await;
    let kept = kiosk.execute("return !document.getElementById('idle-ask') && document.querySelector(\"button[data-phrase='电梯故障']\").getAttribute('aria-pressed')", vec![]).await.unwrap();
    assert_eq!(kept, serde_json::json!("true"), "a touch keeps what was chosen");
    wait_js(&kiosk, "the idle question again", "return !!document.getElementById('idle-ask')")
        .await;
    wait_js(&kiosk, "the start, in Chinese", "return !document.getElementById('idle-ask') && document.documentElement.lang === 'zh-CN' && document.querySelectorAll('.categories button').length > 0 && document.querySelector('h2').textContent === '请选择要反映的事项'").await;
    kiosk.close().await.unwrap();
}

/// The kiosk's screens as a station shows them (1280×800 and 1366×768 landscape, 1080×1920
/// portrait): the form whole on one screen, every tap where it is without scrolling, the page
/// never jumping (it is drawn again in place, the focus kept on what was tapped), a message
/// beside the button that was pressed, and the minimal report in 4 taps. Every category fits,
/// in both languages, with a building and its units showing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_fits_one_screen_and_answers_where_the_finger_is() {
    let _turn = TURN.acquire().await.unwrap();
    let server = TestServer::start().await;
    let driver = Driver::start();
    let kiosk = driver.session().await;
    pair(&kiosk, &server).await;
    let mut tickets = Vec::new();
    for (w, h) in [(1280, 800), (1366, 768), (1080, 1920)] {
        resize(&kiosk, (w, h)).await;
        let size = format!("{w}x{h}");
        // Nothing said yet: 提交 says so above the finger, and marks what is missing.
        tap(&kiosk, ".categories button[data-category=repair]").await;
        tap(&kiosk, "#submit").await;
        assert!(on_screen(&kiosk, "#problem").await, "{size}: the message is not on screen");
        assert!(text_of(&kiosk, "#problem").await.contains("发生了什么"));
        assert_eq!(
            js(&kiosk, "return document.querySelector('fieldset.phrases.needed') !== null").await,
            true
        );
        // A phrase, then 提交 without a building: the message stays by the button; the page
        // did not move and 在哪里 is marked.
        tap(&kiosk, "button[data-phrase='楼道灯不亮']").await;
        assert_eq!(
            js(&kiosk, "return document.getElementById('problem')").await,
            serde_json::Value::Null,
            "a tap clears the message"
        );
        tap(&kiosk, "#submit").await;
        assert!(on_screen(&kiosk, "#problem").await, "{size}: the message is not on screen");
        assert!(text_of(&kiosk, "#problem").await.contains("楼号"));
        let near = js(&kiosk, "const p = document.getElementById('problem').getBoundingClientRect(), b = document.getElementById('submit').getBoundingClientRect(); return b.top - p.bottom").await;
        assert!(
            (0.0..=40.0).contains(&near.as_f64().unwrap()),
            "{size}: the message is {near} px above 提交"
        );
        assert_eq!(
            js(&kiosk, "return document.querySelector('fieldset.where.needed') !== null").await,
            true
        );
        screenshot(&kiosk, &format!("kiosk-no-building-{size}")).await;
        // The building: its units appear where they were kept for them, the focus stays on the
        // building tapped, and 提交 is still on screen.
        tap(&kiosk, "button[data-building='3号楼']").await;
        assert!(
            on_screen(&kiosk, "button[data-unit='2单元']").await,
            "{size}: the units are off screen"
        );
        assert!(on_screen(&kiosk, "#submit").await, "{size}: 提交 is off screen");
        let focused = js(&kiosk, "return document.activeElement.dataset.building").await;
        assert_eq!(focused, "3号楼", "{size}: the focus left the button tapped");
        screenshot(&kiosk, &format!("kiosk-building-{size}")).await;
        click(&kiosk, "#back").await;

        // The minimal report: category, phrase, building, 提交, each where it is.
        count_taps(&kiosk).await;
        tap(&kiosk, ".categories button[data-category=repair]").await;
        tap(&kiosk, "button[data-phrase='电梯故障']").await;
        tap(&kiosk, "button[data-building='5号楼']").await;
        tap(&kiosk, "#submit").await;
        let ticket =
            wait_js(&kiosk, "the ticket", "return document.getElementById('ticket')?.textContent")
                .await;
        assert_eq!(taps(&kiosk).await, 4, "{size}");
        wait_js(&kiosk, "the QR code", "return document.getElementById('status-qr')?.dataset.link")
            .await;
        assert!(on_screen(&kiosk, "#done").await, "{size}: the ticket does not fit");
        let promise = text_of(&kiosk, "#promise").await;
        assert!(promise.starts_with("网格员将在 1 小时内联系您"), "{promise}");
        screenshot(&kiosk, &format!("kiosk-ticket-{size}")).await;
        tickets.push((
            ticket.as_str().unwrap().to_owned(),
            text_of(&kiosk, "#slip-code").await.replace(' ', ""),
        ));
        tap(&kiosk, "#done").await;

        // Every category, in both languages, with the building of most units chosen: whole.
        for language in ["zh", "en"] {
            if language == "en" {
                click(&kiosk, "#lang").await;
            }
            let overflow = js(&kiosk, FIT_EVERY_CATEGORY).await;
            assert_eq!(
                overflow,
                serde_json::json!([]),
                "{size} {language}: these forms do not fit"
            );
        }
        click(&kiosk, "#lang").await;
        wait_js(&kiosk, "Chinese again", "return document.documentElement.lang === 'zh-CN'").await;
    }

    // Resolved: looked up with the slip's code, the kiosk asks 解决了吗？ (and prints nothing
    // broken under it: "nullnullnull" once did).
    let (ticket, key) = &tickets[0];
    let mut wang = server.user("wang").await;
    let (snapshot, _) = wang.subscribe(None).await;
    let ServerMessage::Snapshot { incidents, .. } = snapshot else { panic!("{snapshot:?}") };
    let id = incidents.iter().find(|i| i.ticket.as_str() == ticket).expect("the ticket").id;
    wang.send(&ClientMessage::Claim { id: 1, incident: id }).await;
    wang.recv_until(|m| matches!(m, ServerMessage::Done { id: 1, .. })).await;
    let resolve =
        ClientMessage::Resolve { id: 2, incident: id, outcome: "已修好".into(), proof: None };
    wang.send(&resolve).await;
    wang.recv_until(|m| matches!(m, ServerMessage::Done { id: 2, .. })).await;
    resize(&kiosk, (1280, 800)).await;
    tap(&kiosk, "#lookup").await;
    keypad(&kiosk, "#lookup-ticket", ticket).await;
    keypad(&kiosk, "#lookup-key", key).await;
    click(&kiosk, "#find").await;
    wait_js(
        &kiosk,
        "解决了吗？",
        "return document.querySelector('.rating')?.textContent.includes('解决了吗')",
    )
    .await;
    let asked = text_of(&kiosk, ".rating").await;
    assert!(!asked.contains("null"), "{asked}");
    screenshot(&kiosk, "kiosk-lookup-resolved-1280x800").await;
    check_page(&kiosk, "the ticket looked up, resolved").await;
    kiosk.close().await.unwrap();
}

/// Opens each category's form, chooses its last building (whose units then show: every building
/// of a compound has as many), and lists the forms taller or wider than the screen (none should
/// be); back home at the end.
const FIT_EVERY_CATEGORY: &str = r#"
const misfits = [];
for (const tile of [...document.querySelectorAll('.categories button')].map((b) => b.dataset.category)) {
  document.querySelector(`.categories button[data-category="${tile}"]`).click();
  const buildings = [...document.querySelectorAll('button[data-building]')];
  buildings.at(-2).click();
  const page = document.scrollingElement;
  const submit = document.getElementById('submit').getBoundingClientRect();
  if (page.scrollHeight > innerHeight || page.scrollWidth > innerWidth || submit.bottom > innerHeight) {
    misfits.push(`${tile}: ${page.scrollWidth}×${page.scrollHeight}, 提交 at ${Math.round(submit.bottom)}`);
  }
  document.getElementById('back').click();
}
return misfits;
"#;

async fn js(client: &Client, script: &str) -> serde_json::Value {
    client.execute(script, vec![]).await.expect(script)
}
