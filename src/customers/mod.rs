//! Customers: one profile per person, whichever channels they use, with their identities on
//! each channel (widget visitor, e-mail address, phone, app user id, ...) and a behaviour
//! timeline of events pushed through the API or the widget.

pub mod merge;

use std::collections::BTreeMap;

use redb::{ReadTransaction, ReadableTable};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::error::{AppError, AppResult};
use crate::storage::{Record, WriteTxn, codec, get_record, next_id, tables};

/// How a customer is known on one channel: `kind` names the namespace (`email`, `phone`,
/// `api:<channel id>`, `web:<channel id>`, ...), `value` the id within it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Identity {
    pub kind: String,
    pub value: String,
}

impl Identity {
    pub fn new(kind: impl Into<String>, value: impl Into<String>) -> Identity {
        Identity {
            kind: kind.into(),
            value: value.into(),
        }
    }

    /// The index key; e-mail addresses compare case-insensitively.
    pub fn key(&self) -> String {
        let value = if self.kind == "email" {
            self.value.trim().to_lowercase()
        } else {
            self.value.trim().to_string()
        };
        format!("{}:{}", self.kind, value)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Customer {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default)]
    pub phones: Vec<String>,
    #[serde(default)]
    pub company: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Custom attributes (CRM fields).
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// The customer's id in an external CRM.
    #[serde(default)]
    pub crm_id: Option<String>,
    #[serde(default)]
    pub identities: Vec<Identity>,
    /// Set when this profile was merged into another; it then holds nothing of its own.
    #[serde(default)]
    pub merged_into: Option<u64>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Record for Customer {
    const KIND: &'static str = "customer";
}

/// One entry of a customer's behaviour timeline (page view, order, app event, ...).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct CustomerEvent {
    pub id: u64,
    pub customer_id: u64,
    /// e.g. `page_view`, `order.placed`.
    pub name: String,
    #[serde(default)]
    pub properties: serde_json::Value,
    pub occurred_at: Millis,
    pub received_at: Millis,
}

impl Record for CustomerEvent {
    const KIND: &'static str = "customer event";
}

/// What a channel tells us about who wrote.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerHint {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

pub fn get(txn: &ReadTransaction, id: u64) -> AppResult<Customer> {
    get_record(&txn.open_table(tables::CUSTOMERS)?, id)?
        .ok_or_else(|| AppError::not_found("customer"))
}

pub fn load(txn: &WriteTxn, id: u64) -> AppResult<Customer> {
    get_record(&*txn.customers()?, id)?.ok_or_else(|| AppError::not_found("customer"))
}

pub fn save(txn: &WriteTxn, customer: &Customer) -> AppResult<()> {
    txn.customers()?
        .insert(customer.id, codec::encode(customer).as_slice())?;
    Ok(())
}

