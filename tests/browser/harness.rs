//! Drives headless Chromium through chromedriver.
//!
//! Each test launches its own chromedriver (on a free loopback port) and one
//! browser session with a fresh profile. Dropping the [`Browser`] ends
//! chromedriver and the Chromium it started, even when the test panics.
//!
//! When Chromium or chromedriver is not installed, [`Browser::launch`] prints
//! why on stderr and returns `None`, so the test passes without running;
//! with `CI=true` a missing browser fails the test instead.
//!
//! [`Browser::axe`] runs axe-core (`npm ci --prefix tests/browser/axe`) in the page, skipped
//! likewise without it; [`Browser::cdp`] speaks the DevTools Protocol, e.g. to emulate dark
//! mode ([`Browser::emulate_color_scheme`]).

use std::cell::Cell;
use std::future::Future;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use fantoccini::elements::Element;
use fantoccini::error::{CmdError, ErrorStatus};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

const INSTALL_HINT: &str = "install it with: sudo apt-get install -y chromium chromium-driver";

/// How long a wait for an element, a text or a URL may take.
pub const TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);
/// How long chromedriver may take to answer on `/status`.
const DRIVER_READY: Duration = Duration::from_secs(20);

/// Where the browser and its driver are installed.
struct Binaries {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// The program named by `var` if set (and then only that), else the first of
/// `fixed` or `names` (searched in `PATH`) that exists.
fn locate(var: &str, fixed: &[&str], names: &[&str]) -> Option<PathBuf> {
    if let Some(chosen) = std::env::var_os(var).filter(|value| !value.is_empty()) {
        let chosen = PathBuf::from(chosen);
        return if chosen.components().count() == 1 {
            in_path(chosen.to_str()?)
        } else {
            is_executable(&chosen).then_some(chosen)
        };
    }
    fixed
        .iter()
        .map(PathBuf::from)
        .find(|path| is_executable(path))
        .or_else(|| names.iter().find_map(|name| in_path(name)))
}

fn binaries() -> Result<Binaries, String> {
    let chromium = locate(
        "CHROMIUM",
        &["/usr/bin/chromium"],
        &["chromium", "chromium-browser"],
    )
    .ok_or("Chromium not found")?;
    let chromedriver =
        locate("CHROMEDRIVER", &[], &["chromedriver"]).ok_or("chromedriver not found")?;
    Ok(Binaries {
        chromium,
        chromedriver,
    })
}

fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value.eq_ignore_ascii_case("true") || value == "1")
}

/// Where screenshots go: `<target>/browser-screenshots`.
pub fn screenshot_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = match std::env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => manifest.join(dir),
        None => manifest.join("target"),
    };
    target.join("browser-screenshots")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A running chromedriver, ended with its whole process group on drop.
