//! Sign-in, sessions, passwords, roles, grants and API tokens.

use std::sync::Arc;

use redb::{ReadableTable, ReadableTableMetadata};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, Actor, AuditEvent};
use crate::auth::rbac::{
    self, AccessIndex, BUILTIN_ROLES, CustomRole, Grant, GrantSubject, Holder, Permission,
};
use crate::auth::tokens::{self, ApiToken};
use crate::auth::{Caller, Credential, session, sha256};
use crate::config::load::Secret;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::org::service::{self as org, optional_text, required_text};
use crate::org::{Department, Employee, EmployeeView, Language, Position};
use crate::state::Core;
use crate::storage::{
    WriteTxn, all_records, codec, get_record, meta_get, meta_set, next_id, tables,
};

/// A session's last-seen time is written at most this often.
const TOUCH_EVERY_MS: i64 = 60_000;
const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

fn employee_actor(e: &Employee, source: &str, token_id: Option<u64>) -> Actor {
    Actor {
        kind: if token_id.is_some() {
            "api_token"
        } else {
            "employee"
        }
        .into(),
        employee_id: Some(e.id),
        name: e.username.clone(),
        token_id,
        source: source.to_string(),
    }
}

fn caller_for(
    employee: &Employee,
    index: Arc<AccessIndex>,
    credential: Credential,
    source: &str,
    scopes: Option<&[Permission]>,
) -> Caller {
    let holder = Holder {
        employee_id: employee.id,
        department_id: employee.department_id,
        position_id: employee.position_id,
    };
    let mut access = index.access_for(&holder);
    let token_id = match &credential {
        Credential::ApiToken { token_id } => Some(*token_id),
        Credential::Session { .. } => None,
    };
    match scopes {
        Some(scopes) => access = access.restricted_to(scopes),
        // Whatever their roles, people may sign in and look after their own account.
        None => access.grant_everywhere(Permission::AccountSelf),
    }
    Caller {
        employee_id: employee.id,
        username: employee.username.clone(),
        department_id: employee.department_id,
        must_change_password: employee.must_change_password,
        credential,
        access,
        index,
        actor: employee_actor(employee, source, token_id),
    }
}

// ---------------------------------------------------------------- bootstrap

/// On a store without employees: creates the top department, an "Administrator" position and
/// the first administrator, whose password must be changed at first login. Returns the password
/// when the server generated it (to be shown once).
pub async fn bootstrap(core: &Core, admin_password: Option<&Secret>) -> AppResult<Option<String>> {
    if core.store.read(org::employee_count).await? > 0 {
        return Ok(None);
    }
    let (password, generated) = match admin_password {
        Some(Secret(p)) => {
            core.hashing.check_policy(p, "admin").map_err(|e| {
                AppError::new(
                    ErrorCode::WeakPassword,
                    format!("ALLHANDS_ADMIN_PASSWORD is refused: {}", e.message),
                )
            })?;
            (p.clone(), false)
        }
        None => {
            let p = org::generate_one_time_password();
            (p.clone(), true)
        }
    };
    let hash = core.hashing.hash_async(password.clone()).await?;
    let now = core.now();
    let created = core
        .store
        .write(move |txn| {
            if txn.open_table(tables::EMPLOYEES)?.len()? > 0 {
                return Ok(false);
            }
            let department = Department {
                id: next_id(txn, "department")?,
                name: "Headquarters".into(),
                parent_id: None,
                description: String::new(),
                created_at: now,
                updated_at: now,
            };
            txn.open_table(tables::DEPARTMENTS)?.insert(department.id, codec::encode(&department).as_slice())?;
            let position = Position { id: next_id(txn, "position")?, name: "Administrator".into(), description: String::new(), created_at: now, updated_at: now };
            txn.open_table(tables::POSITIONS)?.insert(position.id, codec::encode(&position).as_slice())?;
            let admin = org::insert_employee(
                txn,
                Employee {
                    id: 0,
                    username: "admin".into(),
                    display_name: "Administrator".into(),
                    email: None,
                    department_id: department.id,
                    position_id: Some(position.id),
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
                role_id: rbac::ADMINISTRATOR.id,
                subject: GrantSubject::Employee { employee_id: admin.id },
                scope_department_id: None,
                created_at: now,
            };
            txn.open_table(tables::ROLE_GRANTS)?.insert(grant.id, codec::encode(&grant).as_slice())?;
            meta_set(txn, "bootstrap_admin_id", admin.id.to_string().as_bytes())?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&Actor::system("first start"), "system.bootstrapped")
                    .target(format!("employee:{}", admin.id))
                    .details(json!({ "username": "admin", "department": department.name, "role": "administrator" })),
            )?;
            Ok(true)
        })
        .await?;
    core.reload_access().await?;
    if created && generated {
        crate::storage::write_private_file(
            &core.data_dir.join(INITIAL_PASSWORD_FILE),
            format!("{password}\n").as_bytes(),
        )?;
        Ok(Some(password))
    } else {
        Ok(None)
    }
}

