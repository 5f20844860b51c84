//! The console in a real browser: headless Chromium driven over WebDriver by chromedriver, which
//! the test starts itself. Chromium and chromedriver come from Debian's `chromium` and
//! `chromium-driver` packages; without them the test fails and says so.
//!
//! Set ALLHANDS_SCREENSHOT_DIR to a folder to keep screenshots of the main screens. On failure a
//! screenshot and the page source are written to the system temp folder and named in the panic.

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
const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);

/// A chromedriver process and its scratch folder (logs, the browser profile). Dropping it ends
/// chromedriver and every browser process that uses this profile, whether the test passed or
/// panicked.
struct Driver {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Driver {
    /// Starts chromedriver on a free port; a port taken between choosing and binding it makes
    /// chromedriver exit at once, so that is retried.
    async fn start() -> Result<Driver> {
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

    async fn browser(&self) -> Result<Client> {
        let profile = self.dir.path().join("profile");
        let capabilities = json!({
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,800",
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
        // on its command line, so exactly those are ended, one process id at a time.
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
            (pid != std::process::id() && String::from_utf8_lossy(&cmdline).contains(&needle))
                .then_some(pid)
        })
        .collect()
}

fn tid(id: &str) -> String {
    format!(r#"[data-testid="{id}"]"#)
}

/// Polls `check` until it yields a value; errors count as "not yet" (elements come and go while
/// the console renders) and the last one is reported on timeout.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + WAIT;
    let mut last_error = String::new();
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last_error = format!(" (last error: {e:#})"),
        }
        if Instant::now() > deadline {
            bail!("timed out after {WAIT:?} waiting for {what}{last_error}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A browser page with small, waiting helpers.
struct Page {
    client: Client,
    shots: Option<PathBuf>,
}

impl Page {
    async fn find(&self, css: &str) -> Result<Element> {
        eventually(&format!("element {css}"), || async {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) if element.is_displayed().await? => Ok(Some(element)),
                Ok(_) => Ok(None),
                Err(e) if e.is_no_such_element() => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn click(&self, css: &str) -> Result<()> {
        let element = self.find(css).await?;
        // A click can be intercepted while a dialog opens or closes; try again until it lands.
        eventually(&format!("a click on {css}"), || async {
            Ok(element.click().await.map(|_| ()).ok())
        })
        .await
    }

    async fn fill(&self, css: &str, value: &str) -> Result<()> {
        let element = self.find(css).await?;
        element.clear().await?;
        element.send_keys(value).await?;
        Ok(())
    }

    async fn select(&self, css: &str, value: &str) -> Result<()> {
        let element = self.find(css).await?;
        element.select_by_value(value).await?;
        Ok(())
    }

    /// Waits until the element's visible text contains `expected`; returns the text.
    async fn text_contains(&self, css: &str, expected: &str) -> Result<String> {
        eventually(&format!("{css} to show {expected:?}"), || async {
            let text = self.find(css).await?.text().await?;
            Ok(text.contains(expected).then_some(text))
        })
        .await
    }

    async fn gone(&self, css: &str) -> Result<()> {
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

    async fn attr(&self, css: &str, name: &str) -> Result<String> {
        self.find(css)
            .await?
            .attr(name)
            .await?
            .ok_or_else(|| anyhow!("{css} has no attribute {name}"))
    }

    /// Records Content-Security-Policy violations from now until the next page load.
    async fn watch_csp(&self) -> Result<()> {
        self.client
            .execute(
                "window.cspViolations = window.cspViolations || [];\
                 document.addEventListener('securitypolicyviolation', (e) =>\
                   window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));",
                vec![],
            )
            .await?;
        Ok(())
    }

    async fn expect_no_csp_violations(&self) -> Result<()> {
        let seen = self
            .client
            .execute("return window.cspViolations || [];", vec![])
            .await?;
        ensure!(seen == json!([]), "the console broke its CSP: {seen}");
        Ok(())
    }

    async fn screenshot(&self, name: &str) -> Result<()> {
        if let Some(dir) = &self.shots {
            std::fs::create_dir_all(dir)?;
            std::fs::write(
                dir.join(format!("{name}.png")),
                self.client.screenshot().await?,
            )?;
        }
        Ok(())
    }
}

#[tokio::test]
async fn console_first_run_organisation_language_and_audit() {
    let server = TestServer::start().await;
    let driver = match Driver::start().await {
        Ok(driver) => driver,
        Err(e) => panic!("{e:#}"),
    };
    let client = match driver.browser().await {
        Ok(client) => client,
        Err(e) => panic!("{e:#}"),
    };
    let page = Page {
        client,
        shots: std::env::var_os("ALLHANDS_SCREENSHOT_DIR").map(PathBuf::from),
    };
    let outcome = console_flow(&page, &server).await;
    if let Err(error) = outcome {
        let stem = std::env::temp_dir().join(format!("allhands-browser-{}", std::process::id()));
        if let Ok(png) = page.client.screenshot().await {
            let _ = std::fs::write(stem.with_extension("png"), png);
        }
        // When the console never started, loading its entry module again names the reason.
        let script = page
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 import('/js/app.js').then(() => done('the console module loads'), (e) => done(String(e)));",
                vec![],
            )
            .await
            .map(|v| v.to_string())
            .unwrap_or_else(|e| e.to_string());
        eprintln!("console module: {script}");
        if let Ok(html) = page.client.source().await {
            let _ = std::fs::write(stem.with_extension("html"), html);
        }
        let _ = page.client.clone().close().await;
        panic!(
            "{error:#}\nscreenshot and page source: {}.png/.html\nserver log:\n{}",
            stem.display(),
            server.log()
        );
    }
    page.client
        .clone()
        .close()
        .await
        .expect("close the browser");
    drop(driver);
}

async fn console_flow(page: &Page, server: &TestServer) -> Result<()> {
    // First sign-in of the administrator, who must choose a new password.
    page.client.goto(&server.url("/")).await?;
    page.find(&tid("login-form")).await?;
    page.watch_csp().await?;
    page.fill(&tid("login-username"), "admin").await?;
    page.fill(&tid("login-password"), ADMIN_PASSWORD).await?;
    page.screenshot("01-login").await?;
    page.click(&tid("login-submit")).await?;
    page.find(&tid("password-form")).await?;

    // A weak password is refused with the server's own explanation.
    page.fill(&tid("password-current"), ADMIN_PASSWORD).await?;
    page.fill(&tid("password-new"), "short").await?;
    page.fill(&tid("password-confirm"), "short").await?;
    page.click(&tid("password-submit")).await?;
    page.text_contains(&tid("password-error"), "at least")
        .await?;
    page.fill(&tid("password-new"), NEW_ADMIN_PASSWORD).await?;
    page.fill(&tid("password-confirm"), NEW_ADMIN_PASSWORD)
        .await?;
    page.click(&tid("password-submit")).await?;

    // The administrator sees every section.
    for section in [
        "employees",
        "departments",
        "positions",
        "roles",
        "tokens",
        "audit",
        "system",
    ] {
        page.find(&tid(&format!("nav-{section}"))).await?;
    }
    page.text_contains(&tid("current-user"), "Administrator")
        .await?;

    // A department under Headquarters.
    page.click(&tid("nav-departments")).await?;
    let headquarters = r#"[data-testid="department-node"][data-name="Headquarters"]"#;
    page.click(&format!("{headquarters} {}", tid("department-add-child")))
        .await?;
    page.fill(&tid("department-name"), "Customer Care").await?;
    page.click(&tid("dialog-submit")).await?;
    let care = r#"[data-testid="department-node"][data-name="Customer Care"]"#;
    page.find(care).await?;
    let care_id = page.attr(care, "data-id").await?;
    page.screenshot("02-departments").await?;

    // An employee in it, with a generated one-time password shown once.
    page.click(&tid("nav-employees")).await?;
    page.click(&tid("employee-new")).await?;
    page.fill(&tid("employee-username"), "wang.fang").await?;
    page.fill(&tid("employee-display-name"), "王芳 Wang Fang")
        .await?;
    page.fill(&tid("employee-email"), "wang.fang@example.com")
        .await?;
    page.select(&tid("employee-department"), &care_id).await?;
    page.click(&tid("dialog-submit")).await?;
    let secret = page.find(&tid("secret-value")).await?.text().await?;
    ensure!(
        secret.trim().len() == 19,
        "one-time password {secret:?} should look like xxxx-xxxx-xxxx-xxxx"
    );
    page.click(&tid("secret-done")).await?;
    page.gone(&tid("secret-dialog")).await?;
    let row = r#"[data-testid="employee-row"][data-username="wang.fang"]"#;
    page.text_contains(row, "Customer Care").await?;
    page.screenshot("03-employees-en").await?;

    // The department is not empty, so deleting it is refused with the server's reason.
    page.click(&tid("nav-departments")).await?;
    page.click(&format!("{care} {}", tid("department-delete")))
        .await?;
    page.click(&tid("confirm-ok")).await?;
    page.text_contains(&tid("alert-message"), "move them first")
        .await?;
    page.click(&tid("alert-ok")).await?;
    page.gone(&tid("alert-dialog")).await?;
    page.expect_no_csp_violations().await?;

    // Switching to Chinese changes the console at once and is kept on the account.
    page.click(&tid("nav-employees")).await?;
    page.find(row).await?;
    page.select(&tid("lang-select"), "zh-CN").await?;
    page.text_contains(&tid("nav-employees"), "员工").await?;
    page.text_contains(&tid("employee-new"), "新建员工").await?;
    page.screenshot("04-employees-zh").await?;
    page.client.refresh().await?;
    page.text_contains(&tid("nav-departments"), "部门").await?;
    page.watch_csp().await?;
    page.text_contains(&tid("employee-new"), "新建员工").await?;
    ensure!(
        page.attr("html", "lang").await? == "zh-CN",
        "the document language should follow the account"
    );

    // Every text exists in both languages.
    let missing = page
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             import('/js/i18n.js').then((m) => done(m.missingKeys()), (e) => done(['import failed: ' + e]));",
            vec![],
        )
        .await?;
    ensure!(
        missing == json!([]),
        "texts missing in a language: {missing}"
    );

    // The audit log shows both creations, newest first, with their details.
    page.click(&tid("nav-audit")).await?;
    let created_department = r#"[data-testid="audit-row"][data-action="department.created"]"#;
    let created_employee = r#"[data-testid="audit-row"][data-action="employee.created"]"#;
    page.find(created_employee).await?;
    page.find(created_department).await?;
    let department_seq: u64 = page.attr(created_department, "data-seq").await?.parse()?;
    let employee_seq: u64 = page.attr(created_employee, "data-seq").await?.parse()?;
    ensure!(
        employee_seq > department_seq,
        "the employee was created after the department"
    );
    page.click(created_department).await?;
    page.text_contains(&tid("audit-details-json"), "Customer Care")
        .await?;
    page.screenshot("05-audit-details-zh").await?;
    page.click(&tid("dialog-close")).await?;
    page.gone(&tid("audit-details")).await?;

    // A filter narrows the list to the employee creations.
    page.fill(&tid("audit-action"), "employee.").await?;
    page.click(&tid("audit-apply")).await?;
    page.gone(created_department).await?;
    page.find(created_employee).await?;
    page.click(&tid("audit-verify")).await?;
    page.find(&tid("audit-verify-ok")).await?;
    page.screenshot("06-audit-zh").await?;

    // Signing out returns to the sign-in screen, still in Chinese.
    page.click(&tid("account-menu")).await?;
    page.click(&tid("menu-logout")).await?;
    page.text_contains(&tid("login-notice"), "已退出登录")
        .await?;
    page.text_contains(&tid("login-submit"), "登录").await?;
    page.expect_no_csp_violations().await?;

    // The server agrees about the language and the new password.
    let admin = Session::login(server, "admin", NEW_ADMIN_PASSWORD)
        .await
        .map_err(|e| anyhow!("admin login after the browser flow: {e:?}"))?;
    ensure!(admin.info["employee"]["language"] == json!("zh-CN"));
    ensure!(admin.info["must_change_password"] == json!(false));
    Ok(())
}
