//! The documented list of every setting, and the commented example file made from it.

use super::Config;

pub struct OptionDoc {
    pub section: &'static str,
    pub key: &'static str,
    pub doc: &'static str,
    /// Shown for settings whose default is "unset".
    pub example_when_unset: Option<&'static str>,
    /// Accepts `ALLHANDS_<SECTION>__<KEY>_FILE` naming a file that holds the value.
    pub secret: bool,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Number,
    Bool,
    List,
}

macro_rules! option {
    ($section:literal, $key:literal, $kind:ident, $doc:literal) => {
        OptionDoc {
            section: $section,
            key: $key,
            doc: $doc,
            example_when_unset: None,
            secret: false,
            kind: Kind::$kind,
        }
    };
    ($section:literal, $key:literal, $kind:ident, $doc:literal, unset = $example:literal) => {
        OptionDoc {
            section: $section,
            key: $key,
            doc: $doc,
            example_when_unset: Some($example),
            secret: false,
            kind: Kind::$kind,
        }
    };
    ($section:literal, $key:literal, $kind:ident, $doc:literal, unset = $example:literal, secret) => {
        OptionDoc {
            section: $section,
            key: $key,
            doc: $doc,
            example_when_unset: Some($example),
            secret: true,
            kind: Kind::$kind,
        }
    };
}