// ---------------------------------------------------------------- authentication

pub async fn authenticate_session(
    core: &Core,
    cookie: &str,
    source: &str,
) -> AppResult<(Caller, String)> {
    let hash = sha256(cookie.as_bytes());
    let idle_ms = core.config.auth.session_idle_minutes as i64 * 60_000;
    let now = core.now();
    let (session, employee) = core
        .store
        .read(move |txn| {
            let Some(session) = session::find(txn, &hash)? else {
                return Ok(None);
            };
            let employee =
                get_record::<Employee>(&txn.open_table(tables::EMPLOYEES)?, session.employee_id)?;
            Ok(employee.map(|e| (session, e)))
        })
        .await?
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::SessionExpired,
                "the session has ended; sign in again",
            )
        })?;
    if !session.is_live(now, idle_ms) {
        return Err(AppError::new(
            ErrorCode::SessionExpired,
            "the session has expired; sign in again",
        ));
    }
    if employee.disabled {
        return Err(AppError::new(
            ErrorCode::AccountDisabled,
            "the account is disabled",
        ));
    }
    if now - session.last_seen_at > TOUCH_EVERY_MS {
        let store = core.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store
                .write(move |txn| session::touch(txn, &hash, now))
                .await
            {
                tracing::warn!(error = %e, "could not record session activity");
            }
        });
    }
    let caller = caller_for(
        &employee,
        core.access(),
        Credential::Session { session_hash: hash },
        source,
        None,
    );
    Ok((caller, session.csrf_token))
}

/// The caller as they are now, if their credential still holds (session not ended or expired,
/// token not revoked, account enabled), with access recomputed from today's grants. Long-lived
/// connections call this periodically. Activity on a WebSocket does not itself extend a
/// session: the console's requests do.
pub async fn refreshed(core: &Core, caller: &Caller) -> Option<Caller> {
    let idle_ms = core.config.auth.session_idle_minutes as i64 * 60_000;
    let now = core.now();
    let credential = caller.credential.clone();
    let employee_id = caller.employee_id;
    let source = caller.actor.source.clone();
    let checked = credential.clone();
    let found = core
        .store
        .read(move |txn| {
            let employee =
                get_record::<Employee>(&txn.open_table(tables::EMPLOYEES)?, employee_id)?;
            let Some(employee) = employee.filter(|e| !e.disabled) else {
                return Ok(None);
            };
            let scopes = match checked {
                Credential::Session { session_hash } => {
                    if !session::find(txn, &session_hash)?.is_some_and(|s| s.is_live(now, idle_ms))
                    {
                        return Ok(None);
                    }
                    None
                }
                Credential::ApiToken { token_id } => match tokens::get(txn, token_id)? {
                    Some(t) if t.is_usable(now) => Some(t.scopes),
                    _ => return Ok(None),
                },
            };
            Ok(Some((employee, scopes)))
        })
        .await
        .ok()
        .flatten()?;
    let (employee, scopes) = found;
    Some(caller_for(
        &employee,
        core.access(),
        credential,
        &source,
        scopes.as_deref(),
    ))
}

