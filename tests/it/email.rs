//! The e-mail channel against real mail servers, started privately by each test on free ports
//! in a temporary directory (never the system services), so tests run in parallel:
//!
//! - Dovecot (`dovecot-imapd`, `dovecot-lmtpd`, `dovecot-submissiond`): IMAPS for AllHands and
//!   the test's "customer", LMTP for delivery into the mailboxes, and submission (SMTP with
//!   STARTTLS and AUTH) through which AllHands sends replies. Users come from a passwd-file.
//! - OpenSMTPD (`opensmtpd`) as the MTA: it takes the customer's mail over plain SMTP on
//!   loopback, takes AllHands' replies relayed by Dovecot's submission service, delivers both
//!   over LMTP to Dovecot, and writes real bounces (DSNs) when delivery fails. OpenSMTPD keeps
//!   its queue and control socket at fixed paths (/var/spool/smtpd, /run/smtpd.sock), so each
//!   instance runs in its own mount namespace (`unshare --mount`) with those bind-mounted from
//!   the test's directory. Its TLS is not used: OpenSMTPD 6.8 on OpenSSL 3 fails handshakes,
//!   which is why TLS and authentication are Dovecot's part of the chain.
//!
//! Everything runs as root (OpenSMTPD needs it to drop privileges; CI runs as root); the mail
//! users are `nobody`. Missing programs fail the test with what to install.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use lettre::AsyncTransport;
use mail_parser::MimeHeaders;
use serde_json::{Value, json};

use crate::common::*;

const SUPPORT: &str = "support@allhands.test";
const SUPPORT_PASSWORD: &str = "support-Pass-1";
const CUSTOMER: &str = "customer@customer.test";
const CUSTOMER_PASSWORD: &str = "customer-Pass-2";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn require_tools() {
    let missing: Vec<&str> = [
        ("/usr/sbin/dovecot", "dovecot-imapd"),
        ("/usr/lib/dovecot/imap", "dovecot-imapd"),
        ("/usr/lib/dovecot/lmtp", "dovecot-lmtpd"),
        ("/usr/lib/dovecot/submission", "dovecot-submissiond"),
        ("/usr/sbin/smtpd", "opensmtpd"),
        ("/usr/bin/unshare", "util-linux"),
    ]
    .iter()
    .filter(|(path, _)| !Path::new(path).exists())
    .map(|(_, package)| *package)
    .collect();
    assert!(
        missing.is_empty(),
        "the e-mail tests start real mail servers; install them with \
         `apt-get install -y dovecot-imapd dovecot-lmtpd dovecot-submissiond opensmtpd` \
         (missing: {missing:?})"
    );
    let uid = Command::new("id").arg("-u").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "the e-mail tests run private Dovecot and OpenSMTPD instances, which must be started \
         as root (they drop privileges to their own users); run the suite as root, as CI does"
    );
}

/// A private Dovecot + OpenSMTPD pair; both are stopped when this is dropped.
struct MailServers {
    dir: tempfile::TempDir,
    dovecot: Option<Child>,
    smtpd: Option<Child>,
    imaps_port: u16,
    submission_port: u16,
    smtp_port: u16,
    ca_pem: String,
}

