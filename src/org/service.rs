//! Operations on departments, positions and employees.

use std::str::FromStr;

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, AuditEvent};
use crate::auth::rbac::{GrantSubject, Holder, Permission};
use crate::auth::{Caller, session};
use crate::error::{AppError, AppResult};
use crate::org::{Department, Employee, EmployeeView, Language, Position};
use crate::state::Core;
use crate::storage::{WriteTxn, all_records, codec, get_record, next_id, tables};

// ---------------------------------------------------------------- validation helpers

/// Trims and checks a required text field.
pub fn required_text(field: &str, value: &str, max_chars: usize) -> AppResult<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(AppError::field(field, "must not be empty"));
    }
    optional_text(field, value, max_chars)
}

pub fn optional_text(field: &str, value: &str, max_chars: usize) -> AppResult<String> {
    let value = value.trim();
    if value.chars().count() > max_chars {
        return Err(AppError::field(
            field,
            format!("must have at most {max_chars} characters"),
        ));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(AppError::field(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_string())
}

pub fn check_username(username: &str) -> AppResult<String> {
    let name = username.trim().to_lowercase();
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !(2..=64).contains(&name.len()) || !valid_chars {
        return Err(AppError::field(
            "username",
            "must be 2 to 64 characters of a-z, 0-9, '.', '_', '-', '@'",
        ));
    }
    Ok(name)
}

fn check_time_zone(tz: &str) -> AppResult<String> {
    chrono_tz::Tz::from_str(tz.trim())
        .map(|t| t.name().to_string())
        .map_err(|_| {
            AppError::field(
                "time_zone",
                format!("{tz:?} is not an IANA time zone such as Asia/Shanghai"),
            )
        })
}

fn check_email(email: Option<&str>) -> AppResult<Option<String>> {
    match email.map(str::trim).filter(|e| !e.is_empty()) {
        None => Ok(None),
        Some(e)
            if e.len() <= 254
                && e.contains('@')
                && !e.starts_with('@')
                && !e.ends_with('@')
                && !e.contains(char::is_whitespace) =>
        {
            Ok(Some(e.to_string()))
        }
        Some(_) => Err(AppError::field("email", "is not an e-mail address")),
    }
}

// ---------------------------------------------------------------- reads

pub fn department(txn: &ReadTransaction, id: u64) -> AppResult<Department> {
    get_record(&txn.open_table(tables::DEPARTMENTS)?, id)?
        .ok_or_else(|| AppError::not_found("department"))
}

pub fn departments(txn: &ReadTransaction) -> AppResult<Vec<Department>> {
    all_records(&txn.open_table(tables::DEPARTMENTS)?)
}

pub fn positions(txn: &ReadTransaction) -> AppResult<Vec<Position>> {
    all_records(&txn.open_table(tables::POSITIONS)?)
}

pub fn position(txn: &ReadTransaction, id: u64) -> AppResult<Position> {
    get_record(&txn.open_table(tables::POSITIONS)?, id)?
        .ok_or_else(|| AppError::not_found("position"))
}

pub fn employee(txn: &ReadTransaction, id: u64) -> AppResult<Employee> {
    get_record(&txn.open_table(tables::EMPLOYEES)?, id)?
        .ok_or_else(|| AppError::not_found("employee"))
}

pub fn employee_by_username(txn: &ReadTransaction, username: &str) -> AppResult<Option<Employee>> {
    let id = txn
        .open_table(tables::USERNAME_EMPLOYEE)?
        .get(username.trim().to_lowercase().as_str())?
        .map(|v| v.value());
    match id {
        Some(id) => get_record(&txn.open_table(tables::EMPLOYEES)?, id),
        None => Ok(None),
    }
}

pub fn employee_count(txn: &ReadTransaction) -> AppResult<u64> {
    Ok(txn.open_table(tables::EMPLOYEES)?.len()?)
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmployeeFilter {
    pub department_id: Option<u64>,
    /// Also list employees of sub-departments of `department_id`.
    pub include_subdepartments: Option<bool>,
    /// Text in the user name, display name or e-mail.
    pub q: Option<String>,
    pub include_disabled: Option<bool>,
}

pub fn employees(
    txn: &ReadTransaction,
    filter: &EmployeeFilter,
    tree: &crate::auth::rbac::DepartmentTree,
) -> AppResult<Vec<EmployeeView>> {
    let q = filter
        .q
        .as_deref()
        .map(str::to_lowercase)
        .filter(|q| !q.is_empty());
    let table = txn.open_table(tables::EMPLOYEES)?;
    let mut out = Vec::new();
    for row in table.iter()? {
        let (_, value) = row?;
        let e: Employee = codec::decode(value.value())?;
        if e.disabled && !filter.include_disabled.unwrap_or(true) {
            continue;
        }
        if let Some(d) = filter.department_id {
            let inside = if filter.include_subdepartments.unwrap_or(false) {
                tree.is_within(e.department_id, d)
            } else {
                e.department_id == d
            };
            if !inside {
                continue;
            }
        }
        if let Some(q) = &q {
            let hay = format!(
                "{} {} {}",
                e.username,
                e.display_name.to_lowercase(),
                e.email.as_deref().unwrap_or("")
            )
            .to_lowercase();
            if !hay.contains(q) {
                continue;
            }
        }
        out.push(EmployeeView::from(&e));
    }
    Ok(out)
}

fn load<T: crate::storage::Record>(
    txn: &WriteTxn,
    table: redb::TableDefinition<u64, &'static [u8]>,
    id: u64,
    what: &str,
) -> AppResult<T> {
    get_record(&txn.open_table(table)?, id)?.ok_or_else(|| AppError::not_found(what))
}

fn save<T: crate::storage::Record>(
    txn: &WriteTxn,
    table: redb::TableDefinition<u64, &'static [u8]>,
    id: u64,
    record: &T,
) -> AppResult<()> {
    txn.open_table(table)?
        .insert(id, codec::encode(record).as_slice())?;
    Ok(())
}

fn grants_referencing(
    txn: &WriteTxn,
    matches: impl Fn(&crate::auth::rbac::Grant) -> bool,
) -> AppResult<usize> {
    let grants: Vec<crate::auth::rbac::Grant> = all_records(&txn.open_table(tables::ROLE_GRANTS)?)?;
    Ok(grants.iter().filter(|g| matches(g)).count())
}

// ---------------------------------------------------------------- departments

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDepartment {
    pub name: String,
    pub parent_id: Option<u64>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartmentPatch {
    pub name: Option<String>,
    /// `null` moves the department to the top level.
    #[serde(default, deserialize_with = "double_option::deserialize")]
    #[schemars(with = "Option<u64>")]
    pub parent_id: Option<Option<u64>>,
    pub description: Option<String>,
}

fn check_sibling_name(
    txn: &WriteTxn,
    parent: Option<u64>,
    name: &str,
    except: Option<u64>,
) -> AppResult<()> {
    let all: Vec<Department> = all_records(&txn.open_table(tables::DEPARTMENTS)?)?;
    if all.iter().any(|d| {
        d.parent_id == parent
            && Some(d.id) != except
            && d.name.to_lowercase() == name.to_lowercase()
    }) {
        return Err(AppError::conflict(format!(
            "a department named {name:?} already exists there"
        )));
    }
    Ok(())
}

pub async fn create_department(
    core: &Core,
    caller: &Caller,
    input: NewDepartment,
) -> AppResult<Department> {
    match input.parent_id {
        Some(parent) => caller.require_in(Permission::OrgManage, parent)?,
        None if caller.access.is_everywhere(Permission::OrgManage) => {}
        None => {
            return Err(AppError::forbidden(
                "only an organisation-wide org.manage may create a top-level department",
            ));
        }
    }
    let name = required_text("name", &input.name, 100)?;
    let description = optional_text("description", &input.description, 2000)?;
    let now = core.now();
    let actor = caller.actor.clone();
    let department = core
        .store
        .write(move |txn| {
            if let Some(parent) = input.parent_id {
                load::<Department>(txn, tables::DEPARTMENTS, parent, "parent department").map_err(
                    |_| AppError::field("parent_id", format!("department {parent} does not exist")),
                )?;
            }
            check_sibling_name(txn, input.parent_id, &name, None)?;
            let department = Department {
                id: next_id(txn, "department")?,
                name: name.clone(),
                parent_id: input.parent_id,
                description: description.clone(),
                created_at: now,
                updated_at: now,
            };
            save(txn, tables::DEPARTMENTS, department.id, &department)?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "department.created")
                    .target(format!("department:{}", department.id))
                    .details(json!({ "name": department.name, "parent_id": department.parent_id })),
            )?;
            Ok(department)
        })
        .await?;
    core.reload_access().await?;
    Ok(department)
}

pub async fn update_department(
    core: &Core,
    caller: &Caller,
    id: u64,
    patch: DepartmentPatch,
) -> AppResult<Department> {
    caller.require_in(Permission::OrgManage, id)?;
    if let Some(Some(parent)) = patch.parent_id {
        caller.require_in(Permission::OrgManage, parent)?;
    } else if patch.parent_id == Some(None) && !caller.access.is_everywhere(Permission::OrgManage) {
        return Err(AppError::forbidden(
            "only an organisation-wide org.manage may move a department to the top level",
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
    let now = core.now();
    let actor = caller.actor.clone();
    let department = core
        .store
        .write(move |txn| {
            let mut d: Department = load(txn, tables::DEPARTMENTS, id, "department")?;
            let before = d.clone();
            if let Some(parent) = patch.parent_id {
                if let Some(p) = parent {
                    load::<Department>(txn, tables::DEPARTMENTS, p, "parent department")
                        .map_err(|_| AppError::field("parent_id", format!("department {p} does not exist")))?;
                    // Checked inside the write, against committed parents: two concurrent
                    // moves must not make a cycle.
                    let all: Vec<Department> = all_records(&txn.open_table(tables::DEPARTMENTS)?)?;
                    let tree = crate::auth::rbac::DepartmentTree::new(all.iter().map(|d| (d.id, d.parent_id)));
                    if tree.is_within(p, id) {
                        return Err(AppError::field("parent_id", "a department cannot move under itself or its own sub-department"));
                    }
                }
                d.parent_id = parent;
            }
            if let Some(name) = &name {
                d.name = name.clone();
            }
            if let Some(description) = &description {
                d.description = description.clone();
            }
            check_sibling_name(txn, d.parent_id, &d.name, Some(id))?;
            d.updated_at = now;
            save(txn, tables::DEPARTMENTS, id, &d)?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "department.updated").target(format!("department:{id}")).details(json!({
                    "before": { "name": before.name, "parent_id": before.parent_id, "description": before.description },
                    "after": { "name": d.name, "parent_id": d.parent_id, "description": d.description },
                })),
            )?;
            Ok(d)
        })
        .await?;
    core.reload_access().await?;
    Ok(department)
}

pub async fn delete_department(core: &Core, caller: &Caller, id: u64) -> AppResult<()> {
    caller.require_in(Permission::OrgManage, id)?;
    let now = core.now();
    let actor = caller.actor.clone();
    core.store
        .write(move |txn| {
            let d: Department = load(txn, tables::DEPARTMENTS, id, "department")?;
            let all: Vec<Department> = all_records(&txn.open_table(tables::DEPARTMENTS)?)?;
            if all.iter().any(|c| c.parent_id == Some(id)) {
                return Err(AppError::conflict("the department has sub-departments; move or delete them first"));
            }
            let employees: Vec<Employee> = all_records(&txn.open_table(tables::EMPLOYEES)?)?;
            let members = employees.iter().filter(|e| e.department_id == id).count();
            if members > 0 {
                return Err(AppError::conflict(format!("the department has {members} employees; move them first")));
            }
            let grants = grants_referencing(txn, |g| {
                g.scope_department_id == Some(id) || matches!(g.subject, GrantSubject::Department { department_id, .. } if department_id == id)
            })?;
            if grants > 0 {
                return Err(AppError::conflict(format!("{grants} role grants refer to the department; revoke them first")));
            }
            txn.open_table(tables::DEPARTMENTS)?.remove(id)?;
            audit::append(txn, now, AuditEvent::new(&actor, "department.deleted").target(format!("department:{id}")).details(json!({ "name": d.name })))?;
            Ok(())
        })
        .await?;
    core.reload_access().await
}

// ---------------------------------------------------------------- positions

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPosition {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PositionPatch {
    pub name: Option<String>,
    pub description: Option<String>,
}

fn check_position_name(txn: &WriteTxn, name: &str, except: Option<u64>) -> AppResult<()> {
    let all: Vec<Position> = all_records(&txn.open_table(tables::POSITIONS)?)?;
    if all
        .iter()
        .any(|p| Some(p.id) != except && p.name.to_lowercase() == name.to_lowercase())
    {
        return Err(AppError::conflict(format!(
            "a position named {name:?} already exists"
        )));
    }
    Ok(())
}

pub async fn create_position(
    core: &Core,
    caller: &Caller,
    input: NewPosition,
) -> AppResult<Position> {
    caller.require_everywhere(Permission::OrgManage)?;
    let name = required_text("name", &input.name, 100)?;
    let description = optional_text("description", &input.description, 2000)?;
    let now = core.now();
    let actor = caller.actor.clone();
    core.store
        .write(move |txn| {
            check_position_name(txn, &name, None)?;
            let p = Position {
                id: next_id(txn, "position")?,
                name: name.clone(),
                description: description.clone(),
                created_at: now,
                updated_at: now,
            };
            save(txn, tables::POSITIONS, p.id, &p)?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "position.created")
                    .target(format!("position:{}", p.id))
                    .details(json!({ "name": p.name })),
            )?;
            Ok(p)
        })
        .await
}

pub async fn update_position(
    core: &Core,
    caller: &Caller,
    id: u64,
    patch: PositionPatch,
) -> AppResult<Position> {
    caller.require_everywhere(Permission::OrgManage)?;
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
    let now = core.now();
    let actor = caller.actor.clone();
    core.store
        .write(move |txn| {
            let mut p: Position = load(txn, tables::POSITIONS, id, "position")?;
            let before = p.clone();
            if let Some(name) = &name {
                check_position_name(txn, name, Some(id))?;
                p.name = name.clone();
            }
            if let Some(description) = &description {
                p.description = description.clone();
            }
            p.updated_at = now;
            save(txn, tables::POSITIONS, id, &p)?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "position.updated")
                    .target(format!("position:{id}"))
                    .details(
                        json!({ "before": { "name": before.name }, "after": { "name": p.name } }),
                    ),
            )?;
            Ok(p)
        })
        .await
}

