use super::{Data, Reply, created, items, no_content, ok};
use crate::auth::rbac::Permission;
use crate::http::extract::{Auth, Body, IdPath, Query};
use crate::org::EmployeeView;
use crate::org::service::{
    self as org, DepartmentPatch, EmployeeFilter, EmployeePatch, NewDepartment, NewEmployee,
    NewPosition, PositionPatch,
};

pub async fn list_departments(_auth: Auth, state: Data) -> Reply {
    items(state.core.store.read(org::departments).await?)
}

pub async fn create_department(auth: Auth, state: Data, body: Body<NewDepartment>) -> Reply {
    let body = body.get()?;
    created(org::create_department(&state.core, &auth.caller, body).await?)
}

pub async fn get_department(_auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    ok(state
        .core
        .store
        .read(move |txn| org::department(txn, id))
        .await?)
}

pub async fn update_department(
    auth: Auth,
    state: Data,
    id: IdPath,
    body: Body<DepartmentPatch>,
) -> Reply {
    let body = body.get()?;
    let id = id.get()?;
    ok(org::update_department(&state.core, &auth.caller, id, body).await?)
}

pub async fn delete_department(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    org::delete_department(&state.core, &auth.caller, id).await?;
    no_content()
}

pub async fn list_positions(_auth: Auth, state: Data) -> Reply {
    items(state.core.store.read(org::positions).await?)
}

pub async fn create_position(auth: Auth, state: Data, body: Body<NewPosition>) -> Reply {
    let body = body.get()?;
    created(org::create_position(&state.core, &auth.caller, body).await?)
}

pub async fn get_position(_auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    ok(state
        .core
        .store
        .read(move |txn| org::position(txn, id))
        .await?)
}

pub async fn update_position(
    auth: Auth,
    state: Data,
    id: IdPath,
    body: Body<PositionPatch>,
) -> Reply {
    let body = body.get()?;
    let id = id.get()?;
    ok(org::update_position(&state.core, &auth.caller, id, body).await?)
}

pub async fn delete_position(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    org::delete_position(&state.core, &auth.caller, id).await?;
    no_content()
}

pub async fn list_employees(auth: Auth, state: Data, filter: Query<EmployeeFilter>) -> Reply {
    let filter = filter.get()?;
    let index = state.core.access();
    let tree = index.departments.clone();
    let mut found = state
        .core
        .store
        .read(move |txn| org::employees(txn, &filter, &tree))
        .await?;
    // A department-scoped employees.read sees only its subtree.
    if !auth.caller.access.is_everywhere(Permission::EmployeesRead) {
        found.retain(|e: &EmployeeView| {
            auth.caller.access.allows_in(
                Permission::EmployeesRead,
                e.department_id,
                &index.departments,
            )
        });
    }
    items(found)
}

pub async fn create_employee(auth: Auth, state: Data, body: Body<NewEmployee>) -> Reply {
    let body = body.get()?;
    created(org::create_employee(&state.core, &auth.caller, body).await?)
}

pub async fn get_employee(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    let employee = state
        .core
        .store
        .read(move |txn| org::employee(txn, id))
        .await?;
    auth.caller
        .require_in(Permission::EmployeesRead, employee.department_id)?;
    ok(EmployeeView::from(&employee))
}

pub async fn update_employee(
    auth: Auth,
    state: Data,
    id: IdPath,
    body: Body<EmployeePatch>,
) -> Reply {
    let body = body.get()?;
    let id = id.get()?;
    ok(org::update_employee(&state.core, &auth.caller, id, body).await?)
}

pub async fn reset_password(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    ok(org::reset_password(&state.core, &auth.caller, id).await?)
}

pub async fn end_sessions(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    let ended = org::end_sessions(&state.core, &auth.caller, id).await?;
    ok(super::auth::Ended {
        sessions_ended: ended,
    })
}
