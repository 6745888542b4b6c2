//! Headless Chromium driven over WebDriver (fantoccini), for the end-to-end page tests.
//!
//! The driver and every browser process run under `setpriv --pdeathsig KILL`, so a killed test
//! run leaves no Chromium behind. Without Debian's chromium and chromium-driver the tests fail
//! at once and say how to install them: they never pass silently.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util_client::client::legacy::connect::HttpConnector;

use crate::DEADLINE;

const CHROMIUM: &str = "/usr/lib/chromium/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";
const INSTALL: &str =
    "apt-get install -y chromium chromium-driver fonts-wqy-microhei (bash tests/run.sh does this)";

/// One chromedriver; each `session` is a separate browser with its own cookies.
#[derive(Debug)]
pub struct Driver {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Driver {
    pub fn start() -> Driver {
        for needed in [CHROMIUM, DRIVER] {
            assert!(Path::new(needed).exists(), "{needed} is missing: {INSTALL}");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        // chromedriver starts this instead of Chromium, so the browser dies with the driver.
        let wrapper = dir.path().join("chromium");
        std::fs::write(
            &wrapper,
            format!("#!/bin/sh\nexec setpriv --pdeathsig KILL {CHROMIUM} \"$@\"\n"),
        )
        .expect("write wrapper");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut child = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", DRIVER, "--port=0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let port = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                // "ChromeDriver was started successfully on port 44399." (an earlier line says port 0)
                line.split("successfully on port ")
                    .nth(1)
                    .and_then(|p| p.trim_end_matches('.').trim().parse().ok())
            })
            .expect("chromedriver printed its port");
        std::thread::spawn(move || lines.for_each(drop));
        Driver { child, port, dir }
    }

