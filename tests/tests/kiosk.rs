//! The kiosk as a first-time elderly resident meets it, in headless Chromium against the real
//! binary: a report with taps only, the on-screen keypad, a voice note and a photo, the ticket
//! kept on a slip and followed on the resident's own phone, a ticket number that alone opens
//! nothing, a report stored after its resident left, and the idle prompt. axe runs every rule on
//! every screen; each screen is photographed at 1280×800 and 390×844.

use fantoccini::Client;
use hongfan_shared::protocol::{ClientMessage, ServerMessage};
use hongfan_shared::{Incident, IncidentId};
use hongfan_tests::browser::{
    Driver, accessibility_problems, click, keypad, keypad_digits, screenshot_dir, screenshots,
    text_of, wait_js,
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

async fn clean(client: &Client, screen: &str) {
    assert_eq!(accessibility_problems(client).await, Vec::<String>::new(), "{screen}");
}

/// Counts the taps (pointer presses) the page receives.
async fn count_taps(client: &Client) {
    client
        .execute("window.taps = 0; document.addEventListener('pointerdown', () => window.taps++, true); return true", vec![])
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
    clean(&kiosk, "home").await;

    // 助老: the emergency numbers first, in large type; a kiosk report is no emergency call.
    click(&kiosk, ".categories button[data-category=elderly]").await;
    let emergency = text_of(&kiosk, ".emergency").await;
    assert!(
        emergency.contains("110") && emergency.contains("119") && emergency.contains("120"),
        "{emergency}"
    );
    screenshots(&kiosk, "kiosk-form-emergency").await;
    clean(&kiosk, "form with emergency numbers").await;
    click(&kiosk, "#back").await;

    // A repair, with taps only: category, phrase, building, submit. No key is pressed.
    count_taps(&kiosk).await;
    click(&kiosk, ".categories button[data-category=repair]").await;
    click(&kiosk, "button[data-phrase='楼道灯不亮']").await;
    screenshots(&kiosk, "kiosk-form").await;
    clean(&kiosk, "form").await;
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
    screenshots(&kiosk, "kiosk-ticket").await;
    clean(&kiosk, "ticket").await;
    let reported = incident(&server, &ticket).await;
    assert_eq!(reported.report.description, "楼道灯不亮");
    assert_eq!(reported.report.building, "3号楼");

    // The slip: the receipt printer's layout (what the page shows while printing), printed to
    // PDF and photographed.
    let pdf = kiosk.print(fantoccini::wd::PrintConfiguration::default()).await.unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    std::fs::write(screenshot_dir().join("kiosk-slip.pdf"), pdf).unwrap();
    let slip = text_of(&kiosk, "#slip").await;
    assert!(slip.contains(&ticket) && slip.contains("3号楼"), "{slip}");
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
    phone.set_window_size(390, 844).await.unwrap();
    phone.goto(&link).await.unwrap();
    wait_js(
        &phone,
        "the status page",
        "return document.getElementById('status')?.dataset.status === 'reported'",
    )
    .await;
    screenshots(&phone, "status-reported").await;
    clean(&phone, "status page").await;
    let mut wang = server.user("wang").await;
    wang.send(&ClientMessage::Claim { id: 1, incident: reported.id }).await;
    wang.recv_until(|m| matches!(m, ServerMessage::Done { id: 1, .. })).await;
    wait_js(&phone, "claimed, with the worker's name", "return document.getElementById('status')?.dataset.status === 'claimed' && document.body.textContent.includes('王芳')").await;
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
    clean(&phone, "status page, resolved").await;
    // 解决了吗？ Not yet: it is handled again (二次办理), and the page follows it again.
    click(&phone, "button[data-solved=false]").await;
    screenshots(&phone, "status-not-solved").await;
    clean(&phone, "status page, answering").await;
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
    clean(&kiosk, "lookup").await;
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
    clean(&kiosk, "keypad").await;
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
    clean(&kiosk, "camera").await;
    click(&kiosk, "#take-photo").await;
    wait_js(&kiosk, "the photo saved", "return !!document.getElementById('photo-saved')").await;
    screenshots(&kiosk, "kiosk-form-attached").await;
    clean(&kiosk, "form with attachments").await;
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
    let greyed = text_of(&kiosk, "#submit").await;
    assert_eq!(greyed, "正在提交…");
    screenshots(&kiosk, "kiosk-offline-saved").await;
    clean(&kiosk, "saved offline (the greyed button must be readable)").await;
    click(&kiosk, "#back").await;

    // Back online: stored, and the home screen says so with its ticket, for the slip.
    server.restart();
    let banner = text_of(&kiosk, ".notice.late").await;
    assert!(banner.contains("5号楼的上报已受理") && banner.contains("0001"), "{banner}");
    screenshots(&kiosk, "kiosk-late-ticket").await;
    clean(&kiosk, "late ticket").await;
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
    clean(&kiosk, "idle question").await;
    click(&kiosk, "#more-time").await;
    let kept = kiosk.execute("return !document.getElementById('idle-ask') && document.querySelector(\"button[data-phrase='电梯故障']\").getAttribute('aria-pressed')", vec![]).await.unwrap();
    assert_eq!(kept, serde_json::json!("true"), "a touch keeps what was chosen");
    wait_js(&kiosk, "the idle question again", "return !!document.getElementById('idle-ask')")
        .await;
    wait_js(&kiosk, "the start, in Chinese", "return !document.getElementById('idle-ask') && document.documentElement.lang === 'zh-CN' && document.querySelectorAll('.categories button').length > 0 && document.querySelector('h2').textContent === '请选择要反映的事项'").await;
    kiosk.close().await.unwrap();
}