pub async fn authenticate_token(core: &Core, secret: &str, source: &str) -> AppResult<Caller> {
    let secret = secret.to_string();
    let now = core.now();
    let (token, employee) = core
        .store
        .read(move |txn| {
            let Some(token) = tokens::find_by_secret(txn, &secret)? else {
                return Ok(None);
            };
            let employee =
                get_record::<Employee>(&txn.open_table(tables::EMPLOYEES)?, token.owner_id)?;
            Ok(employee.map(|e| (token, e)))
        })
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::Unauthenticated, "the API token is not valid"))?;
    if !token.is_usable(now) {
        return Err(AppError::new(
            ErrorCode::Unauthenticated,
            "the API token has expired or was revoked",
        ));
    }
    if employee.disabled {
        return Err(AppError::new(
            ErrorCode::AccountDisabled,
            "the API token's owner is disabled",
        ));
    }
    if token.last_used_at.is_none_or(|t| now - t > TOUCH_EVERY_MS) {
        let store = core.store.clone();
        let id = token.id;
        tokio::spawn(async move {
            let _ = store
                .write(move |txn| tokens::update(txn, id, |t| t.last_used_at = Some(now)))
                .await;
        });
    }
    let mut caller = caller_for(
        &employee,
        core.access(),
        Credential::ApiToken { token_id: token.id },
        source,
        Some(&token.scopes),
    );
    // A token is for integrations: it never carries the forced password change of its owner.
    caller.must_change_password = false;
    Ok(caller)
}

// ---------------------------------------------------------------- login and logout

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SessionInfo {
    pub employee: EmployeeView,
    pub csrf_token: String,
    pub must_change_password: bool,
    pub permissions: Vec<String>,
    /// For permissions limited to department subtrees: permission -> department ids. Permissions
    /// not listed here apply everywhere.
    pub scoped_permissions: std::collections::BTreeMap<String, Vec<u64>>,
}

pub struct LoginOutcome {
    pub cookie: String,
    pub info: SessionInfo,
}

pub async fn login(
    core: &Core,
    request: LoginRequest,
    source: &str,
    user_agent: &str,
) -> AppResult<LoginOutcome> {
    let username = request.username.trim().to_lowercase();
    if username.is_empty() || username.len() > 64 {
        return Err(AppError::field("username", "must be 1 to 64 characters"));
    }
    if request.password.len() > 1024 {
        return Err(AppError::field("password", "must be at most 1024 bytes"));
    }
    let now = core.now();
    if let Some(wait) = core.throttle.check(&username, source, now) {
        // Refused before any password check; the failures that led here were each audited.
        tracing::warn!(username = %username, source, "login refused: throttled");
        return Err(AppError::throttled(wait));
    }
    let lookup = username.clone();
    let employee = core
        .store
        .read(move |txn| org::employee_by_username(txn, &lookup))
        .await?;
    let ok = core
        .hashing
        .verify_async(
            request.password.clone(),
            employee.as_ref().map(|e| e.password_hash.clone()),
        )
        .await;
    let employee = match (ok, employee) {
        (true, Some(e)) => e,
        _ => {
            core.throttle.record_failure(&username, source, now);
            record_failed_login(core, &username, source, "wrong user name or password").await;
            return Err(AppError::new(
                ErrorCode::InvalidCredentials,
                "the user name or password is wrong",
            ));
        }
    };
    if employee.disabled {
        record_failed_login(core, &username, source, "account disabled").await;
        return Err(AppError::new(
            ErrorCode::AccountDisabled,
            "the account is disabled",
        ));
    }
    core.throttle.record_success(&username);
    let rehash = if core.hashing.needs_rehash(&employee.password_hash) {
        Some(core.hashing.hash_async(request.password).await?)
    } else {
        None
    };
    let max_ms = core.config.auth.session_max_hours as i64 * 3_600_000;
    let (cookie, hash, new_session) =
        session::new_session(employee.id, now, max_ms, source, user_agent);
    let csrf_token = new_session.csrf_token.clone();
    let actor = employee_actor(&employee, source, None);
    let id = employee.id;
    let employee = core
        .store
        .write(move |txn| {
            let mut e = org::load_employee(txn, id)?;
            e.last_login_at = Some(now);
            if let Some(h) = &rehash {
                e.password_hash = h.clone();
            }
            org::save_employee(txn, &e)?;
            session::store_session(txn, &hash, &new_session)?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "auth.login").target(format!("employee:{id}")),
            )?;
            Ok(e)
        })
        .await?;
    let caller = caller_for(
        &employee,
        core.access(),
        Credential::Session { session_hash: hash },
        source,
        None,
    );
    Ok(LoginOutcome {
        cookie,
        info: session_info(&employee, &caller, csrf_token),
    })
}

