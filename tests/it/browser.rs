//! The console in a real browser: headless Chromium driven over WebDriver by chromedriver, which
//! the test starts itself. Chromium and chromedriver come from Debian's `chromium` and
//! `chromium-driver` packages; without them the test fails and says so.
//!
//! Set ALLHANDS_SCREENSHOT_DIR to a folder to keep screenshots of the main screens. On failure a
//! screenshot and the page source are written to the system temp folder and named in the panic.

use anyhow::{Result, anyhow, ensure};
use serde_json::json;

use crate::browser_support::*;
use crate::common::*;

#[tokio::test]
async fn console_first_run_organisation_language_and_audit() {
    let server = TestServer::start().await;
    run_in_browser(&server, "browser", async |page| {
        console_flow(page, &server).await
    })
    .await;
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