struct Chromedriver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Chromedriver {
    /// Starts chromedriver on a free port and waits until it answers.
    /// A port taken between choosing and binding is retried with another.
    async fn start(program: &Path, log: PathBuf) -> Chromedriver {
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new(program)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .arg("--log-level=INFO")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group, so that Chromium can be ended with it.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|err| panic!("cannot run {}: {err}", program.display()));
            let mut driver = Chromedriver {
                child,
                port,
                log: log.clone(),
            };
            match driver.wait_ready().await {
                Ok(()) => return driver,
                Err(reason) => failures.push(reason),
            }
        }
        panic!(
            "chromedriver did not start: {}\n{}",
            failures.join("; "),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let status_url = format!("{}/status", self.url());
        let deadline = Instant::now() + DRIVER_READY;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("chromedriver exited with {status}"));
            }
            if let Ok(response) = http.get(&status_url).send().await {
                if let Ok(body) = response.json::<Value>().await {
                    if body["value"]["ready"] == true {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(format!("no answer on {status_url} within {DRIVER_READY:?}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn signal_group(&self, signal: libc::c_int) {
        let group = self.child.id() as libc::pid_t;
        // SAFETY: sends a signal to the process group this guard created; no memory is shared.
        unsafe {
            libc::killpg(group, signal);
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        self.signal_group(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whatever is left of the group (Chromium's helpers) goes too.
        self.signal_group(libc::SIGKILL);
        let _ = self.child.wait();
    }
}

/// The Chromium options for a headless session with the given profile; downloads go to
/// `downloads` without asking.
fn capabilities(
    chromium: &Path,
    profile: &Path,
    downloads: &Path,
) -> serde_json::Map<String, Value> {
    let args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": args,
            // No password manager bubbles over the forms.
            "prefs": {
                "credentials_enable_service": false,
                "profile.password_manager_enabled": false,
                "profile.password_manager_leak_detection": false,
                "download.default_directory": downloads,
                "download.prompt_for_download": false,
            },
        },
        "goog:loggingPrefs": {"browser": "ALL"},
    });
    match caps {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

/// One browser session against one running application.
pub struct Browser {
    client: Client,
    base_url: String,
    test: String,
    step: Cell<u32>,
    /// Whether the missing axe-core has been reported (once per browser).
    axe_missing_told: Cell<bool>,
    // Dropped after the client, in this order: the driver (and Chromium), then the profile.
    _driver: Chromedriver,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session for the test `test`,
    /// with relative URLs resolved against `base_url`.
    ///
    /// Returns `None` (after saying why on stderr) when the browser is not
    /// installed; panics instead when `CI=true`.
    pub async fn launch(test: &str, base_url: &str) -> Option<Browser> {
        let binaries = match binaries() {
            Ok(binaries) => binaries,
            Err(reason) => {
                let message = format!("{reason}; {INSTALL_HINT}");
                if on_ci() {
                    panic!("browser test {test} cannot run (CI=true): {message}");
                }
                // Straight to the process's stderr: the test harness captures
                // `eprintln!`, and a skip should be seen without `--nocapture`.
                let _ = writeln!(std::io::stderr(), "skipping browser test {test}: {message}");
                return None;
            }
        };
        let profile = tempfile::Builder::new()
            .prefix("gatehouse-chromium-")
            .tempdir()
            .expect("a temporary profile directory");
        let driver = Chromedriver::start(
            &binaries.chromedriver,
            profile.path().join("chromedriver.log"),
        )
        .await;
        let user_data = profile.path().join("profile");
        let downloads = profile.path().join("downloads");
        std::fs::create_dir_all(&downloads).expect("a downloads directory");
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities(&binaries.chromium, &user_data, &downloads))
            .connect(&driver.url())
            .await
            .unwrap_or_else(|err| {
                panic!(
                    "no Chromium session through chromedriver: {err}\n{}",
                    std::fs::read_to_string(&driver.log).unwrap_or_default()
                )
            });
        let browser = Browser {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            test: test.to_owned(),
            step: Cell::new(0),
            axe_missing_told: Cell::new(false),
            _driver: driver,
            _profile: profile,
        };
        browser.clear_old_screenshots();
        Some(browser)
    }

    /// Where the browser saves what it downloads.
    pub fn downloads(&self) -> PathBuf {
        self._profile.path().join("downloads")
    }

    /// Waits for the download `name` to be complete; its contents.
    pub async fn downloaded(&self, name: &str) -> String {
        let path = self.downloads().join(name);
        let found = self
            .poll(|| async { std::fs::read_to_string(&path).ok() })
            .await;
        match found {
            Some(text) => text,
            None => {
                self.fail(&format!("{name} was not downloaded to {}", path.display()))
                    .await
            }
        }
    }

    /// Resizes the window: `375` wide is a small phone; the default is 1280 × 900.
    pub async fn resize(&self, width: u32, height: u32) {
        if let Err(err) = self.client.set_window_size(width, height).await {
            self.fail(&format!("resizing the window to {width}×{height}: {err}"))
                .await;
        }
    }

    /// A screenshot at the default size and another 375 pixels wide (tall enough to show the
    /// page), then back to the default size.
    pub async fn screenshots(&self, step: &str) {
        self.screenshot(step).await;
        self.resize(375, 1200).await;
        self.screenshot(&format!("{step}-375")).await;
        self.resize(1280, 900).await;
    }

    /// As [`Browser::screenshots`], each scrolled to the element matching `css` (its top at
    /// the top of the window), for what lies below the fold.
    pub async fn screenshots_at(&self, step: &str, css: &str) {
        self.scroll_to(css).await;
        self.screenshot(step).await;
        self.resize(375, 1200).await;
        self.scroll_to(css).await;
        self.screenshot(&format!("{step}-375")).await;
        self.resize(1280, 900).await;
    }

    /// Scrolls the element matching `css` to the top of the window.
    pub async fn scroll_to(&self, css: &str) {
        let element = self.find(css).await;
        let argument = serde_json::to_value(&element).expect("an element as JSON");
        if let Err(err) = self
            .client
            .execute("arguments[0].scrollIntoView(true);", vec![argument])
            .await
        {
            self.fail(&format!("scrolling to `{css}`: {err}")).await;
        }
    }

    /// The WebDriver client, for what the helpers below do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Ends the session cleanly; dropping the browser ends it too, less politely.
    pub async fn close(self) {
        if let Err(err) = self.client.clone().close().await {
            eprintln!("closing the browser session: {err}");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Opens `path` (relative to the application's base URL).
    pub async fn goto(&self, path: &str) {
        let url = self.url(path);
        if let Err(err) = self.client.goto(&url).await {
            self.fail(&format!("cannot open {url}: {err}")).await;
        }
    }

    /// The current URL.
    pub async fn current_url(&self) -> url::Url {
        self.client
            .current_url()
            .await
            .unwrap_or_else(|err| panic!("reading the current URL: {err}"))
    }

    /// The current URL's path and query, e.g. `/admin/users?q=x`.
    pub async fn location(&self) -> String {
        let url = self.current_url().await;
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits until the location (path, plus the query when `expected` has one) is `expected`.
    pub async fn wait_for_location(&self, expected: &str) {
        let with_query = expected.contains('?');
        let found = self
            .poll(|| async {
                let location = self.location().await;
                let current = if with_query {
                    location.as_str()
                } else {
                    location.split('?').next().unwrap_or_default()
                };
                (current == expected).then_some(())
            })
            .await;
        if found.is_none() {
            let location = self.location().await;
            self.fail(&format!(
                "expected to be at {expected}, still at {location}"
            ))
            .await;
        }
    }

    /// Waits for an element matching the CSS selector `css`.
    pub async fn find(&self, css: &str) -> Element {
        match self.try_find(css).await {
            Some(element) => element,
            None => self.fail(&format!("no element matches `{css}`")).await,
        }
    }

    /// Waits for an element matching `css`; `None` after [`TIMEOUT`].
    pub async fn try_find(&self, css: &str) -> Option<Element> {
        self.poll(|| async {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) => Some(element),
                Err(err) if is_transient(&err) => None,
                Err(err) => panic!("finding `{css}`: {err}"),
            }
        })
        .await
    }

    /// The elements matching `css` right now, without waiting.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("finding all `{css}`: {err}"))
    }

    /// Waits for an element matching `css` whose text contains `needle`; returns that text.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let found = self
            .poll(|| async {
                for element in self.client.find_all(Locator::Css(css)).await.ok()? {
                    if let Ok(text) = element.text().await {
                        if text.contains(needle) {
                            return Some(text);
                        }
                    }
                }
                None
            })
            .await;
        match found {
            Some(text) => text,
            None => {
                let texts = self.texts(css).await;
                self.fail(&format!(
                    "no `{css}` contains {needle:?}; the matching elements say {texts:?}"
                ))
                .await
            }
        }
    }

    /// The texts of all elements matching `css` right now.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut texts = Vec::new();
        for element in self.find_all(css).await {
            if let Ok(text) = element.text().await {
                texts.push(text);
            }
        }
        texts
    }

    /// The text of the first element matching `css` (waiting for it).
    pub async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        element
            .text()
            .await
            .unwrap_or_else(|err| panic!("reading the text of `{css}`: {err}"))
    }

    /// Replaces the value of the input matching `css` with `value`.
    pub async fn fill(&self, css: &str, value: &str) {
        let input = self.find(css).await;
        let result = async {
            input.clear().await?;
            input.send_keys(value).await
        }
        .await;
        if let Err(err) = result {
            self.fail(&format!("typing into `{css}`: {err}")).await;
        }
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        if let Err(err) = element.click().await {
            self.fail(&format!("clicking `{css}`: {err}")).await;
        }
    }

    /// Submits the form matching `form` by clicking its submit button.
    pub async fn submit(&self, form: &str) {
        self.click(&format!("{form} [type=submit]")).await;
    }

    /// Fills and submits the login form on the current page.
    pub async fn log_in(&self, email: &str, password: &str) {
        self.fill("form#login-form input[name=email]", email).await;
        self.fill("form#login-form input[name=password]", password)
            .await;
        self.submit("form#login-form").await;
    }

    /// The attribute `name` of the first element matching `css` (waiting for it).
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let element = self.find(css).await;
        element
            .attr(name)
            .await
            .unwrap_or_else(|err| panic!("reading `{name}` of `{css}`: {err}"))
    }

    /// Saves a PNG of the viewport as `<test>-<NN>-<step>.png` and returns its path.
    pub async fn screenshot(&self, step: &str) -> PathBuf {
        let number = self.step.get() + 1;
        self.step.set(number);
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|err| panic!("creating {}: {err}", dir.display()));
        let path = dir.join(format!("{}-{number:02}-{step}.png", self.test));
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|err| panic!("taking screenshot {step}: {err}"));
        std::fs::write(&path, png)
            .unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
        path
    }

    /// Gives the browser a virtual WebAuthn authenticator (Chromium's, through the WebDriver
    /// WebAuthn extension): a platform authenticator that keeps discoverable credentials,
    /// verifies its user and consents without asking. Returns its id.
    pub async fn add_virtual_authenticator(&self) -> String {
        let added = self
            .client
            .issue_cmd(VirtualAuthenticator::Add)
            .await
            .unwrap_or_else(|err| panic!("adding a virtual authenticator: {err}"));
        added
            .as_str()
            .unwrap_or_else(|| panic!("the authenticator's id, not {added}"))
            .to_owned()
    }

    /// The credentials the virtual authenticator `id` holds (as the WebAuthn extension
    /// describes them: `credentialId`, `isResidentCredential`, `rpId`, `userHandle`, …).
    pub async fn authenticator_credentials(&self, id: &str) -> Vec<Value> {
        let credentials = self
            .client
            .issue_cmd(VirtualAuthenticator::Credentials(id.to_owned()))
            .await
            .unwrap_or_else(|err| panic!("reading the authenticator's credentials: {err}"));
        credentials.as_array().cloned().unwrap_or_default()
    }

    /// The browser console's entries at level SEVERE since the last call.
    pub async fn console_errors(&self) -> Vec<String> {
        let entries = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .unwrap_or_else(|err| panic!("reading the browser log: {err}"));
        entries
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Runs `script` in the page (as the body of a function: `return` gives its value).
    pub async fn eval(&self, script: &str) -> Value {
        match self.client.execute(script, Vec::new()).await {
            Ok(value) => value,
            Err(err) => self.fail(&format!("running `{script}`: {err}")).await,
        }
    }

    /// Sends the Chrome DevTools Protocol command `cmd` through chromedriver
    /// (`goog/cdp/execute`); its result.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        let command = Cdp {
            cmd: cmd.to_owned(),
            params,
        };
        match self.client.issue_cmd(command).await {
            Ok(value) => value,
            Err(err) => self.fail(&format!("DevTools command {cmd}: {err}")).await,
        }
    }

    /// Emulates the system's colour scheme, `"light"` or `"dark"`, for
    /// `prefers-color-scheme`; it lasts across pages until changed. Reduced motion comes
    /// with it, so that no colour is read (or photographed) halfway through a transition.
    pub async fn emulate_color_scheme(&self, scheme: &str) {
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({"features": [
                {"name": "prefers-color-scheme", "value": scheme},
                {"name": "prefers-reduced-motion", "value": "reduce"},
            ]}),
        )
        .await;
    }

    /// Runs axe-core on the current page for WCAG 2.0 and 2.1, levels A and AA; what it
    /// finds.
    ///
    /// `None` when axe-core is not installed (`npm ci --prefix tests/browser/axe`): locally
    /// the check is skipped with a message on stderr, under `CI=true` the test fails.
    pub async fn axe(&self) -> Option<Vec<AxeViolation>> {
        let source = match std::fs::read_to_string(axe_script()) {
            Ok(source) => source,
            Err(err) => {
                let message = format!(
                    "{} cannot be read ({err}); install it with: \
                     npm ci --prefix tests/browser/axe",
                    axe_script().display()
                );
                if on_ci() {
                    panic!(
                        "axe-core checks of {} cannot run (CI=true): {message}",
                        self.test
                    );
                }
                if !self.axe_missing_told.replace(true) {
                    let _ = writeln!(
                        std::io::stderr(),
                        "skipping axe-core checks of {}: {message}",
                        self.test
                    );
                }
                return None;
            }
        };
        // Injected as WebDriver script, which the page's Content-Security-Policy does not
        // govern; once per document.
        let loaded = self.eval("return typeof window.axe === 'object';").await;
        if loaded != Value::Bool(true) {
            self.eval(&format!("{source}\nreturn typeof window.axe;"))
                .await;
        }
        let found = self.client.execute_async(AXE_RUN, Vec::new()).await;
        let found = match found {
            Ok(found) => found,
            Err(err) => self.fail(&format!("running axe-core: {err}")).await,
        };
        if let Some(error) = found.get("error") {
            self.fail(&format!("axe-core failed: {error}")).await;
        }
        match serde_json::from_value(found.clone()) {
            Ok(violations) => Some(violations),
            Err(err) => panic!("axe-core's answer {found}: {err}"),
        }
    }

    /// A PNG of the whole page (beyond the window, as tall as the document), saved as
    /// `<test>-<NN>-<step>.png`; its path.
    pub async fn full_screenshot(&self, step: &str) -> PathBuf {
        let number = self.step.get() + 1;
        self.step.set(number);
        let shot = self
            .cdp(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        let png = shot["data"]
            .as_str()
            .and_then(|data| base64::engine::general_purpose::STANDARD.decode(data).ok())
            .unwrap_or_else(|| panic!("a screenshot of {step}, not {shot}"));
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|err| panic!("creating {}: {err}", dir.display()));
        let path = dir.join(format!("{}-{number:02}-{step}.png", self.test));
        std::fs::write(&path, png)
            .unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
        path
    }

    /// Calls `attempt` every [`POLL`] until it gives a value or [`TIMEOUT`] passes.
    async fn poll<T, F, Fut>(&self, mut attempt: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(value) = attempt().await {
                return Some(value);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Fails the test with `message`, the page's location and text, and a screenshot.
    async fn fail(&self, message: &str) -> ! {
        let location = self
            .client
            .current_url()
            .await
            .map(|url| url.to_string())
            .unwrap_or_else(|err| format!("(unknown: {err})"));
        let body = match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => self.client.source().await.unwrap_or_default(),
        };
        let body: String = body.chars().take(2000).collect();
        let shot = match self.client.screenshot().await {
            Ok(png) => {
                let dir = screenshot_dir();
                let path = dir.join(format!("{}-failure.png", self.test));
                let saved = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, png));
                match saved {
                    Ok(()) => path.display().to_string(),
                    Err(err) => format!("(not saved: {err})"),
                }
            }
            Err(err) => format!("(not taken: {err})"),
        };
        panic!("{message}\n  at: {location}\n  screenshot: {shot}\n  page text:\n{body}");
    }

    fn clear_old_screenshots(&self) {
        let prefix = format!("{}-", self.test);
        let Ok(entries) = std::fs::read_dir(screenshot_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name.ends_with(".png") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Errors that a retry may cure: the element is not there yet, or the page changed under it.
fn is_transient(err: &CmdError) -> bool {
    matches!(
        err,
        CmdError::Standard(wd) if matches!(
            wd.error,
            ErrorStatus::NoSuchElement | ErrorStatus::StaleElementReference
        )
    )
}

/// Where `npm ci --prefix tests/browser/axe` puts axe-core's browser build.
fn axe_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/axe/node_modules/axe-core/axe.min.js")
}

/// axe-core over the whole document for WCAG 2.0/2.1 A and AA; its violations, each with the
/// selectors of the elements at fault (or `{error}` if axe itself failed).
const AXE_RUN: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
  .then(results => done(results.violations.map(v => ({
    id: v.id,
    impact: v.impact || '',
    help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.map(String).join(' '), summary: n.failureSummary || ''})),
  }))))
  .catch(err => done({error: String(err)}));