pub async fn delete_position(core: &Core, caller: &Caller, id: u64) -> AppResult<()> {
    caller.require_everywhere(Permission::OrgManage)?;
    let now = core.now();
    let actor = caller.actor.clone();
    core.store
        .write(move |txn| {
            let p: Position = load(txn, tables::POSITIONS, id, "position")?;
            let employees: Vec<Employee> = all_records(&txn.open_table(tables::EMPLOYEES)?)?;
            let holders = employees.iter().filter(|e| e.position_id == Some(id)).count();
            if holders > 0 {
                return Err(AppError::conflict(format!("{holders} employees hold the position; change them first")));
            }
            let grants = grants_referencing(txn, |g| matches!(g.subject, GrantSubject::Position { position_id } if position_id == id))?;
            if grants > 0 {
                return Err(AppError::conflict(format!("{grants} role grants refer to the position; revoke them first")));
            }
            txn.open_table(tables::POSITIONS)?.remove(id)?;
            audit::append(txn, now, AuditEvent::new(&actor, "position.deleted").target(format!("position:{id}")).details(json!({ "name": p.name })))?;
            Ok(())
        })
        .await?;
    core.reload_access().await
}

// ---------------------------------------------------------------- employees

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEmployee {
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub department_id: u64,
    pub position_id: Option<u64>,
    #[serde(default)]
    pub language: Language,
    /// IANA time zone, e.g. "Asia/Shanghai"; defaults to UTC.
    pub time_zone: Option<String>,
    #[serde(default)]
    pub location: String,
    /// An initial password; when absent a one-time password is generated and returned once.
    /// Either way the employee must change it at first login.
    pub password: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CreatedEmployee {
    pub employee: EmployeeView,
    /// Present when the server generated the initial password; shown only this once.
    pub one_time_password: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmployeePatch {
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "double_option::deserialize")]
    #[schemars(with = "Option<String>")]
    pub email: Option<Option<String>>,
    pub department_id: Option<u64>,
    #[serde(default, deserialize_with = "double_option::deserialize")]
    #[schemars(with = "Option<u64>")]
    pub position_id: Option<Option<u64>>,
    pub language: Option<Language>,
    pub time_zone: Option<String>,
    pub location: Option<String>,
    pub disabled: Option<bool>,
}