    /// A new browser window of its own (own profile, own cookies) at 1280×800.
    pub async fn session(&self) -> Client {
        let profile = self.dir.path().join(format!("profile-{}", rand_suffix()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": self.dir.path().join("chromium"),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,800",
                    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                    "--disable-backgrounding-occluded-windows", "--lang=zh-CN",
                    // A kiosk's microphone and camera: a test tone and a test picture, allowed
                    // without asking.
                    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| panic!("cannot start a browser session ({e}): {INSTALL}"))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Waits (polling, with a deadline) until `script` returns something truthy; returns it.
pub async fn wait_js(client: &Client, what: &str, script: &str) -> serde_json::Value {
    wait_js_within(client, what, script, DEADLINE).await
}

pub async fn wait_js_within(
    client: &Client,
    what: &str,
    script: &str,
    deadline: Duration,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let value = client.execute(script, vec![]).await.unwrap_or(serde_json::Value::Null);
        let truthy = match &value {
            serde_json::Value::Null | serde_json::Value::Bool(false) => false,
            serde_json::Value::String(s) => !s.is_empty(),
            _ => true,
        };
        if truthy {
            return value;
        }
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        // Poll again at once: each round trip to the browser already takes a few milliseconds.
        tokio::task::yield_now().await;
    }
}

/// The text of the first element matching a CSS selector, waiting for it to exist. Read in the
/// page, so a re-render between finding and reading cannot leave a stale element.
pub async fn text_of(client: &Client, css: &str) -> String {
    let script =
        format!("const e = document.querySelector({css:?}); return e ? e.textContent : null");
    let value = wait_js(client, css, &script).await;
    value.as_str().unwrap_or_default().to_owned()
}

/// Finds an element and acts on it, again when the page re-rendered it meanwhile.
async fn with_element<F, Fut>(client: &Client, css: &str, what: &str, act: F)
where
    F: Fn(fantoccini::elements::Element) -> Fut,
    Fut: std::future::Future<Output = Result<(), fantoccini::error::CmdError>>,
{
    let start = Instant::now();
    loop {
        let element = client
            .wait()
            .at_most(DEADLINE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        match act(element).await {
            Ok(()) => return,
            Err(e) if start.elapsed() < DEADLINE && e.to_string().contains("stale") => continue,
            Err(e) => panic!("{what} {css}: {e}"),
        }
    }
}

pub async fn click(client: &Client, css: &str) {
    with_element(client, css, "click", |e| async move { e.click().await }).await;
}

pub async fn fill(client: &Client, css: &str, text: &str) {
    with_element(client, css, "type into", |e| async move { e.send_keys(text).await }).await;
}

/// Where screenshots go: `target/screenshots/`, for a person to look at.
/// Logs `login` in (the test password) on the login page and waits for the live board.
pub async fn board_log_in(client: &Client, server: &crate::server::TestServer, login: &str) {
    client.goto(&format!("{}/login?next=/board", server.url)).await.expect("login page");
    fill(client, "#login", login).await;
    fill(client, "#password", crate::server::PASSWORD).await;
    click(client, "#submit").await;
    wait_js(
        client,
        "the board to connect",
        "return document.getElementById('link')?.dataset.state === 'online'",
    )
    .await;
}

/// The board's card of one ticket, as a CSS selector.
pub fn card(ticket: &str) -> String {
    format!(".card[data-ticket='{ticket}']")
}

/// Enters `digits` on the kiosk's on-screen keypad (opened by the button `opener`) and confirms.
pub async fn keypad(client: &Client, opener: &str, digits: &str) {
    click(client, opener).await;
    keypad_digits(client, digits).await;
}

/// Types `digits` on the kiosk's keypad, already open, and confirms.
pub async fn keypad_digits(client: &Client, digits: &str) {
    for digit in digits.chars() {
        click(client, &format!("#keypad [data-key='{digit}']")).await;
    }
    click(client, "#keypad-ok").await;
}

pub fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("exe");
    let target = exe.ancestors().nth(3).expect("target dir").to_owned();
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// The sizes every page state is photographed and checked at: a desk and a phone.
pub const SIZES: [(u32, u32); 2] = [(1280, 800), (390, 844)];

/// Makes the page's viewport `w`×`h` CSS pixels (what a kiosk's screen or a phone shows: the
/// window is larger by the browser's own frame) and lets the layout settle on the new size.
pub async fn resize(client: &Client, (w, h): (u32, u32)) {
    client.set_window_size(w, h).await.expect("resize");
    let inner = client.execute("return [innerWidth, innerHeight]", vec![]).await.expect("size");
    let inner: (i64, i64) = serde_json::from_value(inner).expect("[innerWidth, innerHeight]");
    let (w, h) = (i64::from(w), i64::from(h));
    if inner != (w, h) {
        let (outer_w, outer_h) = (2 * w - inner.0, 2 * h - inner.1);
        let size = |n: i64| u32::try_from(n).expect("a window size");
        client.set_window_size(size(outer_w), size(outer_h)).await.expect("resize");
    }
    client
        .execute(
            "return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))",
            vec![],
        )
        .await
        .ok();
}

/// The window's size now, to come back to.
async fn window_size(client: &Client) -> (u32, u32) {
    let (w, h) = client.get_window_size().await.expect("window size");
    (u32::try_from(w).expect("width"), u32::try_from(h).expect("height"))
}

/// Sets the window (not the viewport) back to a size `window_size` read.
async fn restore_window(client: &Client, (w, h): (u32, u32)) {
    client.set_window_size(w, h).await.expect("resize");
}

/// Saves the page at desktop (1280×800) and phone (390×844) size, and checks at each what it
/// shows (`stray_text`); the window is left at the size it had.
pub async fn screenshots(client: &Client, name: &str) {
    let was = window_size(client).await;
    for (w, h) in SIZES {
        resize(client, (w, h)).await;
        let png = client.screenshot().await.expect("screenshot");
        std::fs::write(screenshot_dir().join(format!("{name}-{w}x{h}.png")), png)
            .expect("save screenshot");
        let stray = stray_text(client).await;
        assert!(stray.is_empty(), "{name} at {w}×{h} shows {stray:#?}");
    }
    restore_window(client, was).await;
}

/// Saves the page as it is now, at the size it has (`<name>.png`), and checks what it shows
/// (`stray_text`): for a screen photographed at a size of its own (a kiosk's).
pub async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).expect("save screenshot");
    let stray = stray_text(client).await;
    assert!(stray.is_empty(), "{name} shows {stray:#?}");
}

/// Where the element `css` is, as the person sees it: wholly on the screen as it is (without
/// scrolling), and the page not scrolled at all, nor taller than the screen.
pub async fn on_screen(client: &Client, css: &str) -> bool {
    wait_js(client, css, &format!("return !!document.querySelector({css:?})")).await;
    let script = format!(
        "const r = document.querySelector({css:?}).getBoundingClientRect(); \
         return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth \
         && scrollY === 0 && document.scrollingElement.scrollHeight <= innerHeight"
    );
    client.execute(&script, vec![]).await.expect(css) == serde_json::json!(true)
}

/// Taps `css` as a finger does: only where it is on the screen as it stands (a WebDriver click
/// would scroll to it first, hiding a page that does not fit).
pub async fn tap(client: &Client, css: &str) {
    assert!(
        on_screen(client, css).await,
        "{css} is not on the screen as it stands (or the page scrolls)"
    );
    click(client, css).await;
}

/// Checks one state of a page at desk and phone size: axe-core with every rule, and nothing on
/// screen a person would call broken (`stray_text`). The window is left at the size it had.
pub async fn check_page(client: &Client, screen: &str) {
    let was = window_size(client).await;
    for size in SIZES {
        resize(client, size).await;
        let problems = accessibility_problems(client).await;
        assert_eq!(problems, Vec::<String>::new(), "{screen} at {size:?}: axe");
        let stray = stray_text(client).await;
        assert!(stray.is_empty(), "{screen} at {size:?} shows {stray:#?}");
    }
    restore_window(client, was).await;
}

/// What the page shows (every visible text, open dialogs included, and what each visible list
/// box shows) that a person would call broken, each with the text it is in:
/// - `null`, `undefined`, `NaN`, `[object …]`: a value the page failed to put into words;
/// - a raw wire code: any value of an enum of the API (from `/api/openapi.json`: statuses,
///   roles, the event and office change types, ratings, reasons…) or an error code, shown as
///   the server sends it. In English, a code that is also an English word of the page's own
///   strings (`patrol`, `resolved`) is left alone;
/// - the other language: in English, a stretch of Chinese that is one of the page's Chinese
///   strings (`js/i18n.js`); in Chinese, one of its English strings. A stretch that is also the
///   community's own data (a unit called `1单元`, a category's English name) is left alone.
pub async fn stray_text(client: &Client) -> Vec<String> {
    let words = vocabulary().await;
    let result = client
        .execute_async(STRAY_TEXT, vec![words.codes.clone(), words.community.clone()])
        .await
        .expect("scan the page's text");
    match result {
        serde_json::Value::Array(found) => {
            found.into_iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect()
        }
        other => panic!("the page's text could not be scanned: {other}"),
    }
}

/// What `stray_text` needs to know besides the page: every wire code and the built-in
/// community's own words.
struct Vocabulary {
    codes: serde_json::Value,
    community: serde_json::Value,
}

/// Read once per test run from a server of this build (its OpenAPI description and its
/// community), not from the page's server, which a test may have stopped.
async fn vocabulary() -> &'static Vocabulary {
    static WORDS: tokio::sync::OnceCell<Vocabulary> = tokio::sync::OnceCell::const_new();
    WORDS
        .get_or_init(|| async {
            let api = crate::api::Api::bare(|_| {}).await;
            let get = |path: &'static str| {
                let api = &api;
                async move { api.get(path, &[]).await.json() }
            };
            let (spec, community) = (get("/api/openapi.json").await, get("/api/community").await);
            let mut codes: std::collections::BTreeSet<String> =
                hongfan_shared::protocol::ErrorCode::all()
                    .iter()
                    .map(|c| serde_json::to_value(c).expect("code").as_str().expect("code").into())
                    .collect();
            enum_values(&spec["components"]["schemas"], &mut codes);
            assert!(codes.len() > 80, "only {} wire codes: {codes:?}", codes.len());
            Vocabulary { codes: serde_json::json!(codes), community }
        })
        .await
}

