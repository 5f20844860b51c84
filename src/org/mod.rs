//! The organisation: departments (a tree), positions and employees.
//!
//! Employees are also the console's accounts. Every change is audited in the same write.

pub mod service;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::storage::Record;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Department {
    pub id: u64,
    pub name: String,
    pub parent_id: Option<u64>,
    #[serde(default)]
    pub description: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Record for Department {
    const KIND: &'static str = "department";
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Position {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Record for Position {
    const KIND: &'static str = "position";
}

/// Console languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
pub enum Language {
    #[default]
    #[serde(rename = "en")]
    English,
    #[serde(rename = "zh-CN")]
    SimplifiedChinese,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Employee {
    pub id: u64,
    pub username: String,
    pub display_name: String,
    #[serde(default)]
    pub email: Option<String>,
    pub department_id: u64,
    pub position_id: Option<u64>,
    #[serde(default)]
    pub language: Language,
    pub time_zone: String,
    #[serde(default)]
    pub location: String,
    pub password_hash: String,
    pub must_change_password: bool,
    #[serde(default)]
    pub disabled: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub password_changed_at: Millis,
    #[serde(default)]
    pub last_login_at: Option<Millis>,
}

impl Record for Employee {
    const KIND: &'static str = "employee";
}

/// An employee as the API shows it: never the password hash.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct EmployeeView {
    pub id: u64,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub department_id: u64,
    pub position_id: Option<u64>,
    pub language: Language,
    pub time_zone: String,
    pub location: String,
    pub must_change_password: bool,
    pub disabled: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub last_login_at: Option<Millis>,
}

impl From<&Employee> for EmployeeView {
    fn from(e: &Employee) -> Self {
        EmployeeView {
            id: e.id,
            username: e.username.clone(),
            display_name: e.display_name.clone(),
            email: e.email.clone(),
            department_id: e.department_id,
            position_id: e.position_id,
            language: e.language,
            time_zone: e.time_zone.clone(),
            location: e.location.clone(),
            must_change_password: e.must_change_password,
            disabled: e.disabled,
            created_at: e.created_at,
            updated_at: e.updated_at,
            last_login_at: e.last_login_at,
        }
    }
}
