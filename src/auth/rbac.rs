//! Permissions, roles and grants, and how they combine into what a caller may do.
//!
//! A role is a set of permissions. The built-in roles are defined here, in code, so that a new
//! release's permissions reach them without a migration; organisations add custom roles. A role is
//! granted to an employee, a department (optionally with its sub-departments) or a position, and a
//! grant may be scoped to a department's subtree: the permissions then apply only to things in
//! that subtree.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::storage::Record;

macro_rules! permissions {
    ($($variant:ident => ($name:literal, $about:literal),)*) => {
        /// A named permission. The string form is stored and is part of the API: never rename.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Permission { $($variant,)* }

        impl Permission {
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Permission::$variant => $name,)* }
            }

            pub fn about(self) -> &'static str {
                match self { $(Permission::$variant => $about,)* }
            }

            pub fn parse(name: &str) -> Option<Permission> {
                match name { $($name => Some(Permission::$variant),)* _ => None }
            }
        }
    };
}

permissions! {
    AccountSelf => ("account.self", "Sign in and manage one's own profile, password and sessions"),
    OrgRead => ("org.read", "See departments and positions"),
    OrgManage => ("org.manage", "Create, change and delete departments and positions"),
    EmployeesRead => ("employees.read", "See employees"),
    EmployeesManage => ("employees.manage", "Create and change employees, reset passwords, end sessions"),
    RolesRead => ("roles.read", "See roles and who holds them"),
    RolesManage => ("roles.manage", "Create and change roles and grant them"),
    TokensManage => ("tokens.manage", "Issue and revoke API tokens for integrations"),
    AuditRead => ("audit.read", "Read the audit log and check its integrity"),
    AuditExport => ("audit.export", "Export the audit log (CSV, JSON)"),
    MetricsRead => ("metrics.read", "Scrape the Prometheus metrics"),
    SystemManage => ("system.manage", "Take backups and see system status"),
    ConversationsReadAssigned => ("conversations.read_assigned", "See conversations assigned to oneself or where one is mentioned"),
    ConversationsReadDepartment => ("conversations.read_department", "See the conversations of one's department"),
    ConversationsReadAll => ("conversations.read_all", "See every conversation"),
    ConversationsReply => ("conversations.reply", "Reply to customers and write internal notes"),
    ConversationsAssign => ("conversations.assign", "Assign conversations to others"),
    ConversationsTransfer => ("conversations.transfer", "Transfer and escalate conversations"),
    CustomersRead => ("customers.read", "See customer profiles and history"),
    CustomersManage => ("customers.manage", "Edit and merge customer profiles"),
    ChannelsManage => ("channels.manage", "Configure channels"),
    RoutingMonitor => ("routing.monitor", "See queues, waits and routing decisions"),
    RoutingManage => ("routing.manage", "Configure skills, lanes, SLAs and routing policies"),
    KnowledgeRead => ("knowledge.read", "Search and read the knowledge base"),
    KnowledgeWrite => ("knowledge.write", "Write article drafts, link them to the graph and submit them for review"),
    KnowledgeManage => ("knowledge.manage", "Review and publish articles; manage entities, relations, synonyms and imports"),
    AssistManage => ("assist.manage", "Manage sensitive-word dictionaries and reply-assist settings"),
    ReportsRead => ("reports.read", "See quality dashboards and reports"),
    ReportsExport => ("reports.export", "Export reports"),
}

impl Permission {
    /// Permissions over things that belong to no department (roles, tokens, the audit log, the
    /// system). A grant scoped to a department does not confer them; see `Caller::require_everywhere`.
    pub fn is_organisation_wide(self) -> bool {
        matches!(
            self,
            Permission::RolesManage
                | Permission::TokensManage
                | Permission::AuditRead
                | Permission::AuditExport
                | Permission::MetricsRead
                | Permission::SystemManage
                | Permission::ChannelsManage
        )
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Permission::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown permission {name:?}")))
    }
}

impl JsonSchema for Permission {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Permission".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
        schemars::json_schema!({ "type": "string", "enum": names })
    }
}