pub const OPTIONS: &[OptionDoc] = &[
    option!(
        "server",
        "listen",
        Text,
        "Address and port of the HTTPS listener (the console, the API and WebSockets)."
    ),
    option!(
        "server",
        "redirect_listen",
        Text,
        "Optional plain-HTTP listener that only redirects browsers to HTTPS.",
        unset = "\"0.0.0.0:80\""
    ),
    option!(
        "server",
        "public_url",
        Text,
        "The address people use to reach this server; used to build redirects and links.",
        unset = "\"https://support.example.com\""
    ),
    option!(
        "server",
        "workers",
        Number,
        "HTTP worker threads; 0 means one per CPU core."
    ),
    option!(
        "server",
        "max_body_bytes",
        Number,
        "Largest request body accepted, in bytes; larger ones get 413 payload_too_large."
    ),
    option!(
        "server",
        "trusted_proxies",
        List,
        "Reverse proxies whose X-Forwarded-For header is believed for the client address."
    ),
    option!(
        "server",
        "shutdown_timeout_secs",
        Number,
        "Seconds to let requests finish on shutdown."
    ),
    option!(
        "tls",
        "mode",
        Text,
        "\"self-signed\" (a certificate made on first start and kept in the data directory), \"files\" (cert_file and key_file, reloaded on SIGHUP) or \"off-behind-proxy\" (plain HTTP for a TLS-terminating proxy on this host)."
    ),
    option!(
        "tls",
        "cert_file",
        Text,
        "PEM certificate chain, for mode = \"files\".",
        unset = "\"/etc/allhands/tls/fullchain.pem\""
    ),
    option!(
        "tls",
        "key_file",
        Text,
        "PEM private key, for mode = \"files\".",
        unset = "\"/etc/allhands/tls/privkey.pem\""
    ),
    option!(
        "tls",
        "self_signed_names",
        List,
        "Extra host names and addresses for the self-signed certificate."
    ),
    option!(
        "tls",
        "hsts_max_age_secs",
        Number,
        "Strict-Transport-Security max-age in seconds; 0 sends no HSTS header."
    ),
    option!(
        "storage",
        "data_dir",
        Text,
        "Directory holding the store, keys, the self-signed certificate and (by default) logs."
    ),
    option!(
        "storage",
        "cache_mib",
        Number,
        "Memory for the store's page cache, in MiB."
    ),
    option!(
        "storage",
        "checkpoint_ms",
        Number,
        "Longest time, in milliseconds, between the store's durable commits while the inbound log keeps customers' messages durable; a crash replays at most this much from the log."
    ),
    option!(
        "auth",
        "session_idle_minutes",
        Number,
        "A console session ends after this many minutes without a request."
    ),
    option!(
        "auth",
        "session_max_hours",
        Number,
        "A console session ends this many hours after login, however active."
    ),
    option!(
        "auth",
        "password_min_length",
        Number,
        "Shortest password accepted (at least 8)."
    ),
    option!(
        "auth",
        "argon2_memory_kib",
        Number,
        "argon2id memory cost per password hash, in KiB."
    ),
    option!(
        "auth",
        "argon2_iterations",
        Number,
        "argon2id time cost (passes)."
    ),
    option!("auth", "argon2_parallelism", Number, "argon2id lanes."),
    option!(
        "auth",
        "max_failures_per_account",
        Number,
        "Failed logins for one account within the lockout window before it is throttled."
    ),
    option!(
        "auth",
        "max_failures_per_address",
        Number,
        "Failed logins from one client address within the lockout window before it is throttled."
    ),
    option!(
        "auth",
        "lockout_window_minutes",
        Number,
        "The window, in minutes, over which failed logins are counted."
    ),
    option!(
        "auth",
        "api_token_max_days",
        Number,
        "Longest lifetime an API token may be issued with, in days."
    ),
    option!(
        "audit",
        "retention_days",
        Number,
        "Days to keep audit entries; 0 keeps them forever. Pruning keeps the hash chain verifiable."
    ),
    option!(
        "delivery",
        "retry_initial_secs",
        Number,
        "Seconds before the first retry of a failed outbound delivery (webhook, channel API); each retry waits three times longer, at most an hour."
    ),
    option!(
        "delivery",
        "max_attempts",
        Number,
        "Delivery attempts before a message goes to the dead-letter list, where an administrator can retry it."
    ),
    option!(
        "delivery",
        "timeout_secs",
        Number,
        "Seconds one delivery attempt may take."
    ),
    option!(
        "attachments",
        "max_bytes",
        Number,
        "Largest file, in bytes, that customers and employees may attach to a message."
    ),
    option!(
        "attachments",
        "allowed_types",
        List,
        "Types accepted, as found in the file's content (\"image/*\" or exact types); executables are always refused."
    ),
    option!(
        "assist.llm",
        "enabled",
        Bool,
        "Draft and polish replies with the organisation's own OpenAI-compatible model server (vLLM, Ollama, llama.cpp); off by default, and everything else works without it."
    ),
    option!(
        "assist.llm",
        "base_url",
        Text,
        "The server's OpenAI-compatible root: POST <base_url>/chat/completions drafts, GET <base_url>/models is the health check."
    ),
    option!(
        "assist.llm",
        "api_key",
        Text,
        "Sent as Authorization: Bearer when set. Better given as ALLHANDS_ASSIST__LLM__API_KEY or ALLHANDS_ASSIST__LLM__API_KEY_FILE (a file holding it) than written here.",
        unset = "\"sk-...\"",
        secret
    ),
    option!(
        "assist.llm",
        "model",
        Text,
        "The model to ask, as the server names it (GET <base_url>/models); needed when enabled.",
        unset = "\"qwen2.5:7b-instruct\""
    ),
    option!(
        "assist.llm",
        "timeout_ms",
        Number,
        "Milliseconds a draft may take, waiting for a free slot included; then it fails with llm_unavailable."
    ),
    option!(
        "assist.llm",
        "max_concurrency",
        Number,
        "Requests sent to the model server at once; more wait for a slot within the timeout."
    ),
    option!(
        "assist.llm",
        "redact",
        Bool,
        "Mask e-mail addresses and phone numbers (long runs of digits) in the conversation and the employee's text before they are sent."
    ),
    option!(
        "assist.llm",
        "breaker_failures",
        Number,
        "Consecutive failures (timeouts, refused connections, bad answers) after which drafts are refused at once for the cool-down."
    ),
    option!(
        "assist.llm",
        "breaker_cooldown_secs",
        Number,
        "Seconds drafts are refused after the failures above; then one request tries the server again."
    ),
    option!(
        "assist.llm",
        "max_tokens",
        Number,
        "Longest answer asked of the model, in tokens."
    ),
    option!(
        "log",
        "level",
        Text,
        "Log filter, e.g. \"info\" or \"info,allhands::http=debug\"."
    ),
    option!(
        "log",
        "dir",
        Text,
        "Directory for daily-rolled log files; unset means <data_dir>/logs.",
        unset = "\"/var/log/allhands\""
    ),
    option!(
        "log",
        "keep_files",
        Number,
        "Daily log files to keep; 0 keeps all."
    ),
    option!("log", "format", Text, "\"text\" or \"json\"."),
    option!(
        "log",
        "stderr",
        Bool,
        "Also log to standard error (the journal, under systemd)."
    ),
];

pub fn find(section: &str, key: &str) -> Option<&'static OptionDoc> {
    OPTIONS
        .iter()
        .find(|o| o.section == section && o.key == key)
}

const HEADER: &str = "\
# AllHands configuration.
#
# Every setting is listed with its default value, commented out: uncomment a line to change it.
# Settings are layered, lowest first: built-in defaults, this file, ALLHANDS_* environment
# variables (ALLHANDS_<SECTION>__<KEY>, e.g. ALLHANDS_SERVER__LISTEN=0.0.0.0:443), then
# command-line flags. An unknown key is an error. Check a file with `allhands config check`.
";

/// What the deb and rpm packages install as /etc/allhands/allhands.toml: the example, with the
/// settings that put the service's files where Linux keeps them (and make it reachable from the
/// network) uncommented.
pub const PACKAGE_SETTINGS: &[(&str, &str, &str)] = &[
    ("server", "listen", "\"0.0.0.0:8443\""),
    ("storage", "data_dir", "\"/var/lib/allhands\""),
    ("log", "dir", "\"/var/log/allhands\""),
    ("log", "stderr", "false"),
];

