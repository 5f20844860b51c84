//! The command line: `allhands <command>`. Every command accepts `--config` and `--data-dir`.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use redb::ReadableTable;
use serde_json::json;

use crate::audit::{self, Actor, AuditEvent};
use crate::auth::rbac::{self, BUILTIN_ROLES, Grant, GrantSubject};
use crate::config::{self, LoadedConfig, Overrides};
use crate::org::service as org;
use crate::org::{Employee, Language};
use crate::storage::{DataDirLock, Store, codec, next_id, tables};

#[derive(Debug, Parser)]
#[command(
    name = "allhands",
    version,
    about = "AllHands: self-hosted customer service in which every employee can answer customers"
)]
pub struct Cli {
    /// Configuration file [default: /etc/allhands/allhands.toml when present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (overrides storage.data_dir)
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server
    Serve {
        /// HTTPS listen address (overrides server.listen), e.g. 0.0.0.0:443
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Check or print the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Account recovery from the command line (with the server stopped)
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Write a consistent backup, also while the server runs
    Backup {
        /// The backup file to write
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "to_dir",
            conflicts_with = "to_dir"
        )]
        to: Option<PathBuf>,
        /// Write allhands-<UTC time>.backup into this directory instead (what the backup timer does)
        #[arg(long, value_name = "DIR")]
        to_dir: Option<PathBuf>,
        /// With --to-dir: then delete all but the newest N backups there (0 keeps all)
        #[arg(long, value_name = "N", default_value_t = 0, requires = "to_dir")]
        keep: usize,
    },
    /// Replace the store with a backup (the server must be stopped; the old store is kept)
    Restore {
        /// The backup file to restore
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
    /// Store maintenance
    #[command(subcommand)]
    Db(DbCommand),
    /// Audit log checks
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Exit 0 when the local server answers /healthz
    Healthcheck {
        /// Seconds to wait for an answer
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
    /// Print the version and the store schema version
    Version,
    /// Write the manual pages (allhands.1 and one page per command) into a directory
    #[command(hide = true)]
    Manpages {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Measure knowledge search (recall@1, recall@3, MRR) and the emotion and rudeness readings
    /// (precision and recall of "angry" and "rude") on evaluation sets
    Eval {
        /// Articles, graph and labelled questions (see tests/data/knowledge/README.md)
        #[arg(long, value_name = "DIR", default_value = "tests/data/knowledge")]
        knowledge: PathBuf,
        /// Held-out emotion and rudeness sets (see tests/data/emotion/README.md)
        #[arg(long, value_name = "DIR", default_value = "tests/data/emotion")]
        emotion: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load the configuration as `serve` would and report problems
    Check,
    /// Print the commented default configuration
    Example {
        /// Print the file the deb and rpm packages install as /etc/allhands/allhands.toml
        #[arg(long)]
        packaged: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an employee account with a built-in role (default: administrator)
    CreateUser(CreateUser),
    /// Give an employee a new one-time password and end their sessions
    ResetPassword {
        #[arg(long)]
        username: String,
        /// Read the new password from standard input instead of generating one
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Args)]
pub struct CreateUser {
    #[arg(long)]
    pub username: String,
    #[arg(long)]
    pub display_name: Option<String>,
    /// Department id [default: the first top-level department]
    #[arg(long)]
    pub department_id: Option<u64>,
    /// Built-in role key: administrator, supervisor, specialist_agent, employee_agent, auditor, read_only
    #[arg(long, default_value = "administrator")]
    pub role: String,
    /// Read the password from standard input instead of generating one
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Check that every table opens, every record decodes and the audit chain holds
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's hash chain; names the first altered or removed entry
    Verify,
}

pub fn run(cli: Cli) -> ExitCode {
    let overrides = Overrides {
        config_file: cli.config.clone(),
        data_dir: cli.data_dir.clone(),
        listen: match &cli.command {
            Command::Serve { listen } => *listen,
            _ => None,
        },
    };
    match cli.command {
        Command::Config(ConfigCommand::Example { packaged }) => {
            if packaged {
                print!("{}", config::example::render_packaged());
            } else {
                print!("{}", config::example::render());
            }
            ExitCode::SUCCESS
        }
        Command::Eval { knowledge, emotion } => run_eval(&knowledge, &emotion),
        Command::Version => {
            println!(
                "allhands {} (store schema {})",
                env!("CARGO_PKG_VERSION"),
                crate::storage::migrations::SCHEMA_VERSION
            );
            ExitCode::SUCCESS
        }
        Command::Manpages { out } => match write_manpages(&out) {
            Ok(count) => {
                println!("wrote {count} manual pages to {}", out.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(&format!(
                "cannot write the manual pages to {}: {e}",
                out.display()
            )),
        },
        command => {
            let loaded = match config::load(&overrides) {
                Ok(loaded) => loaded,
                Err(message) => return fail(&format!("configuration error: {message}")),
            };
            match command {
                Command::Serve { .. } => serve(loaded),
                other => {
                    crate::telemetry::init_cli();
                    match run_tool(other, &loaded) {
                        Ok(code) => code,
                        Err(message) => fail(&message),
                    }
                }
            }
        }
    }
}

/// `allhands.1`, then `allhands-<command>.1` for every command and nested command, as packages
/// install them under /usr/share/man/man1.
fn write_manpages(dir: &Path) -> std::io::Result<usize> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir)?;
    let mut command = Cli::command();
    command.build();
    let mut pages = vec![(String::from("allhands"), command.clone())];
    let documented = |parent: &str, c: &clap::Command| {
        (!c.is_hide_set() && c.get_name() != "help")
            .then(|| (format!("{parent}-{}", c.get_name()), c.clone()))
    };
    let mut stack: Vec<(String, clap::Command)> = command
        .get_subcommands()
        .filter_map(|c| documented("allhands", c))
        .collect();
    while let Some((name, sub)) = stack.pop() {
        stack.extend(sub.get_subcommands().filter_map(|c| documented(&name, c)));
        pages.push((name, sub));
    }
    for (name, page) in &pages {
        let page = page
            .clone()
            .name(name.clone())
            .version(env!("CARGO_PKG_VERSION"));
        let mut rendered = Vec::new();
        clap_mangen::Man::new(page).render(&mut rendered)?;
        std::fs::write(dir.join(format!("{name}.1")), rendered)?;
    }
    Ok(pages.len())
}

fn fail(message: &str) -> ExitCode {
    eprintln!("allhands: {message}");
    ExitCode::FAILURE
}

fn serve(loaded: LoadedConfig) -> ExitCode {
    let _guard = match crate::telemetry::init_server(&loaded.config) {
        Ok(guard) => guard,
        Err(message) => return fail(&message),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("allhands")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    let result = runtime.block_on(async {
        let running = crate::server::start(loaded, Arc::new(crate::clock::SystemClock)).await?;
        running.wait_for_signals().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "the server could not run");
            fail(&format!("{e:#}"))
        }
    }
}

fn run_tool(command: Command, loaded: &LoadedConfig) -> Result<ExitCode, String> {
    let data_dir = loaded.config.storage.data_dir.clone();
    match command {
        Command::Config(ConfigCommand::Check) => {
            match &loaded.source {
                config::ConfigSource::File(path) => {
                    println!("configuration OK (from {})", path.display())
                }
                config::ConfigSource::Defaults => {
                    println!("configuration OK (built-in defaults; no config file)")
                }
            }
            println!("data directory: {}", data_dir.display());
            println!(
                "listen: {} (TLS: {:?})",
                loaded.config.server.listen, loaded.config.tls.mode
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { to, to_dir, keep } => match (to, to_dir) {
            (Some(to), _) => backup(&data_dir, loaded, &to),
            (None, Some(dir)) => {
                let name = chrono::Utc::now().format("allhands-%Y%m%dT%H%M%SZ.backup");
                let code = backup(&data_dir, loaded, &dir.join(name.to_string()))?;
                prune_backups(&dir, keep)?;
                Ok(code)
            }
            (None, None) => Err("say where: --to FILE or --to-dir DIR".into()),
        },
        Command::Restore { from } => restore(&data_dir, loaded, &from),
        Command::Db(DbCommand::Verify) => verify(&data_dir, loaded, false),
        Command::Audit(AuditCommand::Verify) => verify(&data_dir, loaded, true),
        Command::Healthcheck { timeout } => healthcheck(loaded, timeout),
        Command::Admin(admin) => admin_command(admin, loaded),
        Command::Serve { .. }
        | Command::Version
        | Command::Eval { .. }
        | Command::Manpages { .. }
        | Command::Config(ConfigCommand::Example { .. }) => {
            unreachable!("handled before")
        }
    }
}

/// Deletes all but the newest `keep` `allhands-*.backup` files that `--to-dir` wrote in `dir`.
fn prune_backups(dir: &Path, keep: usize) -> Result<(), String> {
    if keep == 0 {
        return Ok(());
    }
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("allhands-") && name.ends_with(".backup"))
        .collect();
    names.sort();
    let excess = names.len().saturating_sub(keep);
    for name in &names[..excess] {
        std::fs::remove_file(dir.join(name))
            .map_err(|e| format!("cannot delete the old backup {name}: {e}"))?;
        println!("deleted the old backup {}", dir.join(name).display());
    }
    Ok(())
}

/// Opens the store for an offline command, or explains that the server is running.
fn open_offline(data_dir: &Path, loaded: &LoadedConfig) -> Result<(DataDirLock, Store), String> {
    let lock = DataDirLock::acquire(data_dir).map_err(|e| {
        format!(
            "{} (this command needs the server stopped, e.g. `systemctl stop allhands`)",
            e.message
        )
    })?;
    let store = Store::open(
        &lock,
        &loaded.config.storage,
        crate::channels::replay_logged,
    )
    .map_err(|e| e.detail.unwrap_or(e.message))?;
    Ok((lock, store))
}

fn backup(data_dir: &Path, loaded: &LoadedConfig, to: &Path) -> Result<ExitCode, String> {
    let partial = to.with_extension("partial");
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(|e| format!("cannot write {}: {e}", partial.display()))?
    };
    let mut writer = std::io::BufWriter::new(file);
    match crate::control::request(data_dir, "BACKUP", &mut writer)? {
        Some(bytes) => {
            writer.flush().map_err(|e| e.to_string())?;
            writer.get_ref().sync_all().map_err(|e| e.to_string())?;
            drop(writer);
            std::fs::rename(&partial, to).map_err(|e| e.to_string())?;
            println!(
                "backup written to {} ({bytes} bytes) by the running server",
                to.display()
            );
        }
        None => {
            drop(writer);
            let _ = std::fs::remove_file(&partial);
            let (_lock, store) = open_offline(data_dir, loaded)?;
            let db = store.database().map_err(|e| e.message)?;
            let files: Vec<(String, Vec<u8>)> = crate::ops::BACKED_UP_FILES
                .iter()
                .filter_map(|name| {
                    std::fs::read(data_dir.join(name))
                        .ok()
                        .map(|b| (name.to_string(), b))
                })
                .collect();
            let summary = crate::storage::backup::write_backup(&db, &files, to)
                .map_err(|e| e.detail.unwrap_or(e.message))?;
            drop(db);
            let details = json!({ "file": to.display().to_string(), "rows": summary.rows, "bytes": summary.bytes, "offline": true });
            store
                .write_blocking(move |txn| {
                    audit::append(
                        txn,
                        chrono::Utc::now().timestamp_millis(),
                        AuditEvent::new(&cli_actor(), "system.backup").details(details.clone()),
                    )
                })
                .map_err(|e| e.message)?;
            store.shutdown();
            println!(
                "backup written to {} ({} rows, {} bytes)",
                to.display(),
                summary.rows,
                summary.bytes
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cli_actor() -> Actor {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_default();
    Actor {
        source: "command line".into(),
        ..Actor::system(&format!("allhands command line ({user})"))
    }
}

fn restore(data_dir: &Path, loaded: &LoadedConfig, from: &Path) -> Result<ExitCode, String> {
    let lock = DataDirLock::acquire(data_dir)
        .map_err(|e| format!("{} (stop the server before restoring)", e.message))?;
    let pending_log = std::fs::metadata(data_dir.join(crate::storage::wal::LOG_FILE))
        .is_ok_and(|log| log.len() > 0);
    if pending_log && data_dir.join(crate::storage::DB_FILE).exists() {
        // The store being replaced is kept beside the restored one: first let it take in what
        // its inbound log holds (after a crash), so that it is whole without its log. A store
        // too damaged to open is restored over all the same; its log is kept beside it.
        match Store::open(
            &lock,
            &loaded.config.storage,
            crate::channels::replay_logged,
        ) {
            Ok(store) => store.shutdown(),
            Err(e) => eprintln!(
                "allhands: the current store cannot be opened ({}); restoring over it",
                e.detail.unwrap_or(e.message)
            ),
        }
    }
    let summary =
        crate::storage::backup::restore_backup(from, data_dir, crate::ops::BACKED_UP_FILES)
            .map_err(|e| e.detail.unwrap_or(e.message))?;
    let store = Store::open(
        &lock,
        &loaded.config.storage,
        crate::channels::replay_logged,
    )
    .map_err(|e| e.detail.unwrap_or(e.message))?;
    let details = json!({ "from": from.display().to_string(), "rows": summary.rows, "previous_store": summary.previous_store_kept_as });
    store
        .write_blocking(move |txn| {
            audit::append(
                txn,
                chrono::Utc::now().timestamp_millis(),
                AuditEvent::new(&cli_actor(), "system.restored").details(details.clone()),
            )
        })
        .map_err(|e| e.message)?;
    store.shutdown();
    println!("restored {} rows from {}", summary.rows, from.display());
    if let Some(kept) = summary.previous_store_kept_as {
        println!("the previous store was kept as {kept}");
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(data_dir: &Path, loaded: &LoadedConfig, audit_only: bool) -> Result<ExitCode, String> {
    let mut online = Vec::new();
    let report: crate::ops::FullReport =
        match crate::control::request(data_dir, "VERIFY", &mut online)? {
            Some(_) => {
                let value: serde_json::Value =
                    serde_json::from_slice(&online).map_err(|e| e.to_string())?;
                return print_verify_json(&value, audit_only);
            }
            None => {
                let lock = DataDirLock::acquire(data_dir).map_err(|e| e.message)?;
                let path = data_dir.join(crate::storage::DB_FILE);
                if !path.exists() {
                    return Err(format!("there is no store in {}", data_dir.display()));
                }
                // Offline, redb can also check its page checksums (needs exclusive access).
                let integrity = {
                    let mut db =
                        crate::storage::open_database(&path, loaded.config.storage.cache_mib << 20)
                            .map_err(|e| e.message)?;
                    db.check_integrity()
                        .map_err(|e| format!("integrity check failed: {e}"))?
                };
                let store = Store::open(
                    &lock,
                    &loaded.config.storage,
                    crate::channels::replay_logged,
                )
                .map_err(|e| e.detail.unwrap_or(e.message))?;
                let report = crate::ops::verify_store(&store, integrity)
                    .map_err(|e| e.detail.unwrap_or(e.message))?;
                store.shutdown();
                report
            }
        };
    let value = serde_json::to_value(&report).map_err(|e| e.to_string())?;
    print_verify_json(&value, audit_only)
}

fn print_verify_json(report: &serde_json::Value, audit_only: bool) -> Result<ExitCode, String> {
    let mut ok = true;
    if !audit_only {
        let store = &report["store"];
        println!("store schema version {}", store["schema_version"]);
        for table in store["tables"].as_array().into_iter().flatten() {
            println!(
                "  {:<34} {:>10} rows",
                table["table"].as_str().unwrap_or(""),
                table["rows"]
            );
        }
        for problem in store["problems"].as_array().into_iter().flatten() {
            ok = false;
            println!("PROBLEM: {}", problem.as_str().unwrap_or(""));
        }
        if report["integrity_checked"] == json!(true) {
            println!("page checksums: OK");
        }
    }
    let audit = &report["audit"];
    if audit["ok"] == json!(true) {
        println!(
            "audit chain: OK ({} entries checked)",
            audit["entries_checked"]
        );
    } else {
        ok = false;
        let problem = &audit["first_problem"];
        println!(
            "audit chain: BROKEN at entry {}: {}",
            problem["seq"],
            problem["problem"].as_str().unwrap_or("")
        );
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn healthcheck(loaded: &LoadedConfig, timeout: u64) -> Result<ExitCode, String> {
    let configured = loaded.config.server.listen;
    let recorded = std::fs::read_to_string(
        loaded
            .config
            .storage
            .data_dir
            .join(crate::server::ADDRESS_FILE),
    )
    .ok()
    .and_then(|s| s.trim().parse::<SocketAddr>().ok());
    // The running server records the address it bound; it wins over the configured one.
    let mut address = match recorded {
        Some(address) => address,
        None if configured.port() == 0 => {
            return Err("the server has not recorded its address; is it running?".into());
        }
        None => configured,
    };
    if address.ip().is_unspecified() {
        address.set_ip(if address.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let tls = loaded.config.tls.mode != config::TlsMode::OffBehindProxy;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let status = runtime.block_on(async {
        tokio::time::timeout(
            std::time::Duration::from_secs(timeout),
            crate::healthcheck::get_status(address, tls, "/healthz"),
        )
        .await
    });
    match status {
        Ok(Ok(200)) => {
            println!("healthy: {address} answered 200");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Ok(code)) => Err(format!("{address} answered {code}")),
        Ok(Err(e)) => Err(format!("{address} did not answer: {e}")),
        Err(_) => Err(format!("{address} did not answer within {timeout} s")),
    }
}

fn read_password_stdin() -> Result<String, String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

fn admin_command(command: AdminCommand, loaded: &LoadedConfig) -> Result<ExitCode, String> {
    let data_dir = loaded.config.storage.data_dir.clone();
    let hashing = crate::auth::password::PasswordHashing::new(&loaded.config.auth)
        .map_err(|e| e.detail.unwrap_or(e.message))?;
    let (_lock, store) = open_offline(&data_dir, loaded)?;
    let now = chrono::Utc::now().timestamp_millis();
    let result = match command {
        AdminCommand::CreateUser(args) => {
            let role = BUILTIN_ROLES
                .iter()
                .find(|r| r.key == args.role)
                .ok_or_else(|| {
                    format!(
                        "unknown role {:?}; one of: {}",
                        args.role,
                        BUILTIN_ROLES
                            .iter()
                            .map(|r| r.key)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
            let (password, shown) = if args.password_stdin {
                let p = read_password_stdin()?;
                hashing
                    .check_policy(&p, &args.username)
                    .map_err(|e| e.message)?;
                (p, false)
            } else {
                (org::generate_one_time_password(), true)
            };
            let hash = hashing.hash(&password).map_err(|e| e.message)?;
            let username = org::check_username(&args.username).map_err(|e| e.message)?;
            let display_name = args
                .display_name
                .clone()
                .unwrap_or_else(|| username.clone());
            let department_id = args.department_id;
            let role_id = role.id;
            let created = store
                .write_blocking(move |txn| {
                    let department = match department_id {
                        Some(d) => d,
                        None => {
                            let all: Vec<crate::org::Department> =
                                crate::storage::all_records(&txn.open_table(tables::DEPARTMENTS)?)?;
                            all.iter()
                                .find(|d| d.parent_id.is_none())
                                .map(|d| d.id)
                                .ok_or_else(|| {
                                    crate::error::AppError::field(
                                        "department_id",
                                        "no department exists yet; start the server once first",
                                    )
                                })?
                        }
                    };
                    if txn
                        .open_table(tables::DEPARTMENTS)?
                        .get(department)?
                        .is_none()
                    {
                        return Err(crate::error::AppError::field(
                            "department_id",
                            format!("department {department} does not exist"),
                        ));
                    }
                    let employee = org::insert_employee(
                        txn,
                        Employee {
                            id: 0,
                            username: username.clone(),
                            display_name: display_name.clone(),
                            email: None,
                            department_id: department,
                            position_id: None,
                            language: Language::English,
                            time_zone: "UTC".into(),
                            location: String::new(),
                            password_hash: hash.clone(),
                            must_change_password: true,
                            disabled: false,
                            created_at: now,
                            updated_at: now,
                            password_changed_at: now,
                            last_login_at: None,
                        },
                    )?;
                    let grant = Grant {
                        id: next_id(txn, "grant")?,
                        role_id,
                        subject: GrantSubject::Employee {
                            employee_id: employee.id,
                        },
                        scope_department_id: None,
                        created_at: now,
                    };
                    txn.open_table(tables::ROLE_GRANTS)?
                        .insert(grant.id, codec::encode(&grant).as_slice())?;
                    audit::append(
                        txn,
                        now,
                        AuditEvent::new(&cli_actor(), "employee.created")
                            .target(format!("employee:{}", employee.id))
                            .details(
                                json!({ "username": employee.username, "via": "command line" }),
                            ),
                    )?;
                    audit::append(
                        txn,
                        now,
                        AuditEvent::new(&cli_actor(), "role.granted")
                            .target(format!("grant:{}", grant.id))
                            .details(json!({ "role_id": role_id, "subject": grant.subject })),
                    )?;
                    Ok(employee)
                })
                .map_err(|e| e.message)?;
            println!(
                "created {} (employee {}) with the role {}",
                created.username,
                created.id,
                rbac::builtin_role(role_id).map(|r| r.key).unwrap_or("")
            );
            if shown {
                println!("one-time password: {password}");
            }
            println!("the password must be changed at first sign-in");
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::ResetPassword {
            username,
            password_stdin,
        } => {
            let (password, shown) = if password_stdin {
                let p = read_password_stdin()?;
                hashing.check_policy(&p, &username).map_err(|e| e.message)?;
                (p, false)
            } else {
                (org::generate_one_time_password(), true)
            };
            let hash = hashing.hash(&password).map_err(|e| e.message)?;
            let name = username.trim().to_lowercase();
            let ended = store
                .write_blocking(move |txn| {
                    let id = txn.open_table(tables::USERNAME_EMPLOYEE)?.get(name.as_str())?.map(|v| v.value()).ok_or_else(|| crate::error::AppError::not_found("employee"))?;
                    let mut e = org::load_employee(txn, id)?;
                    e.password_hash = hash.clone();
                    e.must_change_password = true;
                    // This is the way back in for a locked-out account, so it also re-enables it.
                    let re_enabled = std::mem::replace(&mut e.disabled, false);
                    e.password_changed_at = now;
                    e.updated_at = now;
                    org::save_employee(txn, &e)?;
                    let ended = crate::auth::session::remove_all_for(txn, id)?;
                    audit::append(txn, now, AuditEvent::new(&cli_actor(), "employee.password_reset").target(format!("employee:{id}")).details(json!({ "username": e.username, "sessions_ended": ended, "re_enabled": re_enabled, "via": "command line" })))?;
                    Ok((ended, re_enabled))
                })
                .map_err(|e| e.message)?;
            let (ended, re_enabled) = ended;
            println!("password reset for {username}; {ended} sessions ended");
            if re_enabled {
                println!("the account was disabled and is enabled again");
            }
            if shown {
                println!("one-time password: {password}");
            }
            Ok(ExitCode::SUCCESS)
        }
    };
    store.shutdown();
    result
}

fn run_eval(knowledge: &Path, emotion: &Path) -> ExitCode {
    let runs = crate::knowledge::eval::run(knowledge).and_then(|one| {
        crate::knowledge::eval::run_more_learned(knowledge).map(|three| (one, three))
    });
    let (one, three) = match runs {
        Ok(scores) => scores,
        Err(e) => {
            eprintln!(
                "knowledge evaluation: {}",
                e.detail.as_deref().unwrap_or(&e.message)
            );
            return ExitCode::FAILURE;
        }
    };
    for (heading, search) in [
        ("held-out questions, one question learned per article", &one),
        (
            "held-out questions, three learned per article (train and dev)",
            &three,
        ),
    ] {
        println!("knowledge search, {heading} ({}):", knowledge.display());
        for s in search {
            println!("  {s}");
        }
    }
    match crate::assist::emotion::evaluate(emotion) {
        Ok(scores) => {
            println!(
                "emotion and rudeness, held-out sets ({}):",
                emotion.display()
            );
            for s in scores {
                println!(
                    "  {} {:>5}: {} messages  precision {:.3}  recall {:.3}  accuracy {:.3}",
                    s.lang.as_str(),
                    s.label,
                    s.examples,
                    s.precision,
                    s.recall,
                    s.accuracy
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("emotion evaluation: {e}");
            ExitCode::FAILURE
        }
    }
}
