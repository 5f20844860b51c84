//! Layering: defaults < config file < `ALLHANDS_*` environment < flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::Config;
use super::example::{self, Kind};

pub const DEFAULT_CONFIG_FILE: &str = "/etc/allhands/allhands.toml";
const ENV_PREFIX: &str = "ALLHANDS_";
/// Environment variables that are not settings.
const SPECIAL_ENV: &[&str] = &[
    "ALLHANDS_CONFIG",
    "ALLHANDS_DATA_DIR",
    "ALLHANDS_ADMIN_PASSWORD",
    "ALLHANDS_ADMIN_PASSWORD_FILE",
    "ALLHANDS_LOG",
];

/// Values given as command-line flags; they win over everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    Defaults,
    File(PathBuf),
}

/// A secret that never shows in Debug output or logs. It serialises as a placeholder, so the
/// effective configuration recorded at start (and audited on change) never holds it.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("(secret)")
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    pub source: ConfigSource,
    /// The first administrator's password, from ALLHANDS_ADMIN_PASSWORD(_FILE), for automation.
    pub admin_password: Option<Secret>,
}

/// Loads the configuration from the process environment.
pub fn load(overrides: &Overrides) -> Result<LoadedConfig, String> {
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    load_from(overrides, &env, Path::new(DEFAULT_CONFIG_FILE))
}

pub fn load_from(
    overrides: &Overrides,
    env: &[(String, String)],
    default_file: &Path,
) -> Result<LoadedConfig, String> {
    let env_value = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let mut merged = toml::Table::try_from(Config::default()).map_err(|e| e.to_string())?;

    let explicit = overrides
        .config_file
        .clone()
        .or_else(|| env_value("ALLHANDS_CONFIG").map(PathBuf::from));
    let file = match explicit {
        Some(path) => Some(path),
        None if default_file.exists() => Some(default_file.to_path_buf()),
        None => None,
    };
    let source = match &file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
            // Checked alone first so an unknown key is reported against the file it came from.
            toml::from_str::<Config>(&text)
                .map_err(|e| format!("in {}: {}", path.display(), one_line(&e.to_string())))?;
            let table: toml::Table =
                toml::from_str(&text).map_err(|e| format!("in {}: {e}", path.display()))?;
            merge(&mut merged, table);
            ConfigSource::File(path.clone())
        }
        None => ConfigSource::Defaults,
    };

    for (name, value) in env {
        if SPECIAL_ENV.contains(&name.as_str()) {
            continue;
        }
        let (section, key, value) = env_setting(name, value)?;
        set(&mut merged, &section, &key, value);
    }
    if let Some(dir) = env_value("ALLHANDS_DATA_DIR") {
        set(&mut merged, "storage", "data_dir", toml::Value::String(dir));
    }

    if let Some(dir) = &overrides.data_dir {
        set(
            &mut merged,
            "storage",
            "data_dir",
            toml::Value::String(dir.display().to_string()),
        );
    }
    if let Some(listen) = overrides.listen {
        set(
            &mut merged,
            "server",
            "listen",
            toml::Value::String(listen.to_string()),
        );
    }

    let config: Config = merged.try_into().map_err(|e: toml::de::Error| {
        format!(
            "invalid setting from the environment or flags: {}",
            one_line(&e.to_string())
        )
    })?;
    config.validate()?;

    // systemd's LoadCredential= puts secrets in $CREDENTIALS_DIRECTORY.
    let credential = std::env::var("CREDENTIALS_DIRECTORY")
        .ok()
        .map(|dir| Path::new(&dir).join("admin-password"))
        .filter(|path| path.exists());
    let admin_password = match (
        env_value("ALLHANDS_ADMIN_PASSWORD"),
        env_value("ALLHANDS_ADMIN_PASSWORD_FILE"),
        credential,
    ) {
        (Some(p), _, _) => Some(Secret(p)),
        (None, Some(path), _) => Some(Secret(read_secret_file(
            "ALLHANDS_ADMIN_PASSWORD_FILE",
            &path,
        )?)),
        (None, None, Some(path)) => Some(Secret(read_secret_file(
            "$CREDENTIALS_DIRECTORY/admin-password",
            &path.display().to_string(),
        )?)),
        (None, None, None) => None,
    };
    Ok(LoadedConfig {
        config,
        source,
        admin_password,
    })
}

/// Turns `ALLHANDS_SECTION__KEY=value` (or `..._FILE=path` for secrets) into a setting.
fn env_setting(name: &str, value: &str) -> Result<(String, String, toml::Value), String> {
    let rest = &name[ENV_PREFIX.len()..];
    // ALLHANDS_ASSIST__LLM__MODEL: every part but the last names a (nested) section.
    let (section, key) = rest
        .rsplit_once("__")
        .map(|(s, k)| {
            (
                s.split("__")
                    .collect::<Vec<_>>()
                    .join(".")
                    .to_ascii_lowercase(),
                k.to_ascii_lowercase(),
            )
        })
        .ok_or_else(|| {
            format!(
                "unknown environment variable {name}: settings are named ALLHANDS_<SECTION>__<KEY>"
            )
        })?;
    if let Some(option) = example::find(&section, &key) {
        return Ok((section, key, typed_value(option.kind, value)));
    }
    if let Some(base) = key.strip_suffix("_file")
        && let Some(option) = example::find(&section, base)
        && option.secret
    {
        let secret = read_secret_file(name, value)?;
        return Ok((section, base.to_string(), toml::Value::String(secret)));
    }
    Err(format!(
        "unknown environment variable {name}: there is no setting {section}.{key}"
    ))
}