/// The caller may manage this account: employees.manage where it works, and nothing the account
/// can do that the caller cannot (so nobody takes over a more powerful account).
fn require_manageable(core: &Core, caller: &Caller, target: &Employee) -> AppResult<()> {
    caller.require_in(Permission::EmployeesManage, target.department_id)?;
    let holder = Holder {
        employee_id: target.id,
        department_id: target.department_id,
        position_id: target.position_id,
    };
    caller.require_dominates(&core.access().access_for(&holder), target.department_id)
}

/// An account placed in `department` with `position` must not gain more than the caller holds
/// there (department and position grants come with the place).
fn require_not_escalating(
    core: &Core,
    caller: &Caller,
    employee_id: u64,
    department: u64,
    position: Option<u64>,
) -> AppResult<()> {
    let holder = Holder {
        employee_id,
        department_id: department,
        position_id: position,
    };
    caller.require_dominates(&core.access().access_for(&holder), department)
}

/// A readable one-time password: four groups of four letters and digits.
pub fn generate_one_time_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..4)
        .map(|_| {
            (0..4)
                .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn check_references(txn: &WriteTxn, department_id: u64, position_id: Option<u64>) -> AppResult<()> {
    if txn
        .open_table(tables::DEPARTMENTS)?
        .get(department_id)?
        .is_none()
    {
        return Err(AppError::field(
            "department_id",
            format!("department {department_id} does not exist"),
        ));
    }
    if let Some(p) = position_id
        && txn.open_table(tables::POSITIONS)?.get(p)?.is_none()
    {
        return Err(AppError::field(
            "position_id",
            format!("position {p} does not exist"),
        ));
    }
    Ok(())
}

/// Writes a new employee and its user-name index entry; the caller audits.
pub fn insert_employee(txn: &WriteTxn, mut employee: Employee) -> AppResult<Employee> {
    let mut names = txn.open_table(tables::USERNAME_EMPLOYEE)?;
    if names.get(employee.username.as_str())?.is_some() {
        return Err(AppError::conflict(format!(
            "the user name {:?} is taken",
            employee.username
        )));
    }
    employee.id = next_id(txn, "employee")?;
    names.insert(employee.username.as_str(), employee.id)?;
    drop(names);
    save(txn, tables::EMPLOYEES, employee.id, &employee)?;
    Ok(employee)
}

pub fn save_employee(txn: &WriteTxn, employee: &Employee) -> AppResult<()> {
    save(txn, tables::EMPLOYEES, employee.id, employee)
}

pub fn load_employee(txn: &WriteTxn, id: u64) -> AppResult<Employee> {
    load(txn, tables::EMPLOYEES, id, "employee")
}

pub async fn create_employee(
    core: &Core,
    caller: &Caller,
    input: NewEmployee,
) -> AppResult<CreatedEmployee> {
    caller.require_in(Permission::EmployeesManage, input.department_id)?;
    require_not_escalating(core, caller, 0, input.department_id, input.position_id)?;
    let username = check_username(&input.username)?;
    let display_name = required_text("display_name", &input.display_name, 100)?;
    let email = check_email(input.email.as_deref())?;
    let time_zone = check_time_zone(input.time_zone.as_deref().unwrap_or("UTC"))?;
    let location = optional_text("location", &input.location, 200)?;
    let (password, one_time_password) = match input.password {
        Some(p) => {
            core.hashing.check_policy(&p, &username)?;
            (p, None)
        }
        None => {
            let p = generate_one_time_password();
            (p.clone(), Some(p))
        }
    };
    let password_hash = core.hashing.hash_async(password).await?;
    let now = core.now();
    let actor = caller.actor.clone();
    let employee = core
        .store
        .write(move |txn| {
            check_references(txn, input.department_id, input.position_id)?;
            let employee = insert_employee(
                txn,
                Employee {
                    id: 0,
                    username: username.clone(),
                    display_name: display_name.clone(),
                    email: email.clone(),
                    department_id: input.department_id,
                    position_id: input.position_id,
                    language: input.language,
                    time_zone: time_zone.clone(),
                    location: location.clone(),
                    password_hash: password_hash.clone(),
                    must_change_password: true,
                    disabled: false,
                    created_at: now,
                    updated_at: now,
                    password_changed_at: now,
                    last_login_at: None,
                },
            )?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "employee.created")
                    .target(format!("employee:{}", employee.id))
                    .details(json!({
                        "username": employee.username,
                        "display_name": employee.display_name,
                        "department_id": employee.department_id,
                        "position_id": employee.position_id,
                    })),
            )?;
            Ok(employee)
        })
        .await?;
    Ok(CreatedEmployee {
        employee: EmployeeView::from(&employee),
        one_time_password,
    })
}

