use schemars::JsonSchema;
use serde::Serialize;

use super::{Data, Reply, created, items, no_content, ok};
use crate::auth::rbac::{Grant, Holder, Permission, Scope};
use crate::auth::service::{self, NewGrant, NewRole, RolePatch};
use crate::error::AppError;
use crate::http::extract::{Auth, Body, IdPath};
use crate::org::service as org;

#[derive(Debug, Serialize, JsonSchema)]
pub struct PermissionInfo {
    pub name: &'static str,
    pub description: &'static str,
}

pub async fn list_permissions(_auth: Auth) -> Reply {
    items(
        Permission::ALL
            .iter()
            .map(|p| PermissionInfo {
                name: p.as_str(),
                description: p.about(),
            })
            .collect(),
    )
}

pub async fn list_roles(_auth: Auth, state: Data) -> Reply {
    items(state.core.store.read(service::roles).await?)
}

pub async fn get_role(_auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    let roles = state.core.store.read(service::roles).await?;
    ok(roles
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| AppError::not_found("role"))?)
}

pub async fn create_role(auth: Auth, state: Data, body: Body<NewRole>) -> Reply {
    let body = body.get()?;
    created(service::create_role(&state.core, &auth.caller, body).await?)
}

pub async fn update_role(auth: Auth, state: Data, id: IdPath, body: Body<RolePatch>) -> Reply {
    let body = body.get()?;
    let id = id.get()?;
    ok(service::update_role(&state.core, &auth.caller, id, body).await?)
}

pub async fn delete_role(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    service::delete_role(&state.core, &auth.caller, id).await?;
    no_content()
}

pub async fn list_grants(_auth: Auth, state: Data) -> Reply {
    items(state.core.store.read(service::grants).await?)
}

pub async fn create_grant(auth: Auth, state: Data, body: Body<NewGrant>) -> Reply {
    let body = body.get()?;
    created(service::create_grant(&state.core, &auth.caller, body).await?)
}

pub async fn delete_grant(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    service::delete_grant(&state.core, &auth.caller, id).await?;
    no_content()
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct EffectivePermission {
    pub permission: Permission,
    /// Absent when the permission applies everywhere; otherwise the departments whose subtrees it covers.
    pub departments: Option<Vec<u64>>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct EffectiveAccess {
    pub employee_id: u64,
    pub permissions: Vec<EffectivePermission>,
    pub grants: Vec<Grant>,
}

pub async fn employee_access(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    let employee = state
        .core
        .store
        .read(move |txn| org::employee(txn, id))
        .await?;
    auth.caller
        .require_in(Permission::EmployeesRead, employee.department_id)?;
    let index = state.core.access();
    let holder = Holder {
        employee_id: employee.id,
        department_id: employee.department_id,
        position_id: employee.position_id,
    };
    let access = index.access_for(&holder);
    let permissions = access
        .permissions
        .iter()
        .map(|(p, scope)| EffectivePermission {
            permission: *p,
            departments: match scope {
                Scope::Everywhere => None,
                Scope::Departments(d) => Some(d.iter().copied().collect()),
            },
        })
        .collect();
    let grants = index.grants_for(&holder).cloned().collect();
    ok(EffectiveAccess {
        employee_id: id,
        permissions,
        grants,
    })
}