async fn record_failed_login(core: &Core, username: &str, source: &str, reason: &'static str) {
    let now = core.now();
    let actor = Actor::anonymous(username, source);
    let result = core
        .store
        .write(move |txn| {
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "auth.login")
                    .failed()
                    .details(json!({ "reason": reason })),
            )?;
            Ok(())
        })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "could not audit a failed login");
    }
}

pub fn session_info(employee: &Employee, caller: &Caller, csrf_token: String) -> SessionInfo {
    SessionInfo {
        employee: EmployeeView::from(employee),
        csrf_token,
        must_change_password: employee.must_change_password,
        permissions: caller
            .access
            .names()
            .into_iter()
            .map(str::to_string)
            .collect(),
        scoped_permissions: caller
            .access
            .permissions
            .iter()
            .filter_map(|(p, scope)| match scope {
                rbac::Scope::Everywhere => None,
                rbac::Scope::Departments(d) => {
                    Some((p.as_str().to_string(), d.iter().copied().collect()))
                }
            })
            .collect(),
    }
}

pub async fn current_session(
    core: &Core,
    caller: &Caller,
    csrf_token: String,
) -> AppResult<SessionInfo> {
    let id = caller.employee_id;
    let employee = core.store.read(move |txn| org::employee(txn, id)).await?;
    Ok(session_info(&employee, caller, csrf_token))
}

pub async fn logout(core: &Core, caller: &Caller) -> AppResult<()> {
    let Credential::Session { session_hash } = caller.credential else {
        return Err(AppError::field(
            "credential",
            "an API token cannot log out; revoke it instead",
        ));
    };
    let now = core.now();
    let actor = caller.actor.clone();
    core.store
        .write(move |txn| {
            session::remove(txn, &session_hash)?;
            audit::append(txn, now, AuditEvent::new(&actor, "auth.logout"))?;
            Ok(())
        })
        .await
}

pub async fn logout_everywhere(core: &Core, caller: &Caller) -> AppResult<u64> {
    let now = core.now();
    let actor = caller.actor.clone();
    let id = caller.employee_id;
    core.store
        .write(move |txn| {
            let ended = session::remove_all_for(txn, id)?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "auth.logout_everywhere")
                    .details(json!({ "sessions_ended": ended })),
            )?;
            Ok(ended)
        })
        .await
}

// ---------------------------------------------------------------- own account

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

