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

/// Saves the page at desktop (1280×800) and phone (390×844) size.
pub async fn screenshots(client: &Client, name: &str) {
    for (w, h) in [(1280, 800), (390, 844)] {
        client.set_window_size(w, h).await.expect("resize");
        // Let the layout settle on the new size before the picture.
        client
            .execute(
                "return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))",
                vec![],
            )
            .await
            .ok();
        let png = client.screenshot().await.expect("screenshot");
        std::fs::write(screenshot_dir().join(format!("{name}-{w}x{h}.png")), png)
            .expect("save screenshot");
    }
    client.set_window_size(1280, 800).await.expect("resize");
}

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