const PACKAGE_HEADER: &str = "\
#
# Installed by the allhands package, which never overwrites this file on upgrade. The settings
# below that are not commented out are the package's: the store in /var/lib/allhands, logs in
# /var/log/allhands (the journal keeps start-up errors and the first administrator's password),
# HTTPS on every interface, port 8443. Apply a change with `systemctl restart allhands`.
";

/// `allhands config example --packaged`: the package's /etc/allhands/allhands.toml.
pub fn render_packaged() -> String {
    render_with(PACKAGE_HEADER, PACKAGE_SETTINGS)
}

/// The commented example configuration (what `allhands config example` prints).
pub fn render() -> String {
    render_with("", &[])
}

/// Every option with its documentation, commented out with its default, except `set`: those
/// are written uncommented with the given value.
fn render_with(extra_header: &str, set: &[(&str, &str, &str)]) -> String {
    let defaults =
        toml::Value::Table(toml::Table::try_from(Config::default()).expect("defaults serialise"));
    let mut out = format!("{HEADER}{extra_header}");
    let mut section = "";
    for option in OPTIONS {
        if option.section != section {
            section = option.section;
            out.push_str(&format!("\n[{section}]\n"));
        }
        for line in textwrap(option.doc, 96) {
            out.push_str(&format!("# {line}\n"));
        }
        let value = default_of(&defaults, option)
            .map(|v| v.to_string())
            .or_else(|| option.example_when_unset.map(str::to_string))
            .expect("every option has a default or an example");
        match set
            .iter()
            .find(|(s, k, _)| *s == option.section && *k == option.key)
        {
            Some((_, key, value)) => out.push_str(&format!("{key} = {value}\n")),
            None => out.push_str(&format!("#{} = {}\n", option.key, value)),
        }
    }
    out
}

/// The default of an option whose section may be nested ("assist.llm").
fn default_of<'a>(defaults: &'a toml::Value, option: &OptionDoc) -> Option<&'a toml::Value> {
    option
        .section
        .split('.')
        .try_fold(defaults, |table, part| table.get(part))?
        .get(option.key)
}

fn textwrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("non-empty");
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (section, key) with a default; nested tables are sections ("assist.llm").
    fn settings(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
        for (key, value) in table {
            match value.as_table() {
                Some(inner) => {
                    let section = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    settings(&section, inner, out);
                }
                None => out.push((prefix.to_string(), key.clone())),
            }
        }
    }

    #[test]
    fn every_setting_is_documented_once() {
        let table = toml::Table::try_from(Config::default()).unwrap();
        let mut found = Vec::new();
        settings("", &table, &mut found);
        for (section, key) in &found {
            assert!(
                find(section, key).is_some(),
                "{section}.{key} has no documentation"
            );
        }
        let defaults = toml::Value::Table(table);
        for option in OPTIONS {
            let has_default = default_of(&defaults, option).is_some();
            assert!(
                has_default || option.example_when_unset.is_some(),
                "{}.{}",
                option.section,
                option.key
            );
            assert_eq!(
                OPTIONS
                    .iter()
                    .filter(|o| o.section == option.section && o.key == option.key)
                    .count(),
                1
            );
        }
    }

    #[test]
    fn the_example_with_defaults_uncommented_parses_to_the_defaults() {
        let uncommented: String = render()
            .lines()
            .map(|line| {
                let is_setting =
                    line.starts_with('#') && line.contains(" = ") && !line.starts_with("# ");
                let key = line
                    .trim_start_matches('#')
                    .split(" = ")
                    .next()
                    .unwrap_or("");
                let unset = OPTIONS
                    .iter()
                    .any(|o| o.key == key && o.example_when_unset.is_some());
                if is_setting && !unset {
                    line[1..].to_string()
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let parsed: Config = toml::from_str(&uncommented).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn packaging_config_matches_the_example() {
        let packaged = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/packaging/allhands.toml"
        ))
        .expect("packaging/allhands.toml exists; regenerate it with `allhands config example --packaged`");
        assert_eq!(
            packaged,
            render_packaged(),
            "packaging/allhands.toml drifted: run `allhands config example --packaged > packaging/allhands.toml`"
        );
        let parsed: Config = toml::from_str(&packaged).expect("the packaged file parses");
        assert_eq!(
            parsed.storage.data_dir,
            std::path::Path::new("/var/lib/allhands")
        );
        assert_eq!(parsed.log_dir(), std::path::Path::new("/var/log/allhands"));
        assert_eq!(parsed.server.listen.to_string(), "0.0.0.0:8443");
        assert!(!parsed.log.stderr);
        let uncommented = packaged
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
            .count();
        assert_eq!(uncommented, PACKAGE_SETTINGS.len());
    }
}