/// The built-in roles, with fixed ids below 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinRole {
    pub id: u64,
    pub key: &'static str,
    pub name_en: &'static str,
    pub name_zh: &'static str,
    pub about: &'static str,
    pub permissions: &'static [Permission],
}

use Permission as P;

pub const ADMINISTRATOR: BuiltinRole = BuiltinRole {
    id: 1,
    key: "administrator",
    name_en: "Administrator",
    name_zh: "管理员",
    about: "Everything, including roles, API tokens and system settings",
    permissions: Permission::ALL,
};
pub const SUPERVISOR: BuiltinRole = BuiltinRole {
    id: 2,
    key: "supervisor",
    name_en: "Supervisor",
    name_zh: "主管",
    about: "Leads a team: manages its employees, conversations, routing and knowledge; sees reports",
    permissions: &[
        P::AccountSelf,
        P::OrgRead,
        P::EmployeesRead,
        P::EmployeesManage,
        P::RolesRead,
        P::ConversationsReadAssigned,
        P::ConversationsReadDepartment,
        P::ConversationsReadAll,
        P::ConversationsReply,
        P::ConversationsAssign,
        P::ConversationsTransfer,
        P::CustomersRead,
        P::CustomersManage,
        P::RoutingMonitor,
        P::RoutingManage,
        P::KnowledgeRead,
        P::KnowledgeWrite,
        P::KnowledgeManage,
        P::AssistManage,
        P::ReportsRead,
        P::ReportsExport,
    ],
};
pub const SPECIALIST_AGENT: BuiltinRole = BuiltinRole {
    id: 3,
    key: "specialist_agent",
    name_en: "Specialist agent",
    name_zh: "专职客服",
    about: "Answers customers as their main job",
    permissions: &[
        P::AccountSelf,
        P::OrgRead,
        P::EmployeesRead,
        P::ConversationsReadAssigned,
        P::ConversationsReadDepartment,
        P::ConversationsReply,
        P::ConversationsAssign,
        P::ConversationsTransfer,
        P::CustomersRead,
        P::CustomersManage,
        P::KnowledgeRead,
        P::KnowledgeWrite,
    ],
};
pub const EMPLOYEE_AGENT: BuiltinRole = BuiltinRole {
    id: 4,
    key: "employee_agent",
    name_en: "Employee agent",
    name_zh: "兼职应答员工",
    about: "Answers customers part-time beside another job (sales, R&D, office staff)",
    permissions: &[
        P::AccountSelf,
        P::OrgRead,
        P::EmployeesRead,
        P::ConversationsReadAssigned,
        P::ConversationsReply,
        P::ConversationsTransfer,
        P::CustomersRead,
        P::KnowledgeRead,
        P::KnowledgeWrite,
    ],
};
pub const AUDITOR: BuiltinRole = BuiltinRole {
    id: 5,
    key: "auditor",
    name_en: "Auditor",
    name_zh: "审计员",
    about: "Reads reports and the audit log and exports them; changes nothing",
    permissions: &[
        P::AccountSelf,
        P::OrgRead,
        P::EmployeesRead,
        P::RolesRead,
        P::AuditRead,
        P::AuditExport,
        P::ReportsRead,
        P::ReportsExport,
    ],
};
pub const READ_ONLY: BuiltinRole = BuiltinRole {
    id: 6,
    key: "read_only",
    name_en: "Read-only",
    name_zh: "只读",
    about: "Sees the organisation, conversations, customers, knowledge and reports; changes nothing",
    permissions: &[
        P::AccountSelf,
        P::OrgRead,
        P::EmployeesRead,
        P::RolesRead,
        P::ConversationsReadAssigned,
        P::ConversationsReadAll,
        P::CustomersRead,
        P::KnowledgeRead,
        P::ReportsRead,
    ],
};

pub const BUILTIN_ROLES: &[BuiltinRole] = &[
    ADMINISTRATOR,
    SUPERVISOR,
    SPECIALIST_AGENT,
    EMPLOYEE_AGENT,
    AUDITOR,
    READ_ONLY,
];