pub async fn change_password(
    core: &Core,
    caller: &Caller,
    change: PasswordChange,
) -> AppResult<()> {
    let id = caller.employee_id;
    let employee = core.store.read(move |txn| org::employee(txn, id)).await?;
    let now = core.now();
    if let Some(wait) = core
        .throttle
        .check(&employee.username, &caller.actor.source, now)
    {
        return Err(AppError::throttled(wait));
    }
    if !core
        .hashing
        .verify_async(
            change.current_password.clone(),
            Some(employee.password_hash.clone()),
        )
        .await
    {
        core.throttle
            .record_failure(&employee.username, &caller.actor.source, now);
        return Err(AppError::field("current_password", "is wrong"));
    }
    if change.new_password == change.current_password {
        return Err(AppError::new(
            ErrorCode::WeakPassword,
            "the new password must differ from the current one",
        ));
    }
    core.hashing
        .check_policy(&change.new_password, &employee.username)?;
    let hash = core.hashing.hash_async(change.new_password).await?;
    let actor = caller.actor.clone();
    let keep = match caller.credential {
        Credential::Session { session_hash } => Some(session_hash),
        Credential::ApiToken { .. } => None,
    };
    let was_bootstrap_admin = core
        .store
        .write(move |txn| {
            let mut e = org::load_employee(txn, id)?;
            e.password_hash = hash.clone();
            e.must_change_password = false;
            e.password_changed_at = now;
            e.updated_at = now;
            org::save_employee(txn, &e)?;
            // Other sessions end; the one that changed the password stays signed in.
            let kept = match keep {
                Some(hash) => session::find_in_write(txn, &hash)?,
                None => None,
            };
            let ended = session::remove_all_for(txn, id)?;
            if let (Some(hash), Some(s)) = (keep, kept) {
                session::store_session(txn, &hash, &s)?;
            }
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "auth.password_changed")
                    .target(format!("employee:{id}"))
                    .details(json!({ "other_sessions_ended": ended.saturating_sub(1) })),
            )?;
            let bootstrap = crate::storage::meta_get_in_write(txn, "bootstrap_admin_id")?;
            Ok(bootstrap.as_deref() == Some(id.to_string().as_bytes()))
        })
        .await?;
    if was_bootstrap_admin {
        let _ = std::fs::remove_file(core.data_dir.join(INITIAL_PASSWORD_FILE));
    }
    Ok(())
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    pub display_name: Option<String>,
    pub language: Option<Language>,
    pub time_zone: Option<String>,
}

pub async fn update_profile(
    core: &Core,
    caller: &Caller,
    patch: ProfilePatch,
) -> AppResult<EmployeeView> {
    let display_name = patch
        .display_name
        .as_deref()
        .map(|n| required_text("display_name", n, 100))
        .transpose()?;
    let time_zone = match patch.time_zone.as_deref() {
        Some(tz) => Some(
            tz.parse::<chrono_tz::Tz>()
                .map(|t| t.name().to_string())
                .map_err(|_| {
                    AppError::field("time_zone", format!("{tz:?} is not an IANA time zone"))
                })?,
        ),
        None => None,
    };
    let now = core.now();
    let id = caller.employee_id;
    let actor = caller.actor.clone();
    core.store
        .write(move |txn| {
            let mut e = org::load_employee(txn, id)?;
            let before = EmployeeView::from(&e);
            if let Some(v) = &display_name {
                e.display_name = v.clone();
            }
            if let Some(v) = patch.language {
                e.language = v;
            }
            if let Some(v) = &time_zone {
                e.time_zone = v.clone();
            }
            e.updated_at = now;
            org::save_employee(txn, &e)?;
            let after = EmployeeView::from(&e);
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "account.profile_updated")
                    .target(format!("employee:{id}"))
                    .details(json!({ "changes": org::changed_fields(&before, &after) })),
            )?;
            Ok(after)
        })
        .await
}

// ---------------------------------------------------------------- roles

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RoleView {
    pub id: u64,
    /// The built-in role's stable key; absent for custom roles.
    pub key: Option<String>,
    pub name: String,
    pub name_zh: Option<String>,
    pub description: String,
    pub permissions: Vec<Permission>,
    pub builtin: bool,
}

pub fn roles(txn: &redb::ReadTransaction) -> AppResult<Vec<RoleView>> {
    let mut out: Vec<RoleView> = BUILTIN_ROLES
        .iter()
        .map(|r| RoleView {
            id: r.id,
            key: Some(r.key.into()),
            name: r.name_en.into(),
            name_zh: Some(r.name_zh.into()),
            description: r.about.into(),
            permissions: r.permissions.to_vec(),
            builtin: true,
        })
        .collect();
    let custom: Vec<CustomRole> = all_records(&txn.open_table(tables::ROLES)?)?;
    out.extend(custom.into_iter().map(|r| RoleView {
        id: r.id,
        key: None,
        name: r.name,
        name_zh: None,
        description: r.description,
        permissions: r.permissions,
        builtin: false,
    }));
    Ok(out)
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub permissions: Option<Vec<Permission>>,
}

fn check_can_hand_out(caller: &Caller, permissions: &[Permission]) -> AppResult<()> {
    if let Some(missing) = permissions
        .iter()
        .find(|p| !caller.access.is_everywhere(**p))
    {
        return Err(AppError::forbidden(format!(
            "you cannot hand out {}, which you do not hold organisation-wide",
            missing.as_str()
        )));
    }
    Ok(())
}