/// Every string of every `enum` in a JSON schema.
fn enum_values(schema: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match schema {
        serde_json::Value::Array(items) => items.iter().for_each(|v| enum_values(v, out)),
        serde_json::Value::Object(fields) => {
            for (key, value) in fields {
                match (key.as_str(), value) {
                    ("enum", serde_json::Value::Array(values)) => {
                        out.extend(values.iter().filter_map(|v| v.as_str().map(str::to_owned)))
                    }
                    _ => enum_values(value, out),
                }
            }
        }
        _ => {}
    }
}

const STRAY_TEXT: &str = r#"
const done = arguments[arguments.length - 1];
const codes = new Set(arguments[0]);
const community = arguments[1];
(async () => {
  // The page's own module (already loaded, so also while the server is away).
  const { STRINGS } = await import("/js/i18n.js");
  // The community's own words (names, buildings, units, phrases…), in both languages.
  const data = [];
  const collect = (v) => {
    if (typeof v === "string") data.push(v);
    else if (Array.isArray(v)) v.forEach(collect);
    else if (v && typeof v === "object") Object.values(v).forEach(collect);
  };
  collect(community);
  const han = (s) => s.split(/[^\p{Script=Han}]+/u).filter(Boolean);
  const dataHan = new Set(data.flatMap(han));
  const dataText = new Set(data);
  const lang = document.documentElement.lang.startsWith("zh") ? "zh" : "en";
  const zhRuns = new Set(Object.values(STRINGS.zh).flatMap(han).filter((r) => !dataHan.has(r)));
  const enWords = new Set(Object.values(STRINGS.en).flatMap((s) => s.match(/[A-Za-z_]+/g) ?? []));
  // An English string the Chinese strings use too ("JSON", "CSV") belongs to both.
  const zhAll = Object.values(STRINGS.zh).join("\n");
  const english = Object.values(STRINGS.en)
    .map((s) => s.trim())
    .filter((s) => /[A-Za-z]{3}/.test(s) && !/\p{Script=Han}/u.test(s) && !zhAll.includes(s) && !dataText.has(s));
  const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const englishRe = english.length ? new RegExp(`(?<![A-Za-z])(?:${english.map(escape).sort((a, b) => b.length - a.length).join("|")})(?![A-Za-z])`) : null;

  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const p = n.parentElement;
    if (!p || p.closest("script, style, template, option")) continue;
    if (!p.checkVisibility({ visibilityProperty: true })) continue;
    const text = n.textContent.trim();
    if (text) texts.push(text);
  }
  for (const select of document.querySelectorAll("select")) {
    if (select.checkVisibility({ visibilityProperty: true }) && select.selectedOptions[0]) texts.push(select.selectedOptions[0].textContent.trim());
  }
  for (const field of document.querySelectorAll("input[placeholder], textarea[placeholder]")) {
    if (field.checkVisibility({ visibilityProperty: true }) && field.placeholder) texts.push(field.placeholder);
  }
  const found = [];
  // A link shown to be copied (a pairing link, a status link) is an address, not words.
  for (const text of texts.map((t) => t.replace(/https?:\/\/\S+/g, " ").trim()).filter(Boolean)) {
    const broken = text.match(/null|undefined|NaN|\[object /);
    if (broken) found.push(`"${broken[0]}" in: ${text}`);
    for (const token of text.match(/[A-Za-z0-9_-]+/g) ?? []) {
      if (codes.has(token) && !(lang === "en" && enWords.has(token))) found.push(`the wire code "${token}" in: ${text}`);
    }
    if (lang === "en") {
      for (const run of han(text)) if (zhRuns.has(run)) found.push(`Chinese "${run}" on the English page in: ${text}`);
    } else {
      const hit = englishRe && text.match(englishRe);
      if (hit) found.push(`English "${hit[0]}" on the Chinese page in: ${text}`);
    }
  }
  return [...new Set(found)];
})().then(done, (e) => done(`scan failed: ${e}`));
"#;

/// Runs axe-core on the page with every rule it has (WCAG A to AAA, best practices, the
/// experimental ones) and returns every violation, whatever its impact.
pub async fn accessibility_problems(client: &Client) -> Vec<String> {
    let axe = axe_source();
    client.execute(&axe, vec![]).await.expect("inject axe-core");
    let result = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const rules = Object.fromEntries(axe.getRules().map(r => [r.ruleId, { enabled: true }]));
             axe.run(document, { resultTypes: ['violations'], rules }).then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3) }))));",
            vec![],
        )
        .await
        .expect("run axe");
    result.as_array().into_iter().flatten().map(|v| v.to_string()).collect()
}

fn axe_source() -> String {
    let exe = std::env::current_exe().expect("exe");
    let target = exe.ancestors().nth(3).expect("target dir").to_owned();
    let path = target.join("npm/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("{} is missing: npm install --prefix target/npm axe-core@4 (bash tests/run.sh does this)", path.display())
    })
}
