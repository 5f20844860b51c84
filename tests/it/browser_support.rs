//! Headless Chromium for console tests: chromedriver started by the test, a page with waiting
//! helpers, and a runner that keeps a screenshot, the page source and the server log when a flow
//! fails. The same approach as `browser.rs`, shared so that further console tests need not copy it.
//!
//! Chromium and chromedriver come from Debian's `chromium` and `chromium-driver` packages.
//! ALLHANDS_SCREENSHOT_DIR keeps screenshots of the screens a flow names.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::common::*;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long any one expected state may take to appear.
pub const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);

/// A chromedriver process and its scratch folder (logs, the browser profile). Dropping it ends
/// chromedriver and every browser process that uses this profile, one process id at a time.
pub struct Driver {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Driver {
    /// Starts chromedriver on a free port; a port taken between choosing and binding it makes
    /// chromedriver exit at once, so that is retried.
    pub async fn start() -> Result<Driver> {
        let mut attempt = 1;
        loop {
            match Self::start_once().await {
                Err(e) if attempt < 3 && e.to_string().contains("chromedriver exited") => {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn start_once() -> Result<Driver> {
        if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
            bail!(
                "the browser test needs {CHROMIUM} and {CHROMEDRIVER}; \
                 install them with `apt-get update && apt-get install -y chromium chromium-driver`"
            );
        }
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::File::create(dir.path().join("chromedriver.log"))?;
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("could not start {CHROMEDRIVER}"))?;
        let mut driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let http = client();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(response) = http.get(format!("{}/status", driver.url)).send().await
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == json!(true)
            {
                return Ok(driver);
            }
            if let Some(status) = driver.child.try_wait()? {
                bail!("chromedriver exited with {status}:\n{}", driver.log());
            }
            if Instant::now() > deadline {
                bail!("chromedriver did not become ready:\n{}", driver.log());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default()
    }

    /// A browser session with an English user interface (so that the console starts in English)
    /// and its own profile folder `name` (cookies, storage): several sessions of one driver are
    /// different people at different computers. Its processes end with the driver.
    pub async fn browser(&self, name: &str) -> Result<Client> {
        let profile = self.dir.path().join(name);
        let capabilities = json!({
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1400,900",
                    "--lang=en-US",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .map_err(|e| anyhow!("could not open a browser session: {e}\n{}", self.log()))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Browser processes can outlive chromedriver; each carries this driver's profile folder
        // on its command line, so exactly those are ended, one positive process id at a time.
        for pid in processes_mentioning(self.dir.path()) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// The processes whose command line contains `path`.
fn processes_mentioning(path: &Path) -> Vec<u32> {
    let needle = path.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            (pid > 1
                && pid != std::process::id()
                && String::from_utf8_lossy(&cmdline).contains(&needle))
            .then_some(pid)
        })
        .collect()
}

/// The CSS selector of a `data-testid`.
pub fn tid(id: &str) -> String {
    format!(r#"[data-testid="{id}"]"#)
}

/// Polls `check` until it yields a value; errors count as "not yet" (elements come and go while
/// the console renders) and the last one is reported on timeout.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    eventually_within(WAIT, what, check).await
}

pub async fn eventually_within<T, F, Fut>(wait: Duration, what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + wait;
    let mut last_error = String::new();
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last_error = format!(" (last error: {e:#})"),
        }
        if Instant::now() > deadline {
            bail!("timed out after {wait:?} waiting for {what}{last_error}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A browser page with small, waiting helpers.
pub struct Page {
    pub client: Client,
    pub shots: Option<PathBuf>,
}

impl Page {
    pub async fn find(&self, css: &str) -> Result<Element> {
        self.find_within(WAIT, css).await
    }

    pub async fn find_within(&self, wait: Duration, css: &str) -> Result<Element> {
        eventually_within(wait, &format!("element {css}"), || async {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) if element.is_displayed().await? => Ok(Some(element)),
                Ok(_) => Ok(None),
                Err(e) if e.is_no_such_element() => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    pub async fn click(&self, css: &str) -> Result<()> {
        // A click can be intercepted while a dialog opens or closes, and the element replaced
        // when a view re-renders; find it again and try until the click lands.
        eventually(&format!("a click on {css}"), || async {
            let element = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element,
                Err(e) if e.is_no_such_element() => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            if !element.is_displayed().await? {
                return Ok(None);
            }
            element.click().await?;
            Ok(Some(()))
        })
        .await
    }

    pub async fn fill(&self, css: &str, value: &str) -> Result<()> {
        let element = self.find(css).await?;
        element.clear().await?;
        element.send_keys(value).await?;
        Ok(())
    }

    pub async fn select(&self, css: &str, value: &str) -> Result<()> {
        let element = self.find(css).await?;
        element.select_by_value(value).await?;
        Ok(())
    }

    /// Waits until the element's visible text contains `expected`; returns the text.
    pub async fn text_contains(&self, css: &str, expected: &str) -> Result<String> {
        eventually(&format!("{css} to show {expected:?}"), || async {
            let text = self.find(css).await?.text().await?;
            Ok(text.contains(expected).then_some(text))
        })
        .await
    }

    pub async fn gone(&self, css: &str) -> Result<()> {
        eventually(&format!("{css} to disappear"), || async {
            Ok(self
                .client
                .find_all(Locator::Css(css))
                .await?
                .is_empty()
                .then_some(()))
        })
        .await
    }

    pub async fn attr(&self, css: &str, name: &str) -> Result<String> {
        self.find(css)
            .await?
            .attr(name)
            .await?
            .ok_or_else(|| anyhow!("{css} has no attribute {name}"))
    }

    /// The current value of a form control (empty when there is none).
    pub async fn value_of(&self, css: &str) -> Result<String> {
        let value = self
            .client
            .execute(
                "const el = document.querySelector(arguments[0]); return el ? el.value : null;",
                vec![json!(css)],
            )
            .await?;
        Ok(value.as_str().unwrap_or_default().to_string())
    }

    /// Sets a marker in the page that a reload would wipe out.
    pub async fn mark(&self) -> Result<()> {
        self.eval("window.sameDocument = 'yes';").await?;
        Ok(())
    }

    /// Fails when the page was reloaded since `mark`.
    pub async fn expect_same_document(&self, what: &str) -> Result<()> {
        let marker = self.eval("return window.sameDocument || null;").await?;
        ensure!(
            marker == json!("yes"),
            "{what} should have appeared without reloading the page"
        );
        Ok(())
    }

    /// Runs a script in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Result<Value> {
        Ok(self.client.execute(script, vec![]).await?)
    }

    /// Records Content-Security-Policy violations and uncaught errors from now until the next
    /// page load.
    pub async fn watch_csp(&self) -> Result<()> {
        self.eval(
            "window.cspViolations = window.cspViolations || [];\
             window.consoleErrors = window.consoleErrors || [];\
             document.addEventListener('securitypolicyviolation', (e) =>\
               window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));\
             window.addEventListener('error', (e) => window.consoleErrors.push(String(e.message)));\
             window.addEventListener('unhandledrejection', (e) =>\
               window.consoleErrors.push('unhandled: ' + String(e.reason && e.reason.stack || e.reason)));",
        )
        .await?;
        Ok(())
    }

    pub async fn expect_no_csp_violations(&self) -> Result<()> {
        let seen = self.eval("return window.cspViolations || [];").await?;
        ensure!(seen == json!([]), "the console broke its CSP: {seen}");
        Ok(())
    }

    pub async fn screenshot(&self, name: &str) -> Result<()> {
        if let Some(dir) = &self.shots {
            std::fs::create_dir_all(dir)?;
            std::fs::write(
                dir.join(format!("{name}.png")),
                self.client.screenshot().await?,
            )?;
        }
        Ok(())
    }

    /// Signs in on the sign-in screen with a password that needs no change.
    pub async fn sign_in(&self, server: &TestServer, username: &str, password: &str) -> Result<()> {
        self.client.goto(&server.url("/")).await?;
        self.find(&tid("login-form")).await?;
        self.watch_csp().await?;
        self.fill(&tid("login-username"), username).await?;
        self.fill(&tid("login-password"), password).await?;
        self.click(&tid("login-submit")).await?;
        self.find(&tid("current-user")).await?;
        Ok(())
    }
}

/// Starts chromedriver and a browser, runs `flow`, and ends both. On failure the panic names a
/// screenshot and the page source kept in the temp folder, and carries the server's log.
pub async fn run_in_browser<F>(server: &TestServer, name: &str, flow: F)
where
    F: AsyncFnOnce(&Page) -> Result<()>,
{
    run_in_browsers(server, name, 1, async |pages: &[Page]| {
        flow(&pages[0]).await
    })
    .await
}

/// Like `run_in_browser`, with `count` independent browser sessions (separate profiles, so
/// separate cookies and storage), for flows between two people. On failure every page leaves a
/// screenshot and its source.
pub async fn run_in_browsers<F>(server: &TestServer, name: &str, count: usize, flow: F)
where
    F: AsyncFnOnce(&[Page]) -> Result<()>,
{
    let driver = match Driver::start().await {
        Ok(driver) => driver,
        Err(e) => panic!("{e:#}"),
    };
    let mut pages = Vec::new();
    for n in 0..count {
        let profile = if n == 0 {
            "profile".to_string()
        } else {
            format!("profile-{n}")
        };
        match driver.browser(&profile).await {
            Ok(client) => pages.push(Page {
                client,
                shots: std::env::var_os("ALLHANDS_SCREENSHOT_DIR").map(PathBuf::from),
            }),
            Err(e) => panic!("{e:#}"),
        }
    }
    let outcome = flow(&pages).await;
    if let Err(error) = outcome {
        let mut kept = Vec::new();
        let mut console = String::new();
        for (n, page) in pages.iter().enumerate() {
            let suffix = if count == 1 {
                String::new()
            } else {
                format!("-{n}")
            };
            let stem = std::env::temp_dir()
                .join(format!("allhands-{name}-{}{suffix}", std::process::id()));
            if let Ok(png) = page.client.screenshot().await {
                let _ = std::fs::write(stem.with_extension("png"), png);
            }
            if let Ok(html) = page.client.source().await {
                let _ = std::fs::write(stem.with_extension("html"), html);
            }
            kept.push(format!("{}.png/.html", stem.display()));
            let errors = page
                .client
                .execute("return (window.consoleErrors || []).join('\\n');", vec![])
                .await
                .map(|v| v.to_string())
                .unwrap_or_default();
            console.push_str(&errors);
        }
        for page in &pages {
            let _ = page.client.clone().close().await;
        }
        drop(driver);
        panic!(
            "{error:#}\nscreenshots and page sources: {}\nbrowser errors: {console}\nserver log:\n{}",
            kept.join(", "),
            server.log()
        );
    }
    for page in &pages {
        page.client
            .clone()
            .close()
            .await
            .expect("close the browser");
    }
    drop(driver);
}