impl MailServers {
    async fn start() -> MailServers {
        require_tools();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let d = root.display().to_string();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["run", "state", "mail", "smtprun", "varspool/smtpd"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        std::fs::set_permissions(
            root.join("varspool/smtpd"),
            std::fs::Permissions::from_mode(0o711),
        )
        .unwrap();
        std::os::unix::fs::chown(root.join("mail"), Some(65534), Some(65534)).unwrap();

        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
                .unwrap();
        let ca_pem = certified.cert.pem();
        std::fs::write(root.join("cert.pem"), &ca_pem).unwrap();
        std::fs::write(root.join("key.pem"), certified.signing_key.serialize_pem()).unwrap();
        std::fs::set_permissions(root.join("key.pem"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        std::fs::write(
            root.join("passwd"),
            format!(
                "{SUPPORT}:{{PLAIN}}{SUPPORT_PASSWORD}:65534:65534::{d}/mail/{SUPPORT}::\n\
                 {CUSTOMER}:{{PLAIN}}{CUSTOMER_PASSWORD}:65534:65534::{d}/mail/{CUSTOMER}::\n"
            ),
        )
        .unwrap();

        let (imaps_port, lmtp_port, submission_port, smtp_port) =
            (free_port(), free_port(), free_port(), free_port());
        std::fs::write(
            root.join("dovecot.conf"),
            format!(
                r#"base_dir = {d}/run
state_dir = {d}/state
instance_name = allhands-test-{imaps_port}
log_path = {d}/dovecot.log
protocols = imap lmtp submission
listen = 127.0.0.1
hostname = localhost
ssl = required
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
auth_mechanisms = plain
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/passwd
}}
mail_location = maildir:~/Maildir
submission_relay_host = 127.0.0.1
submission_relay_port = {smtp_port}
submission_relay_trusted = yes
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
service submission-login {{
  inet_listener submission {{
    address = 127.0.0.1
    port = {submission_port}
  }}
}}
"#
            ),
        )
        .unwrap();
        std::fs::write(
            root.join("smtpd.conf"),
            format!(
                "listen on 127.0.0.1 port {smtp_port} hostname localhost\n\
                 action \"deliver\" relay host \"lmtp://127.0.0.1:{lmtp_port}\"\n\
                 match from any for domain \"allhands.test\" action \"deliver\"\n\
                 match from any for domain \"customer.test\" action \"deliver\"\n"
            ),
        )
        .unwrap();

        let dovecot = Command::new("/usr/sbin/dovecot")
            .args(["-F", "-c"])
            .arg(root.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("dovecot.stderr")).unwrap())
            .spawn()
            .expect("start dovecot");
        let smtpd = Command::new("/usr/bin/unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount --bind {d}/varspool /var/spool && mount --bind {d}/smtprun /run && \
                 exec /usr/sbin/smtpd -d -f {d}/smtpd.conf"
            ))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("smtpd.log")).unwrap())
            .spawn()
            .expect("start OpenSMTPD");
        let servers = MailServers {
            dir,
            dovecot: Some(dovecot),
            smtpd: Some(smtpd),
            imaps_port,
            submission_port,
            smtp_port,
            ca_pem,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in [imaps_port, lmtp_port, submission_port, smtp_port] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "the mail servers did not start:\n{}",
                    servers.logs()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        servers
    }

    fn logs(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "--- dovecot.log\n{}\n--- dovecot.stderr\n{}\n--- smtpd.log\n{}",
            read("dovecot.log"),
            read("dovecot.stderr"),
            read("smtpd.log")
        )
    }

    /// The settings of an e-mail channel reading the support mailbox.
    fn channel_settings(&self, poll_interval_secs: u64) -> Value {
        json!({
            "imap_host": "127.0.0.1",
            "imap_port": self.imaps_port,
            "imap_tls": "tls",
            "imap_username": SUPPORT,
            "smtp_host": "localhost",
            "smtp_port": self.submission_port,
            "smtp_tls": "starttls",
            "smtp_username": SUPPORT,
            "from_address": SUPPORT,
            "from_name": "ACME Support",
            "poll_interval_secs": poll_interval_secs,
            "ca_certificate": self.ca_pem,
        })
    }

    /// Delivers a mail through the MTA as a customer's mail program would (plain SMTP on
    /// loopback, no authentication: the MTA accepts mail for its own domains).
    async fn send(&self, from: &str, to: &str, raw: &str) {
        let transport =
            lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
                .port(self.smtp_port)
                .tls(lettre::transport::smtp::client::Tls::None)
                .build();
        let envelope =
            lettre::address::Envelope::new(Some(from.parse().unwrap()), vec![to.parse().unwrap()])
                .unwrap();
        transport
            .send_raw(&envelope, raw.replace('\n', "\r\n").as_bytes())
            .await
            .unwrap_or_else(|e| panic!("sending a test mail: {e}\n{}", self.logs()));
    }

    async fn imap(&self, user: &str, password: &str) -> ImapSession {
        let config = allhands::channels::email::imap::tls_config(Some(&self.ca_pem)).unwrap();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.imaps_port))
            .await
            .unwrap();
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect("127.0.0.1".try_into().unwrap(), tcp)
            .await
            .unwrap();
        let mut client = async_imap::Client::new(tls);
        client.read_response().await.unwrap();
        let mut session = client
            .login(user, password)
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        session.select("INBOX").await.unwrap();
        session
    }

    /// Every message in a mailbox, raw.
    async fn mailbox(&self, user: &str, password: &str) -> Vec<Vec<u8>> {
        let mut session = self.imap(user, password).await;
        let mailbox = session.select("INBOX").await.unwrap();
        if mailbox.exists == 0 {
            return Vec::new();
        }
        let fetched: Vec<_> = session
            .fetch("1:*", "BODY.PEEK[]")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let _ = session.logout().await;
        fetched
            .iter()
            .map(|f| f.body().unwrap_or_default().to_vec())
            .collect()
    }

    async fn append(&self, raw: &[u8]) {
        let mut session = self.imap(SUPPORT, SUPPORT_PASSWORD).await;
        session.append("INBOX", None, None, raw).await.unwrap();
        let _ = session.logout().await;
    }
}

type ImapSession = async_imap::Session<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