fn check_role_name(txn: &WriteTxn, name: &str, except: Option<u64>) -> AppResult<()> {
    let lower = name.to_lowercase();
    let builtin_clash = BUILTIN_ROLES
        .iter()
        .any(|r| r.name_en.to_lowercase() == lower || r.key == lower || r.name_zh == name);
    let custom: Vec<CustomRole> = all_records(&txn.open_table(tables::ROLES)?)?;
    if builtin_clash
        || custom
            .iter()
            .any(|r| Some(r.id) != except && r.name.to_lowercase() == lower)
    {
        return Err(AppError::conflict(format!(
            "a role named {name:?} already exists"
        )));
    }
    Ok(())
}

fn dedup(mut permissions: Vec<Permission>) -> Vec<Permission> {
    permissions.sort();
    permissions.dedup();
    permissions
}

pub async fn create_role(core: &Core, caller: &Caller, input: NewRole) -> AppResult<RoleView> {
    caller.require_everywhere(Permission::RolesManage)?;
    let name = required_text("name", &input.name, 100)?;
    let description = optional_text("description", &input.description, 2000)?;
    let permissions = dedup(input.permissions);
    check_can_hand_out(caller, &permissions)?;
    let now = core.now();
    let actor = caller.actor.clone();
    let role = core
        .store
        .write(move |txn| {
            check_role_name(txn, &name, None)?;
            let role = CustomRole {
                id: next_id(txn, "role")?,
                name: name.clone(),
                description: description.clone(),
                permissions: permissions.clone(),
                created_at: now,
                updated_at: now,
            };
            txn.open_table(tables::ROLES)?
                .insert(role.id, codec::encode(&role).as_slice())?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "role.created")
                    .target(format!("role:{}", role.id))
                    .details(json!({ "name": role.name, "permissions": role.permissions })),
            )?;
            Ok(role)
        })
        .await?;
    core.reload_access().await?;
    Ok(RoleView {
        id: role.id,
        key: None,
        name: role.name,
        name_zh: None,
        description: role.description,
        permissions: role.permissions,
        builtin: false,
    })
}

pub async fn update_role(
    core: &Core,
    caller: &Caller,
    id: u64,
    patch: RolePatch,
) -> AppResult<RoleView> {
    caller.require_everywhere(Permission::RolesManage)?;
    if rbac::builtin_role(id).is_some() {
        return Err(AppError::conflict(
            "built-in roles cannot be changed; create a custom role instead",
        ));
    }
    let name = patch
        .name
        .as_deref()
        .map(|n| required_text("name", n, 100))
        .transpose()?;
    let description = patch
        .description
        .as_deref()
        .map(|d| optional_text("description", d, 2000))
        .transpose()?;
    let permissions = patch.permissions.map(dedup);
    if let Some(p) = &permissions {
        check_can_hand_out(caller, p)?;
    }
    let now = core.now();
    let actor = caller.actor.clone();
    let role = core
        .store
        .write(move |txn| {
            let mut role: CustomRole = get_record(&txn.open_table(tables::ROLES)?, id)?
                .ok_or_else(|| AppError::not_found("role"))?;
            let before = role.clone();
            if let Some(n) = &name {
                check_role_name(txn, n, Some(id))?;
                role.name = n.clone();
            }
            if let Some(d) = &description {
                role.description = d.clone();
            }
            if let Some(p) = &permissions {
                role.permissions = p.clone();
            }
            role.updated_at = now;
            txn.open_table(tables::ROLES)?
                .insert(id, codec::encode(&role).as_slice())?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "role.updated")
                    .target(format!("role:{id}"))
                    .details(json!({
                        "before": { "name": before.name, "permissions": before.permissions },
                        "after": { "name": role.name, "permissions": role.permissions },
                    })),
            )?;
            Ok(role)
        })
        .await?;
    core.reload_access().await?;
    Ok(RoleView {
        id: role.id,
        key: None,
        name: role.name,
        name_zh: None,
        description: role.description,
        permissions: role.permissions,
        builtin: false,
    })
}