/// The customer known by `identity`, or a new one made from the hint. The hint's e-mail and
/// phone also link to an existing profile, so one person writing from two channels is one
/// customer (unless they are already different customers: merging is an explicit act).
pub fn find_or_create(
    txn: &WriteTxn,
    identity: &Identity,
    hint: &CustomerHint,
    now: Millis,
) -> AppResult<Customer> {
    let mut index = txn.identities()?;
    let mut candidates = vec![identity.clone()];
    if let Some(email) = hint.email.as_deref().filter(|e| !e.trim().is_empty()) {
        candidates.push(Identity::new("email", email));
    }
    if let Some(phone) = hint.phone.as_deref().filter(|p| !p.trim().is_empty()) {
        candidates.push(Identity::new("phone", phone));
    }
    // The channel identity itself decides first. A shared e-mail or phone links to an existing
    // customer only when that customer is not already someone else on this same channel (an
    // unverified address must not pull one person's messages into another's profile).
    let mut existing = None;
    for (position, candidate) in candidates.iter().enumerate() {
        let Some(id) = index.get(candidate.key().as_str())?.map(|v| v.value()) else {
            continue;
        };
        if position == 0 {
            existing = Some(id);
            break;
        }
        let found: Option<Customer> = get_record(&*txn.customers()?, id)?;
        let other_on_channel = found.is_some_and(|c| {
            c.merged_into.is_some()
                || c.identities
                    .iter()
                    .any(|i| i.kind == identity.kind && i.value != identity.value)
        });
        if !other_on_channel {
            existing = Some(id);
            break;
        }
    }
    let mut customer = match existing {
        Some(id) => load(txn, id)?,
        None => Customer {
            id: next_id(txn, "customer")?,
            name: hint.name.clone().unwrap_or_default(),
            emails: Vec::new(),
            phones: Vec::new(),
            company: String::new(),
            tags: Vec::new(),
            attributes: BTreeMap::new(),
            crm_id: None,
            merged_into: None,
            identities: Vec::new(),
            created_at: now,
            updated_at: now,
        },
    };
    let mut changed = existing.is_none();
    for candidate in &candidates {
        let key = candidate.key();
        if index.get(key.as_str())?.is_none() {
            index.insert(key.as_str(), customer.id)?;
            customer.identities.push(candidate.clone());
            changed = true;
        }
    }
    drop(index);
    if let Some(email) = hint
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        && !customer
            .emails
            .iter()
            .any(|e| e.eq_ignore_ascii_case(email))
    {
        customer.emails.push(email.to_string());
        changed = true;
    }
    if let Some(phone) = hint
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        && !customer.phones.iter().any(|p| p == phone)
    {
        customer.phones.push(phone.to_string());
        changed = true;
    }
    if customer.name.is_empty()
        && let Some(name) = hint
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
    {
        customer.name = name.to_string();
        changed = true;
    }
    if changed {
        customer.updated_at = now;
        save(txn, &customer)?;
    }
    Ok(customer)
}

pub fn add_event(
    txn: &WriteTxn,
    customer_id: u64,
    name: &str,
    properties: serde_json::Value,
    occurred_at: Millis,
    now: Millis,
) -> AppResult<CustomerEvent> {
    let event = CustomerEvent {
        id: next_id(txn, "customer_event")?,
        customer_id,
        name: name.to_string(),
        properties,
        occurred_at,
        received_at: now,
    };
    txn.open_table(tables::CUSTOMER_EVENTS)?
        .insert((customer_id, event.id), codec::encode(&event).as_slice())?;
    Ok(event)
}

/// Newest first.
pub fn events(
    txn: &ReadTransaction,
    customer_id: u64,
    limit: usize,
) -> AppResult<Vec<CustomerEvent>> {
    let table = txn.open_table(tables::CUSTOMER_EVENTS)?;
    let mut out = Vec::new();
    for row in table
        .range((customer_id, 0)..=(customer_id, u64::MAX))?
        .rev()
        .take(limit)
    {
        let (_, value) = row?;
        out.push(codec::decode(value.value())?);
    }
    Ok(out)
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatch {
    pub name: Option<String>,
    pub company: Option<String>,
    pub tags: Option<Vec<String>>,
    pub attributes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(
        default,
        deserialize_with = "crate::org::service::double_option::deserialize"
    )]
    #[schemars(with = "Option<String>")]
    pub crm_id: Option<Option<String>>,
}

/// Customers whose name, e-mail, phone or company contains `q`, newest first.
pub fn search(
    txn: &ReadTransaction,
    q: Option<&str>,
    limit: usize,
    mut allowed: impl FnMut(&Customer) -> AppResult<bool>,
) -> AppResult<Vec<Customer>> {
    let q = q.map(str::to_lowercase).filter(|q| !q.is_empty());
    let table = txn.open_table(tables::CUSTOMERS)?;
    let mut out = Vec::new();
    for row in table.iter()?.rev() {
        let (_, value) = row?;
        let customer: Customer = codec::decode(value.value())?;
        if customer.merged_into.is_some() {
            continue;
        }
        let hit = match &q {
            None => true,
            Some(q) => format!(
                "{} {} {} {}",
                customer.name,
                customer.emails.join(" "),
                customer.phones.join(" "),
                customer.company
            )
            .to_lowercase()
            .contains(q),
        };
        if hit && allowed(&customer)? {
            out.push(customer);
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}