pub async fn update_employee(
    core: &Core,
    caller: &Caller,
    id: u64,
    patch: EmployeePatch,
) -> AppResult<EmployeeView> {
    let current = core.store.read(move |txn| employee(txn, id)).await?;
    require_manageable(core, caller, &current)?;
    if let Some(d) = patch.department_id {
        caller.require_in(Permission::EmployeesManage, d)?;
    }
    if patch.department_id.is_some() || patch.position_id.is_some() {
        let department = patch.department_id.unwrap_or(current.department_id);
        let position = patch.position_id.unwrap_or(current.position_id);
        require_not_escalating(core, caller, id, department, position)?;
    }
    if patch.disabled == Some(true) && id == caller.employee_id {
        return Err(AppError::field(
            "disabled",
            "you cannot disable your own account",
        ));
    }
    let display_name = patch
        .display_name
        .as_deref()
        .map(|n| required_text("display_name", n, 100))
        .transpose()?;
    let email = patch
        .email
        .as_ref()
        .map(|e| check_email(e.as_deref()))
        .transpose()?;
    let time_zone = patch
        .time_zone
        .as_deref()
        .map(check_time_zone)
        .transpose()?;
    let location = patch
        .location
        .as_deref()
        .map(|l| optional_text("location", l, 200))
        .transpose()?;
    let now = core.now();
    let actor = caller.actor.clone();
    let updated = core
        .store
        .write(move |txn| {
            let mut e = load_employee(txn, id)?;
            let before = EmployeeView::from(&e);
            if let Some(v) = &display_name {
                e.display_name = v.clone();
            }
            if let Some(v) = &email {
                e.email = v.clone();
            }
            if let Some(v) = patch.department_id {
                e.department_id = v;
            }
            if let Some(v) = patch.position_id {
                e.position_id = v;
            }
            if let Some(v) = patch.language {
                e.language = v;
            }
            if let Some(v) = &time_zone {
                e.time_zone = v.clone();
            }
            if let Some(v) = &location {
                e.location = v.clone();
            }
            if let Some(v) = patch.disabled {
                e.disabled = v;
            }
            check_references(txn, e.department_id, e.position_id)?;
            e.updated_at = now;
            save_employee(txn, &e)?;
            let ended = if e.disabled && !before.disabled { session::remove_all_for(txn, id)? } else { 0 };
            let after = EmployeeView::from(&e);
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "employee.updated")
                    .target(format!("employee:{id}"))
                    .details(json!({ "changes": changed_fields(&before, &after), "sessions_ended": ended })),
            )?;
            Ok(after)
        })
        .await?;
    core.reload_access().await?;
    Ok(updated)
}