pub async fn delete_role(core: &Core, caller: &Caller, id: u64) -> AppResult<()> {
    caller.require_everywhere(Permission::RolesManage)?;
    if rbac::builtin_role(id).is_some() {
        return Err(AppError::conflict("built-in roles cannot be deleted"));
    }
    let now = core.now();
    let actor = caller.actor.clone();
    core.store
        .write(move |txn| {
            let role: CustomRole = get_record(&txn.open_table(tables::ROLES)?, id)?
                .ok_or_else(|| AppError::not_found("role"))?;
            let grants: Vec<Grant> = all_records(&txn.open_table(tables::ROLE_GRANTS)?)?;
            let holders = grants.iter().filter(|g| g.role_id == id).count();
            if holders > 0 {
                return Err(AppError::conflict(format!(
                    "the role is granted {holders} times; revoke those grants first"
                )));
            }
            txn.open_table(tables::ROLES)?.remove(id)?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "role.deleted")
                    .target(format!("role:{id}"))
                    .details(json!({ "name": role.name })),
            )?;
            Ok(())
        })
        .await?;
    core.reload_access().await
}

// ---------------------------------------------------------------- grants

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    pub role_id: u64,
    pub subject: GrantSubject,
    pub scope_department_id: Option<u64>,
}

pub fn grants(txn: &redb::ReadTransaction) -> AppResult<Vec<Grant>> {
    all_records(&txn.open_table(tables::ROLE_GRANTS)?)
}

pub async fn create_grant(core: &Core, caller: &Caller, input: NewGrant) -> AppResult<Grant> {
    caller.require_everywhere(Permission::RolesManage)?;
    let index = core.access();
    let permissions = index.role_permissions(input.role_id).ok_or_else(|| {
        AppError::field("role_id", format!("role {} does not exist", input.role_id))
    })?;
    check_can_hand_out(caller, &permissions)?;
    let now = core.now();
    let actor = caller.actor.clone();
    let grant = core
        .store
        .write(move |txn| {
            let exists = |table, id: u64| -> AppResult<bool> { Ok(txn.open_table::<u64, &[u8]>(table)?.get(id)?.is_some()) };
            match &input.subject {
                GrantSubject::Employee { employee_id } if !exists(tables::EMPLOYEES, *employee_id)? => {
                    return Err(AppError::field("subject.employee_id", format!("employee {employee_id} does not exist")));
                }
                GrantSubject::Department { department_id, .. } if !exists(tables::DEPARTMENTS, *department_id)? => {
                    return Err(AppError::field("subject.department_id", format!("department {department_id} does not exist")));
                }
                GrantSubject::Position { position_id } if !exists(tables::POSITIONS, *position_id)? => {
                    return Err(AppError::field("subject.position_id", format!("position {position_id} does not exist")));
                }
                _ => {}
            }
            if let Some(d) = input.scope_department_id
                && !exists(tables::DEPARTMENTS, d)?
            {
                return Err(AppError::field("scope_department_id", format!("department {d} does not exist")));
            }
            let existing: Vec<Grant> = all_records(&txn.open_table(tables::ROLE_GRANTS)?)?;
            if existing.iter().any(|g| g.role_id == input.role_id && g.subject == input.subject && g.scope_department_id == input.scope_department_id) {
                return Err(AppError::conflict("this role is already granted to this subject with this scope"));
            }
            let grant = Grant { id: next_id(txn, "grant")?, role_id: input.role_id, subject: input.subject.clone(), scope_department_id: input.scope_department_id, created_at: now };
            txn.open_table(tables::ROLE_GRANTS)?.insert(grant.id, codec::encode(&grant).as_slice())?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "role.granted")
                    .target(format!("grant:{}", grant.id))
                    .details(json!({ "role_id": grant.role_id, "subject": grant.subject, "scope_department_id": grant.scope_department_id })),
            )?;
            Ok(grant)
        })
        .await?;
    core.reload_access().await?;
    Ok(grant)
}