pub fn builtin_role(id: u64) -> Option<&'static BuiltinRole> {
    BUILTIN_ROLES.iter().find(|r| r.id == id)
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CustomRole {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub permissions: Vec<Permission>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Record for CustomRole {
    const KIND: &'static str = "role";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GrantSubject {
    Employee {
        employee_id: u64,
    },
    Department {
        department_id: u64,
        #[serde(default)]
        include_subdepartments: bool,
    },
    Position {
        position_id: u64,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Grant {
    pub id: u64,
    pub role_id: u64,
    pub subject: GrantSubject,
    /// When set, the role's permissions apply only within this department's subtree.
    #[serde(default)]
    pub scope_department_id: Option<u64>,
    pub created_at: Millis,
}

impl Record for Grant {
    const KIND: &'static str = "role grant";
}

/// Where a permission applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Everywhere,
    /// Within these departments' subtrees.
    Departments(BTreeSet<u64>),
}

impl Scope {
    fn merge(&mut self, other: &Scope) {
        match (self as &mut Scope, other) {
            (Scope::Everywhere, _) => {}
            (this, Scope::Everywhere) => *this = Scope::Everywhere,
            (Scope::Departments(mine), Scope::Departments(theirs)) => mine.extend(theirs),
        }
    }
}

/// The department tree, for subtree questions.
#[derive(Debug, Clone, Default)]
pub struct DepartmentTree {
    parent: HashMap<u64, Option<u64>>,
}

impl DepartmentTree {
    pub fn new(parents: impl IntoIterator<Item = (u64, Option<u64>)>) -> Self {
        DepartmentTree {
            parent: parents.into_iter().collect(),
        }
    }

    pub fn contains(&self, id: u64) -> bool {
        self.parent.contains_key(&id)
    }

    /// Whether `department` is `ancestor` or below it.
    pub fn is_within(&self, department: u64, ancestor: u64) -> bool {
        let mut current = Some(department);
        // The tree is kept acyclic on write; the bound guards against damaged data.
        for _ in 0..=self.parent.len() {
            match current {
                Some(id) if id == ancestor => return true,
                Some(id) => current = self.parent.get(&id).copied().flatten(),
                None => return false,
            }
        }
        false
    }
}

/// What the store knows about roles and grants, cached in memory and rebuilt after they change.
#[derive(Debug, Clone, Default)]
pub struct AccessIndex {
    pub custom_roles: HashMap<u64, CustomRole>,
    pub grants: Vec<Grant>,
    pub departments: DepartmentTree,
}

impl AccessIndex {
    pub fn role_permissions(&self, role_id: u64) -> Option<Vec<Permission>> {
        if let Some(builtin) = builtin_role(role_id) {
            return Some(builtin.permissions.to_vec());
        }
        self.custom_roles
            .get(&role_id)
            .map(|r| r.permissions.clone())
    }

    fn grant_applies(&self, grant: &Grant, who: &Holder) -> bool {
        match &grant.subject {
            GrantSubject::Employee { employee_id } => *employee_id == who.employee_id,
            GrantSubject::Position { position_id } => Some(*position_id) == who.position_id,
            GrantSubject::Department {
                department_id,
                include_subdepartments,
            } => {
                who.department_id == *department_id
                    || (*include_subdepartments
                        && self
                            .departments
                            .is_within(who.department_id, *department_id))
            }
        }
    }

    /// The grants that reach an employee, directly or through department or position.
    pub fn grants_for<'a>(&'a self, who: &'a Holder) -> impl Iterator<Item = &'a Grant> + 'a {
        self.grants
            .iter()
            .filter(move |g| self.grant_applies(g, who))
    }

    pub fn access_for(&self, who: &Holder) -> Access {
        let mut permissions: BTreeMap<Permission, Scope> = BTreeMap::new();
        for grant in self.grants_for(who) {
            let scope = match grant.scope_department_id {
                None => Scope::Everywhere,
                Some(d) => Scope::Departments(BTreeSet::from([d])),
            };
            for permission in self.role_permissions(grant.role_id).unwrap_or_default() {
                permissions
                    .entry(permission)
                    .and_modify(|s| s.merge(&scope))
                    .or_insert_with(|| scope.clone());
            }
        }
        Access { permissions }
    }
}

/// The facts about an employee that grants look at.
#[derive(Debug, Clone)]
pub struct Holder {
    pub employee_id: u64,
    pub department_id: u64,
    pub position_id: Option<u64>,
}

/// What one caller may do, and where.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub permissions: BTreeMap<Permission, Scope>,
}