/// `{field: {before, after}}` for the fields that differ.
pub fn changed_fields<T: Serialize>(before: &T, after: &T) -> serde_json::Value {
    let (serde_json::Value::Object(b), serde_json::Value::Object(a)) = (
        serde_json::to_value(before).unwrap_or_default(),
        serde_json::to_value(after).unwrap_or_default(),
    ) else {
        return serde_json::Value::Null;
    };
    let mut changes = serde_json::Map::new();
    for (key, new) in a {
        if key == "updated_at" {
            continue;
        }
        let old = b.get(&key).cloned().unwrap_or(serde_json::Value::Null);
        if old != new {
            changes.insert(key, json!({ "before": old, "after": new }));
        }
    }
    serde_json::Value::Object(changes)
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PasswordReset {
    pub one_time_password: String,
    pub sessions_ended: u64,
}

pub async fn reset_password(core: &Core, caller: &Caller, id: u64) -> AppResult<PasswordReset> {
    let current = core.store.read(move |txn| employee(txn, id)).await?;
    require_manageable(core, caller, &current)?;
    let one_time_password = generate_one_time_password();
    let hash = core.hashing.hash_async(one_time_password.clone()).await?;
    let now = core.now();
    let actor = caller.actor.clone();
    let ended = core
        .store
        .write(move |txn| {
            let mut e = load_employee(txn, id)?;
            e.password_hash = hash.clone();
            e.must_change_password = true;
            e.password_changed_at = now;
            e.updated_at = now;
            save_employee(txn, &e)?;
            let ended = session::remove_all_for(txn, id)?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "employee.password_reset")
                    .target(format!("employee:{id}"))
                    .details(json!({ "username": e.username, "sessions_ended": ended })),
            )?;
            Ok(ended)
        })
        .await?;
    Ok(PasswordReset {
        one_time_password,
        sessions_ended: ended,
    })
}

