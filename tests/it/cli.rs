//! The command line as an operator uses it.

use serde_json::json;

use crate::common::*;

#[test]
fn help_lists_every_command_and_the_packaged_config_is_what_config_example_prints() {
    let help = std::process::Command::new(binary())
        .arg("--help")
        .output()
        .unwrap();
    let said = text(&help);
    for command in [
        "serve",
        "config",
        "admin",
        "backup",
        "restore",
        "db",
        "audit",
        "healthcheck",
        "version",
    ] {
        assert!(said.contains(command), "--help lacks {command}:\n{said}");
    }
    for flag in ["--config", "--data-dir"] {
        assert!(said.contains(flag));
    }
    let example = std::process::Command::new(binary())
        .args(["config", "example", "--packaged"])
        .output()
        .unwrap();
    let packaged = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/allhands.toml"
    ))
    .unwrap();
    assert_eq!(String::from_utf8(example.stdout).unwrap(), packaged);
    let version = std::process::Command::new(binary())
        .arg("version")
        .output()
        .unwrap();
    assert!(text(&version).starts_with(&format!("allhands {}", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn config_check_names_an_unknown_key_and_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("allhands.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:9443\"\n[auth]\nsesion_idle_minutes = 5\n",
    )
    .unwrap();
    let output = cli_in(
        dir.path(),
        &["config", "check", "--config", file.to_str().unwrap()],
        None,
    );
    assert!(!output.status.success());
    let said = text(&output);
    assert!(
        said.contains("sesion_idle_minutes") && said.contains(file.to_str().unwrap()),
        "{said}"
    );

    std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:9443\"\n").unwrap();
    let ok = cli_in(
        dir.path(),
        &["config", "check", "--config", file.to_str().unwrap()],
        None,
    );
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("127.0.0.1:9443"));

    let env = std::process::Command::new(binary())
        .args(["config", "check"])
        .env_clear()
        .env("ALLHANDS_SERVER__LISTN", "x")
        .output()
        .unwrap();
    assert!(!env.status.success());
    assert!(
        text(&env).contains("ALLHANDS_SERVER__LISTN"),
        "{}",
        text(&env)
    );
    let missing = cli_in(
        dir.path(),
        &["config", "check", "--config", "/nonexistent/allhands.toml"],
        None,
    );
    assert!(!missing.status.success());
}

#[tokio::test]
async fn healthcheck_answers_for_the_running_server_only() {
    let mut server = TestServer::start().await;
    let up = server.cli(&["healthcheck"]);
    assert!(up.status.success(), "{}", text(&up));
    server.stop();
    let down = server.cli(&["healthcheck", "--timeout", "2"]);
    assert!(!down.status.success());
}

#[tokio::test]
async fn accounts_can_be_recovered_from_the_command_line_with_the_server_stopped() {
    let mut server = TestServer::start().await;
    server.admin().await;
    server.stop();
    let created = server.cli(&[
        "admin",
        "create-user",
        "--username",
        "rescue",
        "--display-name",
        "Rescue admin",
    ]);
    assert!(created.status.success(), "{}", text(&created));
    let said = text(&created);
    let otp = said
        .lines()
        .find_map(|l| l.strip_prefix("one-time password: "))
        .unwrap()
        .trim()
        .to_string();
    let reset = cli_in(
        &server.data_dir(),
        &[
            "admin",
            "reset-password",
            "--username",
            "admin",
            "--password-stdin",
        ],
        Some("Recovered-boss-pass-1\n"),
    );
    assert!(reset.status.success(), "{}", text(&reset));
    let weak = cli_in(
        &server.data_dir(),
        &[
            "admin",
            "reset-password",
            "--username",
            "admin",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert!(!weak.status.success());
    let unknown_role = server.cli(&["admin", "create-user", "--username", "x", "--role", "king"]);
    assert!(text(&unknown_role).contains("unknown role"));
    server.launch().await;
    let rescue = Session::login(&server, "rescue", &otp).await.unwrap();
    assert_eq!(rescue.info["must_change_password"], json!(true));
    assert!(
        rescue.info["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("roles.manage"))
    );
    let admin = Session::login(&server, "admin", "Recovered-boss-pass-1")
        .await
        .unwrap();
    assert_eq!(admin.info["must_change_password"], json!(true));
    let changed = admin.post("/api/v1/auth/password", json!({ "current_password": "Recovered-boss-pass-1", "new_password": "Brand-new-boss-pass-2" })).await;
    assert_eq!(changed.status(), 204);
    let audit = admin.json("/api/v1/audit?action=employee.").await;
    let via_cli = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"]["source"] == "command line")
        .count();
    assert!(via_cli >= 2, "{audit}");
}

#[tokio::test]
async fn the_first_password_is_printed_once_when_not_given() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = std::process::Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env_clear()
        .env("ALLHANDS_AUTH__ARGON2_MEMORY_KIB", "4096")
        .env("ALLHANDS_LOG__STDERR", "false")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let password = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut seen = String::new();
        let mut buf = [0u8; 256];
        let complete = |seen: &str| {
            seen.split("One-time password:")
                .nth(1)
                .is_some_and(|rest| rest.contains('\n'))
        };
        while !complete(&seen) {
            let n = stderr.read(&mut buf).unwrap();
            assert!(n > 0, "the server closed stderr: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        seen.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("One-time password:")
                    .map(|p| p.trim().to_string())
            })
            .unwrap()
    })
    .await
    .unwrap();
    let kept = std::fs::read_to_string(data.join("initial-admin-password")).unwrap();
    assert_eq!(kept.trim(), password);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(data.join("initial-admin-password"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let mut server = TestServer {
        dir,
        child: Some(child),
        base: String::new(),
        extra_env: Vec::new(),
    };
    let address = loop {
        if let Ok(a) = std::fs::read_to_string(data.join("server.addr")) {
            break a;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    server.base = format!("https://{}", address.trim());
    // The address is recorded as the listener is bound; the workers may take a moment more.
    for _ in 0..200 {
        if client()
            .get(server.url("/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let session = Session::login(&server, "admin", &password).await.unwrap();
    let changed = session
        .post(
            "/api/v1/auth/password",
            json!({ "current_password": password, "new_password": "Chosen-boss-pass-3" }),
        )
        .await;
    assert_eq!(changed.status(), 204);
    assert!(
        !data.join("initial-admin-password").exists(),
        "the file goes once the password is changed"
    );
    server.stop();
}

#[test]
fn a_command_whose_reader_has_gone_ends_quietly() {
    // Like `allhands config example | head -c 0`: nobody reads the pipe any more.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = std::process::Command::new(binary())
        .args(["config", "example"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(141), "{stderr}");
}