impl Access {
    pub fn has(&self, permission: Permission) -> bool {
        self.permissions.contains_key(&permission)
    }

    /// Whether `permission` applies to something in `department`.
    pub fn allows_in(
        &self,
        permission: Permission,
        department: u64,
        tree: &DepartmentTree,
    ) -> bool {
        match self.permissions.get(&permission) {
            Some(Scope::Everywhere) => true,
            Some(Scope::Departments(roots)) => {
                roots.iter().any(|root| tree.is_within(department, *root))
            }
            None => false,
        }
    }

    pub fn is_everywhere(&self, permission: Permission) -> bool {
        matches!(self.permissions.get(&permission), Some(Scope::Everywhere))
    }

    pub fn grant_everywhere(&mut self, permission: Permission) {
        self.permissions.insert(permission, Scope::Everywhere);
    }

    /// Narrows to the given permissions (an API token's scopes).
    pub fn restricted_to(mut self, allowed: &[Permission]) -> Access {
        self.permissions.retain(|p, _| allowed.contains(p));
        self
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.permissions.keys().map(|p| p.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> AccessIndex {
        // 1 (root) -> 2 (sales) -> 3 (sales east); 1 -> 4 (support)
        AccessIndex {
            custom_roles: HashMap::new(),
            grants: vec![
                Grant {
                    id: 1,
                    role_id: SUPERVISOR.id,
                    subject: GrantSubject::Employee { employee_id: 10 },
                    scope_department_id: Some(2),
                    created_at: 0,
                },
                Grant {
                    id: 2,
                    role_id: EMPLOYEE_AGENT.id,
                    subject: GrantSubject::Department {
                        department_id: 2,
                        include_subdepartments: true,
                    },
                    scope_department_id: None,
                    created_at: 0,
                },
                Grant {
                    id: 3,
                    role_id: AUDITOR.id,
                    subject: GrantSubject::Position { position_id: 7 },
                    scope_department_id: None,
                    created_at: 0,
                },
            ],
            departments: DepartmentTree::new([(1, None), (2, Some(1)), (3, Some(2)), (4, Some(1))]),
        }
    }

    #[test]
    fn grants_reach_through_department_subtree_and_position() {
        let idx = index();
        let east = Holder {
            employee_id: 11,
            department_id: 3,
            position_id: None,
        };
        assert!(idx.access_for(&east).has(P::ConversationsReply));
        let support = Holder {
            employee_id: 12,
            department_id: 4,
            position_id: Some(7),
        };
        let access = idx.access_for(&support);
        assert!(access.has(P::AuditExport) && !access.has(P::ConversationsReply));
    }

    #[test]
    fn scoped_grants_apply_only_inside_their_subtree() {
        let idx = index();
        let lead = Holder {
            employee_id: 10,
            department_id: 2,
            position_id: None,
        };
        let access = idx.access_for(&lead);
        assert!(access.allows_in(P::EmployeesManage, 3, &idx.departments));
        assert!(!access.allows_in(P::EmployeesManage, 4, &idx.departments));
        assert!(!access.is_everywhere(P::EmployeesManage));
    }

    #[test]
    fn permission_names_round_trip_and_roles_are_sane() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(*p));
        }
        for role in BUILTIN_ROLES {
            assert!(role.id < 100);
            assert!(role.permissions.contains(&P::AccountSelf), "{}", role.key);
        }
        for p in AUDITOR.permissions.iter().chain(READ_ONLY.permissions) {
            let name = p.as_str();
            assert!(
                !name.ends_with("manage") && !name.ends_with("reply") && !name.ends_with("assign"),
                "{name}"
            );
        }
    }
}