pub async fn end_sessions(core: &Core, caller: &Caller, id: u64) -> AppResult<u64> {
    let current = core.store.read(move |txn| employee(txn, id)).await?;
    require_manageable(core, caller, &current)?;
    let now = core.now();
    let actor = caller.actor.clone();
    core.store
        .write(move |txn| {
            let ended = session::remove_all_for(txn, id)?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "employee.sessions_ended")
                    .target(format!("employee:{id}"))
                    .details(json!({ "sessions_ended": ended })),
            )?;
            Ok(ended)
        })
        .await
}

/// Distinguishes a field that is absent (no change) from one set to null (clear it).
pub mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// The dotted keys whose values differ between two JSON documents (for configuration audits).
pub fn changed_sections(before: &serde_json::Value, after: &serde_json::Value) -> Vec<String> {
    fn walk(prefix: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for key in keys {
                    let null = serde_json::Value::Null;
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(
                        &path,
                        x.get(key).unwrap_or(&null),
                        y.get(key).unwrap_or(&null),
                        out,
                    );
                }
            }
            (x, y) if x != y => out.push(prefix.to_string()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_helpers() {
        assert_eq!(check_username(" Alice.Wang ").unwrap(), "alice.wang");
        assert!(check_username("a").is_err());
        assert!(check_username("bad name").is_err());
        assert_eq!(check_time_zone("Asia/Shanghai").unwrap(), "Asia/Shanghai");
        assert!(
            check_time_zone("Mars/Olympus")
                .unwrap_err()
                .message
                .contains("time_zone")
        );
        assert!(check_email(Some("x")).is_err());
        assert_eq!(check_email(Some(" ")).unwrap(), None);
        assert!(
            required_text("name", "  ", 10)
                .unwrap_err()
                .message
                .starts_with("name:")
        );
        assert!(optional_text("name", "a\u{0}b", 10).is_err());
        let otp = generate_one_time_password();
        assert_eq!(otp.len(), 19);
    }
}