fn typed_value(kind: Kind, raw: &str) -> toml::Value {
    let parsed = || {
        toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
    };
    match kind {
        Kind::Text => toml::Value::String(raw.to_string()),
        Kind::Number | Kind::Bool => {
            parsed().unwrap_or_else(|| toml::Value::String(raw.to_string()))
        }
        Kind::List => parsed().unwrap_or_else(|| {
            toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.into()))
                    .collect(),
            )
        }),
    }
}

fn read_secret_file(variable: &str, path: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
        .map_err(|e| format!("{variable} names {path}, which cannot be read: {e}"))
}

fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(overlay_inner)) => {
                merge(inner, overlay_inner)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Sets `key` in `section`, a dotted path of tables ("assist.llm").
fn set(table: &mut toml::Table, section: &str, key: &str, value: toml::Value) {
    let mut current = table;
    for part in section.split('.') {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(inner) = entry else {
            return;
        };
        current = inner;
    }
    current.insert(key.to_string(), value);
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn nowhere() -> PathBuf {
        PathBuf::from("/nonexistent/allhands.toml")
    }

    #[test]
    fn defaults_work_without_any_file() {
        let loaded = load_from(&Overrides::default(), &[], &nowhere()).unwrap();
        assert_eq!(loaded.config, Config::default());
        assert_eq!(loaded.source, ConfigSource::Defaults);
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.toml");
        std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:9000\"\nworkers = 3\n[storage]\ndata_dir = \"/from/file\"\n").unwrap();
        let overrides = Overrides {
            config_file: Some(file),
            data_dir: Some("/from/flag".into()),
            listen: None,
        };
        let loaded = load_from(
            &overrides,
            &env(&[
                ("ALLHANDS_SERVER__WORKERS", "5"),
                ("ALLHANDS_LOG__LEVEL", "debug"),
            ]),
            &nowhere(),
        )
        .unwrap();
        let c = loaded.config;
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.server.workers, 5);
        assert_eq!(c.log.level, "debug");
        assert_eq!(c.storage.data_dir, PathBuf::from("/from/flag"));
    }

    #[test]
    fn unknown_keys_name_the_key_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "[server]\nlisen = \"127.0.0.1:9000\"\n").unwrap();
        let overrides = Overrides {
            config_file: Some(file.clone()),
            ..Default::default()
        };
        let err = load_from(&overrides, &[], &nowhere()).unwrap_err();
        assert!(
            err.contains("lisen") && err.contains(&file.display().to_string()),
            "{err}"
        );
        let err = load_from(
            &Overrides::default(),
            &env(&[("ALLHANDS_SERVER__LISEN", "x")]),
            &nowhere(),
        )
        .unwrap_err();
        assert!(err.contains("ALLHANDS_SERVER__LISEN"), "{err}");
    }

    #[test]
    fn admin_password_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "correct horse battery\n").unwrap();
        let loaded = load_from(
            &Overrides::default(),
            &env(&[("ALLHANDS_ADMIN_PASSWORD_FILE", file.to_str().unwrap())]),
            &nowhere(),
        )
        .unwrap();
        assert_eq!(loaded.admin_password.unwrap().0, "correct horse battery");
        assert_eq!(format!("{:?}", Secret("x".into())), "Secret(***)");
    }

    #[test]
    fn nested_sections_and_secret_files_come_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("llm-key");
        std::fs::write(&key, "sk-local\n").unwrap();
        let loaded = load_from(
            &Overrides::default(),
            &env(&[
                ("ALLHANDS_ASSIST__LLM__ENABLED", "true"),
                ("ALLHANDS_ASSIST__LLM__MODEL", "qwen2.5"),
                ("ALLHANDS_ASSIST__LLM__TIMEOUT_MS", "2000"),
                ("ALLHANDS_ASSIST__LLM__API_KEY_FILE", key.to_str().unwrap()),
            ]),
            &nowhere(),
        )
        .unwrap();
        let llm = &loaded.config.assist.llm;
        assert!(llm.enabled);
        assert_eq!(llm.model.as_deref(), Some("qwen2.5"));
        assert_eq!(llm.timeout_ms, 2000);
        assert_eq!(llm.api_key, Some(Secret("sk-local".into())));
        let recorded = serde_json::to_string(&loaded.config).unwrap();
        assert!(!recorded.contains("sk-local"), "{recorded}");

        let err = load_from(
            &Overrides::default(),
            &env(&[("ALLHANDS_ASSIST__LLM__ENABLED", "true")]),
            &nowhere(),
        )
        .unwrap_err();
        assert!(err.contains("assist.llm.model"), "{err}");
    }

    #[test]
    fn wrong_types_are_reported() {
        let err = load_from(
            &Overrides::default(),
            &env(&[("ALLHANDS_SERVER__WORKERS", "many")]),
            &nowhere(),
        )
        .unwrap_err();
        assert!(err.contains("workers"), "{err}");
    }
}