"#;

/// One rule axe-core found broken, and where.
#[derive(Debug, serde::Deserialize)]
pub struct AxeViolation {
    pub id: String,
    pub impact: String,
    pub help: String,
    pub nodes: Vec<AxeNode>,
}

/// An element that breaks a rule: its CSS selector and axe-core's account of why.
#[derive(Debug, serde::Deserialize)]
pub struct AxeNode {
    pub target: String,
    pub summary: String,
}

impl std::fmt::Display for AxeViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} ({}): {}", self.id, self.impact, self.help)?;
        for node in &self.nodes {
            writeln!(f, "  at {}", node.target)?;
            for line in node.summary.lines() {
                writeln!(f, "    {line}")?;
            }
        }
        Ok(())
    }
}

/// chromedriver's `POST /session/{id}/goog/cdp/execute`: one DevTools Protocol command.
#[derive(Debug)]
struct Cdp {
    cmd: String,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"cmd": self.cmd, "params": self.params}).to_string()),
        )
    }
}

/// chromedriver's `POST /session/{id}/se/log` for the `browser` log.
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// The WebDriver WebAuthn extension's commands (`/session/{id}/webauthn/…`).
#[derive(Debug)]
enum VirtualAuthenticator {
    Add,
    /// The credentials of the authenticator with this id.
    Credentials(String),
}

impl fantoccini::wd::WebDriverCompatibleCommand for VirtualAuthenticator {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        match self {
            VirtualAuthenticator::Add => {
                base_url.join(&format!("session/{session}/webauthn/authenticator"))
            }
            VirtualAuthenticator::Credentials(id) => base_url.join(&format!(
                "session/{session}/webauthn/authenticator/{id}/credentials"
            )),
        }
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        match self {
            VirtualAuthenticator::Add => (
                http::Method::POST,
                Some(
                    json!({
                        "protocol": "ctap2",
                        "transport": "internal",
                        "hasResidentKey": true,
                        "hasUserVerification": true,
                        "isUserConsenting": true,
                        "isUserVerified": true,
                    })
                    .to_string(),
                ),
            ),
            VirtualAuthenticator::Credentials(_) => (http::Method::GET, None),
        }
    }
}