pub async fn delete_grant(core: &Core, caller: &Caller, id: u64) -> AppResult<()> {
    caller.require_everywhere(Permission::RolesManage)?;
    let now = core.now();
    let actor = caller.actor.clone();
    core.store
        .write(move |txn| {
            let all: Vec<Grant> = all_records(&txn.open_table(tables::ROLE_GRANTS)?)?;
            let grant = all.iter().find(|g| g.id == id).cloned().ok_or_else(|| AppError::not_found("role grant"))?;
            if grant.role_id == rbac::ADMINISTRATOR.id && grant.scope_department_id.is_none() {
                let others = all.iter().filter(|g| g.id != id && g.role_id == rbac::ADMINISTRATOR.id && g.scope_department_id.is_none()).count();
                if others == 0 {
                    return Err(AppError::conflict("this is the last organisation-wide administrator grant; grant the role to someone else first"));
                }
            }
            txn.open_table(tables::ROLE_GRANTS)?.remove(id)?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "role.revoked")
                    .target(format!("grant:{id}"))
                    .details(json!({ "role_id": grant.role_id, "subject": grant.subject, "scope_department_id": grant.scope_department_id })),
            )?;
            Ok(())
        })
        .await?;
    core.reload_access().await
}

// ---------------------------------------------------------------- API tokens

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiToken {
    pub name: String,
    pub scopes: Vec<Permission>,
    /// Lifetime in days; at most the configured maximum (default 366).
    pub expires_in_days: u64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IssuedApiToken {
    pub token: ApiToken,
    /// The secret, shown only this once. Send it as `Authorization: Bearer <secret>`.
    pub secret: String,
}

pub async fn issue_token(
    core: &Core,
    caller: &Caller,
    input: NewApiToken,
) -> AppResult<IssuedApiToken> {
    caller.require_everywhere(Permission::TokensManage)?;
    let name = required_text("name", &input.name, 100)?;
    if input.scopes.is_empty() {
        return Err(AppError::field(
            "scopes",
            "must name at least one permission",
        ));
    }
    let max_days = core.config.auth.api_token_max_days;
    if input.expires_in_days == 0 || input.expires_in_days > max_days {
        return Err(AppError::field(
            "expires_in_days",
            format!("must be between 1 and {max_days}"),
        ));
    }
    let scopes = dedup(input.scopes);
    if let Some(missing) = scopes.iter().find(|p| !caller.access.has(**p)) {
        return Err(AppError::forbidden(format!(
            "a token cannot carry {}, which you do not hold",
            missing.as_str()
        )));
    }
    let (secret, hash) = tokens::new_secret();
    let now = core.now();
    let actor = caller.actor.clone();
    let token = ApiToken {
        id: 0,
        name,
        owner_id: caller.employee_id,
        scopes,
        prefix: secret.chars().take(10).collect(),
        created_at: now,
        expires_at: now + input.expires_in_days as i64 * 86_400_000,
        revoked_at: None,
        last_used_at: None,
    };
    let token = core
        .store
        .write(move |txn| {
            let token = tokens::insert(txn, token.clone(), &hash)?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "token.issued")
                    .target(format!("api_token:{}", token.id))
                    .details(json!({ "name": token.name, "scopes": token.scopes, "expires_at": token.expires_at })),
            )?;
            Ok(token)
        })
        .await?;
    Ok(IssuedApiToken { token, secret })
}

pub async fn revoke_token(core: &Core, caller: &Caller, id: u64) -> AppResult<ApiToken> {
    caller.require_everywhere(Permission::TokensManage)?;
    let now = core.now();
    let actor = caller.actor.clone();
    core.store
        .write(move |txn| {
            let token = tokens::update(txn, id, |t| {
                if t.revoked_at.is_none() {
                    t.revoked_at = Some(now);
                }
            })?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "token.revoked")
                    .target(format!("api_token:{id}"))
                    .details(json!({ "name": token.name })),
            )?;
            Ok(token)
        })
        .await
}

/// Whether any employee exists (the store has been bootstrapped).
pub fn bootstrapped(txn: &redb::ReadTransaction) -> AppResult<bool> {
    Ok(meta_get(txn, "bootstrap_admin_id")?.is_some())
}