impl Drop for MailServers {
    fn drop(&mut self) {
        for child in [self.smtpd.take(), self.dovecot.take()]
            .into_iter()
            .flatten()
        {
            let mut child = child;
            // SIGTERM lets each master stop its own worker processes.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn wait_for<T>(what: &str, seconds: u64, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create_channel(admin: &Session, mail: &MailServers, poll: u64) -> u64 {
    let created = admin
        .create(
            "/api/v1/channels",
            json!({
                "kind": "email",
                "name": "Support mailbox",
                "settings": mail.channel_settings(poll),
                "secrets": { "imap_password": SUPPORT_PASSWORD, "smtp_password": SUPPORT_PASSWORD },
            }),
        )
        .await;
    let text = created.to_string();
    assert!(
        !text.contains(SUPPORT_PASSWORD),
        "passwords are never shown back: {text}"
    );
    assert_eq!(
        created["channel"]["secrets_set"],
        json!(["imap_password", "smtp_password"])
    );
    created["channel"]["id"].as_u64().unwrap()
}

async fn status(admin: &Session, channel: u64) -> Value {
    admin
        .json(&format!("/api/v1/channels/{channel}/status"))
        .await
}

async fn wait_connected(admin: &Session, server: &TestServer, mail: &MailServers, channel: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(admin, channel).await;
        if s["state"] == "idle" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the channel did not connect: {s}\n{}\n{}",
            server.log(),
            mail.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn email_conversations(admin: &Session) -> Vec<Value> {
    admin.json("/api/v1/conversations?channel_kind=email").await["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn messages(admin: &Session, conversation: u64) -> Vec<Value> {
    admin
        .json(&format!("/api/v1/conversations/{conversation}"))
        .await["messages"]
        .as_array()
        .unwrap()
        .clone()
}

fn header<'a>(parsed: &'a mail_parser::Message<'a>, name: &str) -> String {
    parsed
        .header_raw(name)
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[tokio::test]
async fn a_customer_mail_becomes_a_conversation_and_the_reply_threads_back() {
    let mail = MailServers::start().await;
    let server = TestServer::start().await;
    let admin = server.admin().await;
    // An hour between checks: mail must come through IDLE, not polling.
    let channel = create_channel(&admin, &mail, 3600).await;
    wait_connected(&admin, &server, &mail, channel).await;
    assert_eq!(status(&admin, channel).await["idle_supported"], true);

    let sent_at = Instant::now();
    mail.send(
        CUSTOMER,
        SUPPORT,
        "From: =?UTF-8?B?6ZmI6Z2Z?= <customer@customer.test>\n\
         To: ACME Support <support@allhands.test>\n\
         Subject: Refund for order A-1001\n\
         Message-ID: <c1@customer.test>\n\
         Date: Mon, 1 Jun 2026 10:00:00 +0800\n\
         Content-Type: text/plain; charset=utf-8\n\
         \n\
         Hello,\n\
         where is my refund?\n\
         \n\
         -- \n\
         Chen Jing, Shanghai\n",
    )
    .await;
    let conversation = wait_for("the mail to become a conversation", 20, async || {
        email_conversations(&admin).await.first().cloned()
    })
    .await;
    assert!(
        sent_at.elapsed() < Duration::from_secs(20),
        "IDLE delivered the mail without waiting for the hour-long poll"
    );
    let id = conversation["id"].as_u64().unwrap();
    assert_eq!(conversation["subject"], "Refund for order A-1001");
    let detail = admin.json(&format!("/api/v1/conversations/{id}")).await;
    assert_eq!(detail["customer"]["name"], "陈静");
    assert_eq!(detail["customer"]["emails"], json!([CUSTOMER]));
    let first = &detail["messages"][0];
    assert_eq!(first["text"], "Hello,\nwhere is my refund?");
    assert!(
        first["email"]["original_text"]
            .as_str()
            .unwrap()
            .contains("Chen Jing, Shanghai"),
        "the signature is trimmed for display, the original kept: {first}"
    );
    assert_eq!(first["email"]["message_id"], "c1@customer.test");
    assert_eq!(first["email"]["subject"], "Refund for order A-1001");
    assert!(first["email"]["malformed"].is_null());

    // An employee answers with a file; the reply reaches the customer's mailbox, threaded.
    let upload = admin
        .client
        .post(server.url("/api/v1/attachments?filename=refund.csv"))
        .header("X-CSRF-Token", &admin.csrf)
        .header("content-type", "text/csv")
        .body("order,amount\nA-1001,199.00\n")
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    let uploaded: Value = upload.json().await.unwrap();
    let reply = admin
        .create(
            &format!("/api/v1/conversations/{id}/messages"),
            json!({ "text": "Your refund was sent today; it takes 3-5 days.", "attachments": [uploaded["id"]] }),
        )
        .await;
    let reply_id = reply["id"].as_u64().unwrap();
    let ours = format!("allhands.{id}.{reply_id}@allhands.test");
    wait_for("the reply to be sent", 30, async || {
        let all = messages(&admin, id).await;
        let m = all.iter().find(|m| m["id"] == reply_id)?.clone();
        assert_ne!(
            m["delivery"]["state"],
            "failed",
            "{m}\n{}\n{}",
            server.log(),
            mail.logs()
        );
        (m["delivery"]["state"] == "sent").then_some(m)
    })
    .await;
    let received = wait_for("the reply in the customer's mailbox", 20, async || {
        mail.mailbox(CUSTOMER, CUSTOMER_PASSWORD).await.pop()
    })
    .await;
    let parsed = mail_parser::MessageParser::default()
        .parse(&received)
        .unwrap();
    assert_eq!(
        parsed.subject(),
        Some(format!("Re: Refund for order A-1001 [#{id}]").as_str())
    );
    assert_eq!(parsed.message_id(), Some(ours.as_str()));
    assert_eq!(header(&parsed, "In-Reply-To"), "<c1@customer.test>");
    assert_eq!(header(&parsed, "References"), "<c1@customer.test>");
    assert_eq!(
        parsed.from().unwrap().first().unwrap().address(),
        Some(SUPPORT)
    );
    assert!(
        parsed
            .body_text(0)
            .unwrap()
            .contains("Your refund was sent today")
    );
    let file = parsed.attachments().next().expect("the reply's attachment");
    assert_eq!(file.attachment_name(), Some("refund.csv"));
    // Text travels with CRLF line ends, as MIME wants.
    assert_eq!(
        String::from_utf8_lossy(file.contents()).replace("\r\n", "\n"),
        "order,amount\nA-1001,199.00\n"
    );

    // The customer answers the reply (from a mail program that changed the subject): it joins
    // the same conversation through In-Reply-To/References.
    mail.send(
        CUSTOMER,
        SUPPORT,
        &format!(
            "From: Chen Jing <customer@customer.test>\n\
             To: support@allhands.test\n\
             Subject: thanks!\n\
             Message-ID: <c2@customer.test>\n\
             In-Reply-To: <{ours}>\n\
             References: <c1@customer.test> <{ours}>\n\
             MIME-Version: 1.0\n\
             Content-Type: multipart/mixed; boundary=\"b1\"\n\
             \n\
             --b1\n\
             Content-Type: text/plain; charset=utf-8\n\
             \n\
             Got it, thank you.\n\
             \n\
             On Tue, 2 Jun 2026, ACME Support <support@allhands.test> wrote:\n\
             > Your refund was sent today; it takes 3-5 days.\n\
             --b1\n\
             Content-Type: application/pdf; name=\"receipt.pdf\"\n\
             Content-Disposition: attachment; filename=\"receipt.pdf\"\n\
             Content-Transfer-Encoding: base64\n\
             \n\
             JVBERi0xLjQKJSBhIHJlY2VpcHQK\n\
             --b1\n\
             Content-Type: application/x-msdownload; name=\"setup.exe\"\n\
             Content-Disposition: attachment; filename=\"setup.exe\"\n\
             Content-Transfer-Encoding: base64\n\
             \n\
             TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAA=\n\
             --b1--\n"
        ),
    )
    .await;
    let answer = wait_for("the customer's answer", 20, async || {
        let all = messages(&admin, id).await;
        (all.len() == 3).then(|| all[2].clone())
    })
    .await;
    assert_eq!(answer["text"], "Got it, thank you.");
    // The PDF is stored with the message; the executable is refused, named, and kept only in
    // the raw message.
    assert_eq!(
        answer["attachments"].as_array().unwrap().len(),
        1,
        "{answer}"
    );
    assert_eq!(answer["attachments"][0]["filename"], "receipt.pdf");
    assert_eq!(answer["attachments"][0]["content_type"], "application/pdf");
    let pdf = admin
        .get(&format!(
            "/api/v1/attachments/{}",
            answer["attachments"][0]["id"]
        ))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(&pdf[..], b"%PDF-1.4\n% a receipt\n");
    assert_eq!(
        answer["email"]["refused_attachments"][0]["filename"],
        "setup.exe"
    );
    assert_eq!(answer["direction"], "inbound");
    assert_eq!(
        answer["email"]["references"],
        json!(["c1@customer.test", ours])
    );
    assert_eq!(email_conversations(&admin).await.len(), 1);
}

#[tokio::test]
async fn malformed_mail_is_stored_and_flagged_and_bounces_fail_the_reply() {
    let mail = MailServers::start().await;
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let channel = create_channel(&admin, &mail, 3600).await;
    wait_connected(&admin, &server, &mail, channel).await;

    // A multipart message without a boundary and without a sender: kept, flagged.
    mail.append(
        b"Subject: broken\r\nMessage-ID: <broken-1@nowhere.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n--??\r\nContent-Type: text/plain\r\n\r\nplease call me back\r\n",
    )
    .await;
    let conversation = wait_for("the malformed mail", 20, async || {
        email_conversations(&admin).await.first().cloned()
    })
    .await;
    let id = conversation["id"].as_u64().unwrap();
    let stored = messages(&admin, id).await;
    assert_eq!(stored.len(), 1);
    let flag = stored[0]["email"]["malformed"].as_str().unwrap_or_default();
    assert!(flag.contains("boundary") && flag.contains("From"), "{flag}");
    assert!(
        stored[0]["text"]
            .as_str()
            .unwrap()
            .contains("please call me back"),
        "{}",
        stored[0]
    );
    let raw = stored[0]["email"]["raw_attachment"].as_u64().unwrap();
    let kept = admin
        .get(&format!("/api/v1/attachments/{raw}"))
        .await
        .bytes()
        .await
        .unwrap();
    assert!(
        kept.starts_with(b"Subject: broken"),
        "the raw message is kept as received"
    );
    assert!(
        stored[0]["attachments"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "the raw message is not listed among the message's files: {}",
        stored[0]
    );

    // A customer writes from an address the mail system does not know; our reply bounces, and
    // the bounce (OpenSMTPD's DSN, delivered to the support mailbox) fails the reply.
    mail.send(
        "gone@customer.test",
        SUPPORT,
        "From: Gone <gone@customer.test>\n\
         To: support@allhands.test\n\
         Subject: where is my parcel\n\
         Message-ID: <g1@customer.test>\n\
         \n\
         It did not arrive.\n",
    )
    .await;
    let gone = wait_for("the second conversation", 20, async || {
        let all = email_conversations(&admin).await;
        all.iter().find(|c| c["id"].as_u64() != Some(id)).cloned()
    })
    .await;
    let gone_id = gone["id"].as_u64().unwrap();
    let reply = admin
        .create(
            &format!("/api/v1/conversations/{gone_id}/messages"),
            json!({ "text": "Let me check with the courier." }),
        )
        .await;
    let reply_id = reply["id"].as_u64().unwrap();
    let failed = wait_for("the bounce to fail the reply", 40, async || {
        let all = messages(&admin, gone_id).await;
        let m = all.iter().find(|m| m["id"] == reply_id)?.clone();
        (m["delivery"]["state"] == "failed").then_some(m)
    })
    .await;
    let reason = failed["delivery"]["failure"].as_str().unwrap();
    assert!(
        reason.contains("gone@customer.test") && reason.contains("550"),
        "{reason}"
    );
    assert_eq!(
        messages(&admin, gone_id).await.len(),
        2,
        "the bounce is not a message of its own"
    );
}

#[tokio::test]
async fn a_restart_does_not_ingest_a_mail_twice() {
    let mail = MailServers::start().await;
    let mut server = TestServer::start().await;
    let admin = server.admin().await;
    let channel = create_channel(&admin, &mail, 3600).await;
    wait_connected(&admin, &server, &mail, channel).await;
    for n in 1..=2 {
        mail.send(
            CUSTOMER,
            SUPPORT,
            &format!(
                "From: customer@customer.test\nTo: support@allhands.test\nSubject: Question {n}\n\
                 Message-ID: <q{n}@customer.test>\n\nQuestion number {n}\n"
            ),
        )
        .await;
    }
    let id = wait_for("both mails", 20, async || {
        let c = email_conversations(&admin).await.first().cloned()?;
        let id = c["id"].as_u64().unwrap();
        (messages(&admin, id).await.len() == 2).then_some(id)
    })
    .await;

    // Stopped and started again, the server reads the mailbox from where it stood; a mail that
    // arrived while it was down comes in once, the others not again.
    server.stop();
    mail.send(
        CUSTOMER,
        SUPPORT,
        "From: customer@customer.test\nTo: support@allhands.test\nSubject: Question 3\n\
         Message-ID: <q3@customer.test>\n\nQuestion number 3\n",
    )
    .await;
    wait_for("the third mail in the mailbox", 20, async || {
        (mail.mailbox(SUPPORT, SUPPORT_PASSWORD).await.len() == 3).then_some(())
    })
    .await;
    // A mail without a Message-ID: its content hash stands in for one.
    mail.append(b"From: customer@customer.test\r\nSubject: no id\r\n\r\nNo Message-ID here\r\n")
        .await;
    server.launch().await;
    let admin = Session::login(&server, "admin", NEW_ADMIN_PASSWORD)
        .await
        .unwrap();
    wait_connected(&admin, &server, &mail, channel).await;
    let texts = wait_for("the mails that came while stopped", 20, async || {
        let all = messages(&admin, id).await;
        (all.len() >= 4).then_some(all)
    })
    .await;
    let texts: Vec<&str> = texts.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        [
            "Question number 1",
            "Question number 2",
            "Question number 3",
            "No Message-ID here"
        ]
    );
    assert_eq!(status(&admin, channel).await["last_uid"], 4);
    assert_eq!(email_conversations(&admin).await.len(), 1);
}

#[tokio::test]
async fn settings_are_checked_and_secrets_stay_write_only() {
    let mut server = TestServer::start().await;
    let admin = server.admin().await;
    let good = json!({
        "imap_host": "imap.example.com", "imap_port": 993, "imap_tls": "tls", "imap_username": "s@example.com",
        "smtp_host": "smtp.example.com", "smtp_port": 587, "smtp_tls": "starttls", "smtp_username": "s@example.com",
        "from_address": "s@example.com", "poll_interval_secs": 60,
    });
    let bad = |change: Value| {
        let mut s = good.clone();
        for (k, v) in change.as_object().unwrap() {
            s[k] = v.clone();
        }
        json!({ "kind": "email", "name": "Mail", "settings": s })
    };
    for (change, field) in [
        (json!({ "smtp_tls": "plain" }), "settings.smtp_tls"),
        (json!({ "imap_tls": "plain" }), "settings.imap_tls"),
        (json!({ "imap_port": 0 }), "settings.imap_port"),
        (json!({ "from_address": "nobody" }), "settings.from_address"),
        (
            json!({ "poll_interval_secs": 1 }),
            "settings.poll_interval_secs",
        ),
        (
            json!({ "ca_certificate": "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n" }),
            "settings.ca_certificate",
        ),
        (json!({ "imap_host": "" }), "settings.imap_host"),
        (json!({ "colour": "red" }), "settings"),
    ] {
        let message = expect_error(
            admin.post("/api/v1/channels", bad(change.clone())).await,
            400,
            "invalid_field",
        )
        .await;
        assert!(message.starts_with(field), "{change}: {message}");
    }
    // Plain SMTP is allowed to a server on this machine. Nothing listens on the IMAP port.
    let closed = free_port();
    let mut local = bad(
        json!({ "smtp_tls": "plain", "smtp_host": "127.0.0.1", "imap_host": "127.0.0.1", "imap_port": closed }),
    );
    local["secrets"] = json!({ "imap_password": "p1" });
    let created = admin.create("/api/v1/channels", local).await;
    let id = created["channel"]["id"].as_u64().unwrap();
    assert_eq!(created["channel"]["secrets_set"], json!(["imap_password"]));
    expect_error(
        admin
            .patch(
                &format!("/api/v1/channels/{id}"),
                json!({ "secrets": { "api_key": "x" } }),
            )
            .await,
        400,
        "invalid_field",
    )
    .await;
    let updated: Value = admin
        .patch(
            &format!("/api/v1/channels/{id}"),
            json!({ "secrets": { "smtp_password": "s3cret-smtp", "imap_password": "" } }),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(updated["secrets_set"], json!(["smtp_password"]));
    let shown = admin
        .json(&format!("/api/v1/channels/{id}"))
        .await
        .to_string();
    assert!(
        !shown.contains("s3cret-smtp") && !shown.contains("p1\""),
        "{shown}"
    );
    // Nothing listens there: the status says so instead of failing silently.
    let s = wait_for("the connection error", 30, async || {
        let s = status(&admin, id).await;
        (s["state"] == "error").then_some(s)
    })
    .await;
    assert!(
        s["last_error"]
            .as_str()
            .unwrap()
            .contains(&format!("127.0.0.1:{closed}")),
        "{s}"
    );

    // Switched off and the server restarted: the channel is stopped, and its last error is
    // still there to explain why it was.
    admin
        .patch(
            &format!("/api/v1/channels/{id}"),
            json!({ "enabled": false }),
        )
        .await;
    server.stop();
    server.launch().await;
    let admin = Session::login(&server, "admin", NEW_ADMIN_PASSWORD)
        .await
        .unwrap();
    let after = status(&admin, id).await;
    assert_eq!(after["state"], "stopped", "{after}");
    assert!(
        after["last_error"]
            .as_str()
            .is_some_and(|e| e.contains(&format!("127.0.0.1:{closed}")))
            && after["last_error_at"].is_i64(),
        "{after}"
    );
}

#[tokio::test]
async fn the_console_adds_an_email_channel_and_shows_email_messages() {
    use crate::browser_support::*;
    let mail = MailServers::start().await;
    let server = TestServer::start().await;
    let admin = server.admin().await;
    run_in_browser(&server, "browser-email", async |page| {
        console_email_flow(page, &server, &admin, &mail).await
    })
    .await;
}

async fn console_email_flow(
    page: &crate::browser_support::Page,
    server: &TestServer,
    admin: &Session,
    mail: &MailServers,
) -> anyhow::Result<()> {
    use crate::browser_support::*;
    page.sign_in(server, "admin", NEW_ADMIN_PASSWORD).await?;
    page.click(&tid("nav-channels")).await?;
    page.click(&tid("channel-new-email")).await?;
    page.fill(&tid("channel-name"), "客服邮箱 Support").await?;
    page.fill(&tid("email-imap-host"), "127.0.0.1").await?;
    page.fill(&tid("email-imap-port"), &mail.imaps_port.to_string())
        .await?;
    page.select(&tid("email-imap-tls"), "tls").await?;
    page.fill(&tid("email-imap-username"), SUPPORT).await?;
    page.fill(&tid("email-imap-password"), SUPPORT_PASSWORD)
        .await?;
    page.fill(&tid("email-smtp-host"), "localhost").await?;
    page.fill(&tid("email-smtp-port"), &mail.submission_port.to_string())
        .await?;
    page.select(&tid("email-smtp-tls"), "starttls").await?;
    page.fill(&tid("email-smtp-username"), SUPPORT).await?;
    page.fill(&tid("email-smtp-password"), SUPPORT_PASSWORD)
        .await?;
    page.fill(&tid("email-from-address"), SUPPORT).await?;
    page.fill(&tid("email-poll-interval-secs"), "3600").await?;
    page.eval(&format!(
        "document.querySelector('[data-testid=\"email-ca-certificate\"]').value = {};",
        serde_json::to_string(&mail.ca_pem)?
    ))
    .await?;
    page.click(&tid("dialog-submit")).await?;
    page.gone(&tid("email-channel-dialog")).await?;
    let row = r#"[data-testid="channel-row"][data-name="客服邮箱 Support"]"#;
    page.find(row).await?;
    // The status is read when the list is drawn: come back until the mailbox is connected.
    let connected = format!(r#"{row} [data-testid="email-state"][data-state="idle"]"#);
    eventually("the channel to show it is connected", || async {
        page.click(&tid("nav-inbox")).await?;
        page.click(&tid("nav-channels")).await?;
        page.find(row).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let script = format!(
            "return !!document.querySelector({})",
            serde_json::to_string(&connected)?
        );
        Ok((page.eval(&script).await? == json!(true)).then_some(()))
    })
    .await?;
    page.screenshot("email-01-channels").await?;
    // Editing shows the passwords as set, never their values.
    page.click(&format!("{row} {}", tid("channel-actions")))
        .await?;
    page.click(&tid("channel-edit")).await?;
    let kept = page
        .attr(&tid("email-imap-password"), "placeholder")
        .await?;
    anyhow::ensure!(kept == "Unchanged", "placeholder {kept:?}");
    anyhow::ensure!(
        page.eval("return document.querySelector('[data-testid=\"email-imap-password\"]').value")
            .await?
            == json!(""),
        "the password field is empty"
    );
    page.click(&tid("dialog-cancel")).await?;

    mail.send(
        CUSTOMER,
        SUPPORT,
        "From: Chen <customer@customer.test>\nTo: support@allhands.test\nSubject: Invoice please\n\
         Message-ID: <v1@customer.test>\n\nCould I get an invoice?\n\n-- \nChen, ACME Ltd\n",
    )
    .await;
    mail.append(b"Subject: garbled\r\nContent-Type: multipart/mixed\r\n\r\nhelp\r\n")
        .await;
    let ids = wait_for("both mails", 20, async || {
        let all = email_conversations(admin).await;
        let id_of = |subject: &str| {
            all.iter()
                .find(|c| c["subject"] == subject)
                .and_then(|c| c["id"].as_u64())
        };
        Some([id_of("Invoice please")?, id_of("garbled")?])
    })
    .await;
    page.client
        .goto(&server.url(&format!("/inbox/{}", ids[0])))
        .await?;
    page.text_contains(&tid("message-subject"), "Invoice please")
        .await?;
    page.text_contains(&tid("message-text"), "Could I get an invoice?")
        .await?;
    let shown = page.find(&tid("message-text")).await?.text().await?;
    anyhow::ensure!(
        !shown.contains("ACME Ltd"),
        "the signature is trimmed: {shown}"
    );
    page.click(&tid("message-show-original")).await?;
    page.text_contains(&tid("message-text"), "Chen, ACME Ltd")
        .await?;
    page.screenshot("email-02-original").await?;
    page.client
        .goto(&server.url(&format!("/inbox/{}", ids[1])))
        .await?;
    page.find(&tid("message-malformed")).await?;
    page.find(&tid("message-raw")).await?;
    page.text_contains(&tid("message-text"), "help").await?;
    page.expect_no_csp_violations().await?;
    Ok(())
}

#[tokio::test]
async fn a_visitor_who_left_the_chat_gets_the_reply_by_email_and_answers_into_the_chat() {
    let mail = MailServers::start().await;
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let email_channel = create_channel(&admin, &mail, 3600).await;
    wait_connected(&admin, &server, &mail, email_channel).await;

    // The fallback must be an e-mail channel.
    let refused = admin
        .send(
            reqwest::Method::POST,
            "/api/v1/channels",
            Some(json!({ "kind": "web", "name": "Site chat", "settings": { "email_fallback_channel_id": 999 } })),
        )
        .await;
    assert_eq!(refused.status(), 400);
    let web = admin
        .create(
            "/api/v1/channels",
            json!({ "kind": "web", "name": "Site chat", "settings": { "email_fallback_channel_id": email_channel } }),
        )
        .await;
    let web_channel = web["channel"]["id"].as_u64().unwrap();

    // A visitor leaves a message with their address, then closes the page.
    let session: Value = start_session(&server, web_channel, WIDGET_SITE, json!({}))
        .await
        .json()
        .await
        .unwrap();
    let token = session["visitor_token"].as_str().unwrap();
    let mut widget = visitor_socket(&server, web_channel, token, 0).await;
    send(
        &mut widget,
        json!({ "type": "profile", "name": "Chen Jing", "email": CUSTOMER }),
    )
    .await;
    send(
        &mut widget,
        json!({ "type": "message", "client_id": "c-1", "text": "Do you ship to Hangzhou?" }),
    )
    .await;
    let conversation = wait_for("the chat message", 10, async || {
        admin.json("/api/v1/conversations?channel_kind=web").await["items"]
            .as_array()
            .unwrap()
            .first()
            .cloned()
    })
    .await;
    let id = conversation["id"].as_u64().unwrap();
    widget.close(None).await.unwrap();
    drop(widget);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let reply = admin
        .create(
            &format!("/api/v1/conversations/{id}/messages"),
            json!({ "text": "Yes, in two days." }),
        )
        .await;
    let reply_id = reply["id"].as_u64().unwrap();
    assert_eq!(reply["delivery"]["state"], "queued", "{reply}");
    wait_for("the reply to be mailed", 30, async || {
        let all = messages(&admin, id).await;
        let m = all.iter().find(|m| m["id"] == reply_id)?.clone();
        assert_ne!(m["delivery"]["state"], "failed", "{m}\n{}", mail.logs());
        (m["delivery"]["state"] == "sent").then_some(m)
    })
    .await;
    let received = wait_for("the reply in the visitor's mailbox", 20, async || {
        mail.mailbox(CUSTOMER, CUSTOMER_PASSWORD).await.pop()
    })
    .await;
    let parsed = mail_parser::MessageParser::default()
        .parse(&received)
        .unwrap();
    let ours = parsed.message_id().unwrap().to_string();
    assert!(parsed.body_text(0).unwrap().contains("Yes, in two days."));
    assert!(parsed.subject().unwrap().contains(&format!("[#{id}]")));

    // The visitor answers the mail: the answer continues the chat, not a new conversation.
    mail.send(
        CUSTOMER,
        SUPPORT,
        &format!(
            "From: Chen Jing <{CUSTOMER}>\n\
             To: {SUPPORT}\n\
             Subject: Re: {}\n\
             Message-ID: <v2@customer.test>\n\
             In-Reply-To: <{ours}>\n\
             References: <{ours}>\n\
             Content-Type: text/plain; charset=utf-8\n\
             \n\
             Great, thanks!\n",
            parsed.subject().unwrap()
        ),
    )
    .await;
    let answer = wait_for("the visitor's answer in the chat", 20, async || {
        let all = messages(&admin, id).await;
        all.iter().find(|m| m["text"] == "Great, thanks!").cloned()
    })
    .await;
    assert_eq!(answer["direction"], "inbound");
    assert!(
        email_conversations(&admin).await.is_empty(),
        "no separate e-mail conversation"
    );

    // While the visitor has the chat open, a reply is only pushed to it.
    let mut widget = wss(
        &server,
        &format!("/api/v1/widget/{web_channel}/ws?token={token}&after=0"),
        &[],
    )
    .await
    .expect("the widget reconnects");
    let _ = next_event(&mut widget, Duration::from_secs(5)).await;
    let live = admin
        .create(
            &format!("/api/v1/conversations/{id}/messages"),
            json!({ "text": "Anything else?" }),
        )
        .await;
    assert_eq!(live["delivery"]["state"], "sent", "{live}");
}
