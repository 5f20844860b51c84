//! Operations on conversations: taking in a customer's message from any channel, and what
//! employees do (reply, note, status, assignment). Every change commits before it is answered.

use redb::{ReadTransaction, ReadableTable};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::attachments::{self, CheckedFile, Owner};
use crate::auth::Caller;
use crate::auth::rbac::Permission;
use crate::channels::ChannelKind;
use crate::clock::Millis;
use crate::collaboration::hub::Event;
use crate::collaboration::mentions;
use crate::conversations::{
    Author, Conversation, Delivery, DeliveryState, Direction, MAX_TEXT_BYTES, Message, Priority,
    Status,
};
use crate::customers::{self, Customer, CustomerHint, Identity};
use crate::error::{AppError, AppResult};
use crate::state::Core;
use crate::storage::{Record, WriteTxn, codec, get_record, next_id, tables};

/// A customer's message, normalised by a channel adapter.
#[derive(Debug, Clone)]
pub struct InboundMessage {
    pub channel_id: u64,
    pub channel_kind: ChannelKind,
    pub identity: Identity,
    pub customer: CustomerHint,
    /// The channel's own message id; a second message with the same id is a duplicate.
    pub channel_message_id: Option<String>,
    pub subject: Option<String>,
    pub text: String,
    /// A conversation the channel found the message belongs to (e-mail threading). Honoured
    /// when it is the same customer's, on the same channel, and not closed; otherwise the usual
    /// rules choose.
    pub conversation_hint: Option<u64>,
    /// E-mail headers and the untrimmed text, kept on the message.
    pub email: Option<crate::conversations::EmailMeta>,
    /// Files that came with the message, already checked.
    pub attachments: Vec<CheckedFile>,
    /// Files the customer uploaded before sending the message (the widget's uploads).
    pub uploaded: Vec<u64>,
    /// The emotion the text reads as, when the channel read it before its write (so the
    /// writer thread need not); read in `ingest` otherwise.
    pub emotion: Option<crate::assist::emotion::Emotion>,
}

impl InboundMessage {
    /// Reads the text's emotion now, outside the write.
    pub fn read_emotion(&mut self) {
        if self.emotion.is_none() {
            self.emotion = Some(crate::assist::emotion::models().read(&self.text).emotion);
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Ingested {
    pub customer_id: u64,
    pub conversation_id: u64,
    pub message_id: u64,
    /// The channel had delivered this message before; nothing new was stored.
    pub duplicate: bool,
}

/// What `ingest` did: the answer for the channel and, when something new was stored, the
/// conversation and message to announce once the write has committed.
#[derive(Debug, Clone)]
pub struct IngestOutcome {
    pub ingested: Ingested,
    pub stored: Option<(Conversation, Message)>,
}

/// Checks a message's text; it may be empty only when files carry the message.
pub fn check_text(text: &str, has_files: bool) -> AppResult<()> {
    if text.trim().is_empty() && !has_files {
        return Err(AppError::field("text", "must not be empty"));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(AppError::field(
            "text",
            format!("must be at most {MAX_TEXT_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn dedupe_key(channel_id: u64, channel_message_id: &str) -> String {
    format!("{channel_id}:{channel_message_id}")
}

pub fn get(txn: &ReadTransaction, id: u64) -> AppResult<Conversation> {
    get_record(&txn.open_table(tables::CONVERSATIONS)?, id)?
        .ok_or_else(|| AppError::not_found("conversation"))
}

fn load(txn: &WriteTxn, id: u64) -> AppResult<Conversation> {
    get_record(&*txn.conversations()?, id)?.ok_or_else(|| AppError::not_found("conversation"))
}

/// Stores the conversation and keeps the last-activity index in step with it.
fn save(txn: &WriteTxn, conversation: &Conversation) -> AppResult<()> {
    let previous = txn
        .conversations()?
        .insert(conversation.id, codec::encode(conversation).as_slice())?
        .map(|old| last_message_at_of(old.value()))
        .transpose()?;
    index_activity(txn, conversation, previous)
}

/// `save` for a caller that knows the stored `last_message_at` (`None`: not stored yet), which
/// spares decoding the replaced record on the inbound path.
fn save_known(
    txn: &WriteTxn,
    conversation: &Conversation,
    previous: Option<Millis>,
) -> AppResult<()> {
    txn.conversations()?
        .insert(conversation.id, codec::encode(conversation).as_slice())?;
    index_activity(txn, conversation, previous)
}

fn index_activity(
    txn: &WriteTxn,
    conversation: &Conversation,
    previous: Option<Millis>,
) -> AppResult<()> {
    if previous != Some(conversation.last_message_at) {
        let mut index = txn.conversation_activity()?;
        if let Some(at) = previous {
            index.remove((activity_key(at), conversation.id))?;
        }
        index.insert(
            (activity_key(conversation.last_message_at), conversation.id),
            (),
        )?;
    }
    Ok(())
}

fn activity_key(at: Millis) -> u64 {
    at.max(0) as u64
}

/// A stored conversation's `last_message_at`, without decoding the rest (it runs on every
/// save, inbound messages included).
fn last_message_at_of(stored: &[u8]) -> AppResult<Millis> {
    #[derive(Deserialize)]
    struct LastActivity {
        last_message_at: Millis,
    }
    match stored.split_first() {
        Some((&version, body)) if version == <Conversation as Record>::VERSION => {
            serde_json::from_slice::<LastActivity>(body)
                .map(|a| a.last_message_at)
                .map_err(|e| AppError::internal(format!("damaged conversation value: {e}")))
        }
        _ => Ok(codec::decode::<Conversation>(stored)?.last_message_at),
    }
}

/// Builds the last-activity index from the conversations (the migration that introduced it).
pub fn index_all_by_activity(txn: &WriteTxn) -> AppResult<()> {
    let conversations = txn.open_table(tables::CONVERSATIONS)?;
    let mut index = txn.open_table(tables::CONVERSATION_ACTIVITY)?;
    for row in conversations.iter()? {
        let (id, value) = row?;
        index.insert(
            (activity_key(last_message_at_of(value.value())?), id.value()),
            (),
        )?;
    }
    Ok(())
}

/// The files a new message carries.
pub enum Files<'a> {
    None,
    /// Uploaded earlier by the message's author.
    Uploaded {
        ids: &'a [u64],
        owner: Owner,
    },
    /// Arrived with the message itself.
    Received {
        files: &'a [CheckedFile],
        owner: Owner,
    },
}

#[allow(clippy::too_many_arguments)]
fn append(
    txn: &WriteTxn,
    conversation: &mut Conversation,
    direction: Direction,
    author: Author,
    text: &str,
    channel_message_id: Option<String>,
    files: Files<'_>,
    now: Millis,
) -> AppResult<Message> {
    append_with(
        txn,
        conversation,
        direction,
        author,
        text,
        channel_message_id,
        files,
        None,
        None,
        now,
    )
}

/// Appends a system event (a status, assignment or tag change) and saves the conversation.
fn record_event(
    txn: &WriteTxn,
    conversation: &mut Conversation,
    author: Author,
    text: &str,
    now: Millis,
) -> AppResult<Message> {
    let message = append(
        txn,
        conversation,
        Direction::System,
        author,
        text,
        None,
        Files::None,
        now,
    )?;
    save(txn, conversation)?;
    Ok(message)
}

#[allow(clippy::too_many_arguments)]
fn append_with(
    txn: &WriteTxn,
    conversation: &mut Conversation,
    direction: Direction,
    author: Author,
    text: &str,
    channel_message_id: Option<String>,
    files: Files<'_>,
    email: Option<crate::conversations::EmailMeta>,
    emotion: Option<crate::assist::emotion::Emotion>,
    now: Millis,
) -> AppResult<Message> {
    let id = next_id(txn, "message")?;
    let attachments = match files {
        Files::None => Vec::new(),
        Files::Uploaded { ids, owner } => attachments::bind(txn, ids, &owner, conversation.id, id)?,
        Files::Received { files, owner } => {
            let mut ids = Vec::with_capacity(files.len());
            for file in files {
                ids.push(attachments::insert(txn, file, owner.clone(), now)?.id);
            }
            attachments::bind(txn, &ids, &owner, conversation.id, id)?
        }
    };
    let message = Message {
        id,
        attachments,
        mentions: Vec::new(),
        conversation_id: conversation.id,
        direction,
        author,
        text: text.to_string(),
        channel_message_id,
        delivery: (direction == Direction::Outbound).then_some(Delivery {
            state: DeliveryState::Queued,
            attempts: 0,
            failure: None,
            updated_at: now,
        }),
        created_at: now,
        sensitive: Vec::new(),
        emotion,
        rude: None,
        email,
    };
    txn.messages()?.insert(
        (conversation.id, message.id),
        codec::encode(&message).as_slice(),
    )?;
    conversation.message_count += 1;
    conversation.last_message_at = now;
    conversation.updated_at = now;
    Ok(message)
}

/// Stores a customer's message: finds or creates the customer and the conversation (reopening
/// a resolved one), appends the message, and remembers the channel's message id so a redelivery
/// is recognised. Runs inside the caller's write.
pub fn ingest(txn: &WriteTxn, inbound: &InboundMessage, now: Millis) -> AppResult<IngestOutcome> {
    check_text(
        &inbound.text,
        !inbound.attachments.is_empty() || !inbound.uploaded.is_empty(),
    )?;
    if let Some(external) = &inbound.channel_message_id {
        let key = dedupe_key(inbound.channel_id, external);
        let found = txn
            .channel_messages()?
            .get(key.as_str())?
            .map(|found| found.value());
        if let Some((conversation_id, message_id)) = found {
            let conversation = load(txn, conversation_id)?;
            let ingested = Ingested {
                customer_id: conversation.customer_id,
                conversation_id,
                message_id,
                duplicate: true,
            };
            return Ok(IngestOutcome {
                ingested,
                stored: None,
            });
        }
    }
    let customer = customers::find_or_create(txn, &inbound.identity, &inbound.customer, now)?;
    let hinted = match inbound.conversation_hint {
        Some(id) => get_record::<Conversation>(&*txn.conversations()?, id)?.filter(|c| {
            // A web chat's replies to a visitor who left go out by e-mail; the customer's
            // answer to such a mail continues the chat.
            c.customer_id == customer.id
                && (c.channel_id == inbound.channel_id || c.channel_kind == ChannelKind::Web)
                && c.status != Status::Closed
        }),
        None => None,
    };
    let current = match hinted {
        Some(c) => Some(c),
        None => current_conversation(txn, customer.id, inbound.channel_id)?,
    };
    let stored_last_message_at = current.as_ref().map(|c| c.last_message_at);
    let mut conversation = match current {
        Some(mut c) => {
            match c.status {
                Status::Resolved => {
                    c.status = Status::Open;
                    c.reopen_count += 1;
                    c.last_reopened_at = Some(now);
                }
                Status::Pending | Status::Snoozed => {
                    c.status = Status::Open;
                    set_snooze(txn, &mut c, None)?;
                }
                Status::Open | Status::Closed => {}
            }
            c
        }
        None => start_conversation(
            txn,
            customer.id,
            inbound.channel_id,
            inbound.channel_kind,
            inbound.subject.as_deref().unwrap_or_default(),
            now,
        )?,
    };
    let emotion = inbound
        .emotion
        .unwrap_or_else(|| crate::assist::emotion::models().read(&inbound.text).emotion);
    let message = append_with(
        txn,
        &mut conversation,
        Direction::Inbound,
        Author::Customer {
            customer_id: customer.id,
        },
        &inbound.text,
        inbound.channel_message_id.clone(),
        if inbound.uploaded.is_empty() {
            Files::Received {
                files: &inbound.attachments,
                owner: Owner::Channel {
                    channel_id: inbound.channel_id,
                },
            }
        } else {
            Files::Uploaded {
                ids: &inbound.uploaded,
                owner: Owner::Customer {
                    customer_id: customer.id,
                },
            }
        },
        inbound.email.clone(),
        Some(emotion),
        now,
    )?;
    let (reading, turned_angry) = crate::conversations::ConversationEmotion::next(
        conversation.emotion,
        emotion,
        message.id,
        now,
    );
    conversation.emotion = Some(reading);
    if turned_angry && conversation.priority < Priority::High {
        // An angry customer waits less: routing reads the raised priority.
        conversation.priority = Priority::High;
    }
    conversation.reply_to = Some(inbound.identity.clone());
    save_known(txn, &conversation, stored_last_message_at)?;
    if let Some(external) = &inbound.channel_message_id {
        let key = dedupe_key(inbound.channel_id, external);
        txn.channel_messages()?
            .insert(key.as_str(), (conversation.id, message.id))?;
    }
    let ingested = Ingested {
        customer_id: customer.id,
        conversation_id: conversation.id,
        message_id: message.id,
        duplicate: false,
    };
    Ok(IngestOutcome {
        ingested,
        stored: Some((conversation, message)),
    })
}

/// A new open conversation of the customer on a channel, indexed under the customer.
fn start_conversation(
    txn: &WriteTxn,
    customer_id: u64,
    channel_id: u64,
    channel_kind: ChannelKind,
    subject: &str,
    now: Millis,
) -> AppResult<Conversation> {
    let c = Conversation {
        id: next_id(txn, "conversation")?,
        customer_id,
        channel_id,
        channel_kind,
        subject: subject.chars().take(300).collect(),
        status: Status::Open,
        priority: Priority::Normal,
        assignee_id: None,
        team_id: None,
        tags: Vec::new(),
        snoozed_until: None,
        created_at: now,
        updated_at: now,
        last_message_at: now,
        first_response_at: None,
        last_response_at: None,
        response_count: 0,
        resolved_at: None,
        reopen_count: 0,
        last_reopened_at: None,
        message_count: 0,
        reply_to: None,
        participants: Vec::new(),
        customer_read_up_to: 0,
        employee_read_up_to: 0,
        emotion: None,
    };
    txn.customer_conversations()?
        .insert((customer_id, c.id), ())?;
    Ok(c)
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConversation {
    /// The channel replies go through.
    pub channel_id: u64,
    /// An existing customer, or `customer` to find or create one by e-mail or phone.
    pub customer_id: Option<u64>,
    #[serde(default)]
    pub customer: CustomerHint,
    #[serde(default)]
    pub subject: String,
    /// What the customer asked (by phone, in person, in a letter), recorded as their message.
    pub text: String,
}

/// An employee opens a conversation on a customer's behalf (a phone call, a walk-in, a
/// forwarded letter): the customer's words become its first message, and the employee who
/// recorded it owns it.
pub async fn create(
    core: &Core,
    caller: &Caller,
    input: NewConversation,
) -> AppResult<Conversation> {
    caller.require(Permission::ConversationsReply)?;
    check_text(&input.text, false)?;
    let caller = caller.clone();
    let now = core.now();
    let (conversation, message) = core
        .store
        .write(move |txn| {
            let channel = crate::channels::get_in_write(txn, input.channel_id)?;
            let customer = match input.customer_id {
                Some(id) => {
                    let customer = customers::load(txn, id)?;
                    // Only someone who may see this customer may open a conversation for them.
                    let visible = caller
                        .access
                        .is_everywhere(Permission::ConversationsReadAll)
                        || {
                            let index = txn.open_table(tables::CUSTOMER_CONVERSATIONS)?;
                            let mut any = false;
                            for row in index.range((id, 0)..=(id, u64::MAX))? {
                                if visible_to(&caller, &load(txn, row?.0.value().1)?) {
                                    any = true;
                                    break;
                                }
                            }
                            any
                        };
                    if !visible || customer.merged_into.is_some() {
                        return Err(AppError::not_found("customer"));
                    }
                    customer
                }
                None => {
                    let identity = match (&input.customer.email, &input.customer.phone) {
                        (Some(email), _) if !email.trim().is_empty() => {
                            if !email.contains('@') || email.len() > 254 {
                                return Err(AppError::field(
                                    "customer.email",
                                    "is not an e-mail address",
                                ));
                            }
                            Identity::new("email", email.trim())
                        }
                        (_, Some(phone)) if !phone.trim().is_empty() => {
                            Identity::new("phone", phone.trim())
                        }
                        _ => {
                            return Err(AppError::field(
                                "customer",
                                "give customer_id, or the customer's email or phone",
                            ));
                        }
                    };
                    customers::find_or_create(txn, &identity, &input.customer, now)?
                }
            };
            let reply_to = customer
                .identities
                .iter()
                .find(|i| i.kind == "email" || i.kind == "phone")
                .cloned();
            let mut conversation = start_conversation(
                txn,
                customer.id,
                channel.id,
                channel.kind,
                &input.subject,
                now,
            )?;
            let message = append(
                txn,
                &mut conversation,
                Direction::Inbound,
                Author::Customer {
                    customer_id: customer.id,
                },
                &input.text,
                None,
                Files::None,
                now,
            )?;
            conversation.reply_to = reply_to;
            conversation.assignee_id = Some(caller.employee_id);
            conversation.team_id = Some(caller.department_id);
            save(txn, &conversation)?;
            Ok((conversation, message))
        })
        .await?;
    announce(core, conversation.clone(), message);
    Ok(conversation)
}

/// The customer's newest conversation on this channel that is not closed.
fn current_conversation(
    txn: &WriteTxn,
    customer_id: u64,
    channel_id: u64,
) -> AppResult<Option<Conversation>> {
    let ids: Vec<u64> = {
        let index = txn.customer_conversations()?;
        let mut ids = Vec::new();
        for row in index
            .range((customer_id, 0)..=(customer_id, u64::MAX))?
            .rev()
        {
            ids.push(row?.0.value().1);
        }
        ids
    };
    for id in ids {
        let conversation = load(txn, id)?;
        if conversation.channel_id == channel_id && conversation.status != Status::Closed {
            return Ok(Some(conversation));
        }
    }
    Ok(None)
}

/// Sets or clears when a snoozed conversation wakes, keeping the wake-up index in step.
fn set_snooze(
    txn: &WriteTxn,
    conversation: &mut Conversation,
    until: Option<Millis>,
) -> AppResult<()> {
    let mut index = txn.open_table(tables::SNOOZES)?;
    if let Some(previous) = conversation.snoozed_until {
        index.remove((previous.max(0) as u64, conversation.id))?;
    }
    if let Some(next) = until {
        index.insert((next.max(0) as u64, conversation.id), ())?;
    }
    conversation.snoozed_until = until;
    Ok(())
}

/// Wakes snoozed conversations whose time has come, until the task is aborted.
pub async fn wake_snoozed(core: std::sync::Arc<Core>) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let now = core.now();
        let due = core
            .store
            .read(move |txn| {
                let index = txn.open_table(tables::SNOOZES)?;
                let mut due = Vec::new();
                for row in index.range(..=(now.max(0) as u64, u64::MAX))?.take(256) {
                    due.push(row?.0.value().1);
                }
                Ok(due)
            })
            .await
            .unwrap_or_default();
        for id in due {
            let woken = core
                .store
                .write(move |txn| {
                    let mut conversation = load(txn, id)?;
                    if conversation.status != Status::Snoozed {
                        set_snooze(txn, &mut conversation, None)?;
                        save(txn, &conversation)?;
                        return Ok(None);
                    }
                    set_snooze(txn, &mut conversation, None)?;
                    conversation.status = Status::Open;
                    let message = record_event(
                        txn,
                        &mut conversation,
                        Author::System,
                        "status: snoozed -> open",
                        now,
                    )?;
                    Ok(Some((conversation, message)))
                })
                .await;
            match woken {
                Ok(Some((conversation, message))) => {
                    announce(&core, conversation, message);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(conversation = id, error = %e, "could not wake a snoozed conversation")
                }
            }
        }
    }
}

/// Whether the caller may see this conversation.
pub fn visible_to(caller: &Caller, conversation: &Conversation) -> bool {
    let access = &caller.access;
    if access.is_everywhere(Permission::ConversationsReadAll) {
        return true;
    }
    let tree = &caller.index.departments;
    if let Some(team) = conversation.team_id {
        // read_all limited to departments: those departments' conversations.
        if access.allows_in(Permission::ConversationsReadAll, team, tree) {
            return true;
        }
        // read_department: the caller's own department (and below), within the grant's scope.
        if tree.is_within(team, caller.department_id)
            && access.allows_in(Permission::ConversationsReadDepartment, team, tree)
        {
            return true;
        }
    }
    (conversation.assignee_id == Some(caller.employee_id)
        || conversation.participants.contains(&caller.employee_id))
        && (access.has(Permission::ConversationsReadAssigned)
            || access.has(Permission::ConversationsReadDepartment)
            || access.has(Permission::ConversationsReadAll))
}

/// The caller may do `permission` (reply, assign, ...) on this conversation: it must be visible
/// to them, and the permission must reach it: everywhere, in the conversation's team, or, for a
/// conversation assigned to them, anywhere they hold it.
pub fn require_can_act(
    caller: &Caller,
    conversation: &Conversation,
    permission: Permission,
) -> AppResult<()> {
    require_visible(caller, conversation)?;
    let access = &caller.access;
    let reaches = access.is_everywhere(permission)
        || conversation
            .team_id
            .is_some_and(|team| access.allows_in(permission, team, &caller.index.departments))
        || ((conversation.assignee_id == Some(caller.employee_id)
            || conversation.participants.contains(&caller.employee_id))
            && access.has(permission));
    if reaches {
        Ok(())
    } else {
        Err(AppError::forbidden(format!(
            "your {} permission does not reach this conversation",
            permission.as_str()
        )))
    }
}

fn require_visible(caller: &Caller, conversation: &Conversation) -> AppResult<()> {
    if visible_to(caller, conversation) {
        Ok(())
    } else {
        // Not "forbidden": whether a conversation exists is itself not to be revealed.
        Err(AppError::not_found("conversation"))
    }
}

/// Whether the caller may see (or, with `customers.manage`, change) this customer: holding
/// `permission`, someone who sees every conversation sees every customer; anyone else only the
/// customers of conversations they may see. A part-time responder does not browse the CRM.
pub fn customer_visible(
    txn: &ReadTransaction,
    caller: &Caller,
    customer_id: u64,
    permission: Permission,
) -> AppResult<bool> {
    if !caller.access.has(permission) {
        return Ok(false);
    }
    if caller.access.is_everywhere(permission)
        && caller
            .access
            .is_everywhere(Permission::ConversationsReadAll)
    {
        return Ok(true);
    }
    let index = txn.open_table(tables::CUSTOMER_CONVERSATIONS)?;
    for row in index.range((customer_id, 0)..=(customer_id, u64::MAX))? {
        let id = row?.0.value().1;
        if visible_to(caller, &get(txn, id)?) {
            return Ok(true);
        }
    }
    Ok(false)
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationFilter {
    pub status: Option<Status>,
    /// An employee id, or `me`.
    pub assignee: Option<String>,
    /// Only conversations nobody is assigned to.
    pub unassigned: Option<bool>,
    pub team_id: Option<u64>,
    /// Only conversations of the caller's own department and those below it.
    pub my_team: Option<bool>,
    /// Only conversations the caller was @mentioned in.
    pub mentioned: Option<bool>,
    pub tag: Option<String>,
    pub channel_kind: Option<ChannelKind>,
    pub customer_id: Option<u64>,
    /// Text in the subject.
    pub q: Option<String>,
    /// `created` (newest first, the default) or `last_activity` (latest message first).
    pub sort: Option<ConversationSort>,
    /// With `sort=created`: page backwards from this conversation id (exclusive).
    pub before_id: Option<u64>,
    /// With `sort=last_activity`: the `next_before` cursor of the previous page.
    pub before: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversationSort {
    #[default]
    Created,
    LastActivity,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ConversationPage {
    pub items: Vec<Conversation>,
    /// With `sort=created`: pass as `before_id` for the next page.
    pub next_before_id: Option<u64>,
    /// With `sort=last_activity`: pass as `before` for the next page.
    pub next_before: Option<String>,
}

/// The `last_activity` cursor: `<last message ms>-<conversation id>`.
fn activity_cursor(c: &Conversation) -> String {
    format!("{}-{}", activity_key(c.last_message_at), c.id)
}

fn parse_activity_cursor(cursor: &str) -> AppResult<(u64, u64)> {
    cursor
        .split_once('-')
        .and_then(|(at, id)| Some((at.parse().ok()?, id.parse().ok()?)))
        .ok_or_else(|| {
            AppError::new(
                crate::error::ErrorCode::InvalidQuery,
                "before: must be the next_before cursor of a previous page",
            )
        })
}

pub fn list(
    txn: &ReadTransaction,
    caller: &Caller,
    filter: &ConversationFilter,
) -> AppResult<ConversationPage> {
    let limit = filter.limit.unwrap_or(25).clamp(1, 200);
    let assignee = match filter.assignee.as_deref() {
        None => None,
        Some("me") => Some(caller.employee_id),
        Some(id) => Some(id.parse::<u64>().map_err(|_| {
            AppError::new(
                crate::error::ErrorCode::InvalidQuery,
                "assignee: must be an employee id or `me`",
            )
        })?),
    };
    let q = filter
        .q
        .as_deref()
        .map(str::to_lowercase)
        .filter(|q| !q.is_empty());
    let table = txn.open_table(tables::CONVERSATIONS)?;
    let sort = filter.sort.unwrap_or_default();
    let candidates: Box<dyn Iterator<Item = AppResult<Conversation>>> = match sort {
        ConversationSort::Created => Box::new(
            table
                .range(..filter.before_id.unwrap_or(u64::MAX))?
                .rev()
                .map(|row| codec::decode(row?.1.value())),
        ),
        ConversationSort::LastActivity => {
            let before = match filter.before.as_deref() {
                Some(cursor) => parse_activity_cursor(cursor)?,
                None => (u64::MAX, u64::MAX),
            };
            let index = txn.open_table(tables::CONVERSATION_ACTIVITY)?;
            let table = &table;
            Box::new(index.range(..before)?.rev().map(move |row| {
                let id = row?.0.value().1;
                get_record(table, id)?.ok_or_else(|| {
                    AppError::internal(format!("conversation {id} is indexed but missing"))
                })
            }))
        }
    };
    let mut items = Vec::new();
    for c in candidates {
        let c = c?;
        let wanted = filter.status.is_none_or(|s| s == c.status)
            && assignee.is_none_or(|a| c.assignee_id == Some(a))
            && (!filter.unassigned.unwrap_or(false) || c.assignee_id.is_none())
            && filter.team_id.is_none_or(|t| c.team_id == Some(t))
            && (!filter.my_team.unwrap_or(false)
                || c.team_id
                    .is_some_and(|t| caller.index.departments.is_within(t, caller.department_id)))
            && (!filter.mentioned.unwrap_or(false) || c.participants.contains(&caller.employee_id))
            && filter
                .tag
                .as_deref()
                .is_none_or(|tag| c.tags.iter().any(|t| t.eq_ignore_ascii_case(tag)))
            && filter.channel_kind.is_none_or(|k| k == c.channel_kind)
            && filter.customer_id.is_none_or(|id| id == c.customer_id)
            && q.as_ref()
                .is_none_or(|q| c.subject.to_lowercase().contains(q));
        if wanted && visible_to(caller, &c) {
            items.push(c);
            if items.len() == limit {
                break;
            }
        }
    }
    let last = (items.len() == limit).then(|| items.last()).flatten();
    let (next_before_id, next_before) = match sort {
        ConversationSort::Created => (last.map(|c| c.id), None),
        ConversationSort::LastActivity => (None, last.map(activity_cursor)),
    };
    Ok(ConversationPage {
        items,
        next_before_id,
        next_before,
    })
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ConversationDetail {
    pub conversation: Conversation,
    pub customer: Customer,
    pub messages: Vec<Message>,
    /// The customer's other conversations, newest first.
    pub history: Vec<Conversation>,
}

pub fn detail(txn: &ReadTransaction, caller: &Caller, id: u64) -> AppResult<ConversationDetail> {
    let conversation = get(txn, id)?;
    require_visible(caller, &conversation)?;
    let customer = customers::get(txn, conversation.customer_id)?;
    let messages = messages(txn, id)?;
    let mut history = Vec::new();
    {
        let index = txn.open_table(tables::CUSTOMER_CONVERSATIONS)?;
        for row in index
            .range((customer.id, 0)..=(customer.id, u64::MAX))?
            .rev()
        {
            let other = row?.0.value().1;
            if other != id {
                let c = get(txn, other)?;
                if visible_to(caller, &c) {
                    history.push(c);
                }
            }
        }
    }
    Ok(ConversationDetail {
        conversation,
        customer,
        messages,
        history,
    })
}

/// An employee's upload: checked, stored unbound until a message of theirs sends it.
pub async fn upload(
    core: &Core,
    caller: &Caller,
    filename: &str,
    declared_type: Option<&str>,
    bytes: bytes::Bytes,
) -> AppResult<attachments::Attachment> {
    caller.require(Permission::ConversationsReply)?;
    let file = attachments::check(&core.config.attachments, filename, declared_type, bytes)?;
    let owner = Owner::Employee {
        employee_id: caller.employee_id,
    };
    let now = core.now();
    core.store
        .write(move |txn| attachments::insert(txn, &file, owner.clone(), now))
        .await
}

/// A file and its content for an employee: one attached to a conversation they may see, or
/// their own upload not yet sent.
pub fn attachment(
    txn: &ReadTransaction,
    caller: &Caller,
    id: u64,
) -> AppResult<(attachments::Attachment, Vec<u8>)> {
    let attachment = attachments::get(txn, id)?;
    let allowed = match attachment.conversation_id {
        Some(conversation_id) => visible_to(caller, &get(txn, conversation_id)?),
        None => {
            attachment.owner
                == Owner::Employee {
                    employee_id: caller.employee_id,
                }
        }
    };
    if !allowed {
        return Err(AppError::not_found("attachment"));
    }
    let content = attachments::content(txn, &attachment)?;
    Ok((attachment, content))
}

pub fn messages(txn: &ReadTransaction, conversation_id: u64) -> AppResult<Vec<Message>> {
    let table = txn.open_table(tables::MESSAGES)?;
    let mut out = Vec::new();
    for row in table.range((conversation_id, 0)..=(conversation_id, u64::MAX))? {
        let (_, value) = row?;
        out.push(codec::decode(value.value())?);
    }
    Ok(out)
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    pub text: String,
    /// An internal note, seen only by employees.
    #[serde(default)]
    pub note: bool,
    /// Files the employee uploaded (`POST /api/v1/attachments`) to send with it.
    #[serde(default)]
    pub attachments: Vec<u64>,
    /// Employees a note mentions (besides `@username`s in its text); they are notified and may
    /// see the conversation from then on.
    #[serde(default)]
    pub mentions: Vec<u64>,
    /// Send a reply although it contains words the organisation's dictionaries ask to confirm
    /// (severity `warn`); words that block are never sent.
    #[serde(default)]
    pub confirm_sensitive: bool,
}

pub async fn post_message(
    core: &Core,
    caller: &Caller,
    id: u64,
    input: NewMessage,
) -> AppResult<Message> {
    caller.require(Permission::ConversationsReply)?;
    check_text(&input.text, !input.attachments.is_empty())?;
    // Checked before anything is stored: a refused reply leaves no trace but the error.
    let sensitive: Vec<crate::conversations::SensitiveNote> = if input.note {
        Vec::new()
    } else {
        let matches = crate::assist::ops::check_reply(core, caller, &input.text);
        crate::assist::dictionary::verdict(&matches, input.confirm_sensitive)?;
        matches.iter().map(Into::into).collect()
    };
    let rude = if input.note {
        None
    } else {
        Some(crate::assist::emotion::models().rudeness(&input.text)).filter(|r| r.rude)
    };
    let actor_caller = caller.clone();
    let now = core.now();
    let employee_id = caller.employee_id;
    // A web chat visitor who has closed the widget gets the reply by e-mail as well; whether
    // they are connected is known here, outside the write.
    let (channel_id, customer_id) = core
        .store
        .read(move |txn| get(txn, id).map(|c| (c.channel_id, c.customer_id)))
        .await?;
    let visitor_connected = core.hub.visitor_connected(channel_id, customer_id);
    core.store
        .write(move |txn| {
            let mut conversation = load(txn, id)?;
            // Checked on the committed state, inside the write: nothing can move it in between.
            require_can_act(&actor_caller, &conversation, Permission::ConversationsReply)?;
            if conversation.status == Status::Closed && !input.note {
                return Err(AppError::conflict(
                    "the conversation is closed; the customer's next message opens a new one",
                ));
            }
            let direction = if input.note {
                Direction::Note
            } else {
                Direction::Outbound
            };
            let message = append(
                txn,
                &mut conversation,
                direction,
                Author::Employee { employee_id },
                &input.text,
                None,
                Files::Uploaded {
                    ids: &input.attachments,
                    owner: Owner::Employee { employee_id },
                },
                now,
            )?;
            let mut message = message;
            if !sensitive.is_empty() || rude.is_some() {
                message.sensitive = sensitive.clone();
                message.rude = rude.clone();
                txn.messages()?.insert(
                    (message.conversation_id, message.id),
                    codec::encode(&message).as_slice(),
                )?;
                if sensitive
                    .iter()
                    .any(|s| s.severity == crate::assist::sensitive::Severity::Warn)
                {
                    crate::audit::append(
                        txn,
                        now,
                        crate::audit::AuditEvent::new(
                            &actor_caller.actor,
                            "assist.sensitive_confirmed",
                        )
                        .target(format!("message:{}", message.id))
                        .details(serde_json::json!({
                            "conversation_id": conversation.id,
                            "words": sensitive,
                        })),
                    )?;
                }
            }
            let mut notifications = Vec::new();
            if direction == Direction::Note {
                let mentioned = mentions::resolve(txn, &input.text, &input.mentions)?;
                for employee in mentioned.iter().filter(|e| **e != employee_id) {
                    if !conversation.participants.contains(employee) {
                        conversation.participants.push(*employee);
                    }
                    notifications.push(mentions::notify_mention(
                        txn,
                        *employee,
                        conversation.id,
                        message.id,
                        employee_id,
                        &input.text,
                        now,
                    )?);
                }
                if !mentioned.is_empty() {
                    message.mentions = mentioned;
                    txn.open_table(tables::MESSAGES)?.insert(
                        (message.conversation_id, message.id),
                        codec::encode(&message).as_slice(),
                    )?;
                }
            } else if !input.mentions.is_empty() {
                return Err(AppError::field(
                    "mentions",
                    "only internal notes mention colleagues",
                ));
            }
            if direction == Direction::Outbound {
                if conversation.channel_kind == ChannelKind::Web {
                    match crate::channels::web::email_fallback(
                        txn,
                        &conversation,
                        visitor_connected,
                    )? {
                        Some(email_channel) => crate::channels::delivery::enqueue(
                            txn,
                            &message,
                            email_channel,
                            now,
                        )?,
                        // In the widget's history once stored: nothing more to deliver.
                        None => mark_sent(txn, &mut message, now)?,
                    }
                } else {
                    crate::channels::delivery::enqueue(
                        txn,
                        &message,
                        conversation.channel_id,
                        now,
                    )?;
                }
            }
            if direction == Direction::Outbound {
                conversation.first_response_at.get_or_insert(now);
                conversation.last_response_at = Some(now);
                conversation.response_count += 1;
                if conversation.assignee_id.is_none() {
                    // Whoever answers an unassigned conversation takes it.
                    conversation.assignee_id = Some(employee_id);
                }
            }
            save(txn, &conversation)?;
            Ok((conversation, message, notifications))
        })
        .await
        .map(|(conversation, message, notifications)| {
            if message.direction == Direction::Outbound {
                core.outbox_ready.notify_one();
            }
            for notification in notifications {
                core.hub.notify_employee(
                    notification.employee_id,
                    &serde_json::json!({ "type": "notification.created", "notification": notification }),
                );
            }
            announce(core, conversation, message)
        })
}

/// Records a message as handed over to its channel, within its write.
fn mark_sent(txn: &WriteTxn, message: &mut Message, now: Millis) -> AppResult<()> {
    if let Some(delivery) = message.delivery.as_mut() {
        delivery.state = DeliveryState::Sent;
        delivery.updated_at = now;
    }
    txn.open_table(tables::MESSAGES)?.insert(
        (message.conversation_id, message.id),
        codec::encode(&*message).as_slice(),
    )?;
    Ok(())
}

/// Announces a message stored by a channel adapter's own write (see `announce`).
pub fn announce_stored(core: &Core, conversation: Conversation, message: Message) {
    announce(core, conversation, message);
}

/// Records how far the customer has read (the widget's read receipts) and tells the consoles.
pub async fn mark_read_by_customer(core: &Core, conversation_id: u64, up_to: u64) -> AppResult<()> {
    advance_read_mark(core, None, conversation_id, up_to).await?;
    Ok(())
}

/// Records that an employee who may see the conversation has read it up to a message, and
/// tells the customer's widget (read receipts) and the other consoles.
pub async fn mark_read_by_employee(
    core: &Core,
    caller: &Caller,
    conversation_id: u64,
    up_to: u64,
) -> AppResult<()> {
    if let Some(conversation) =
        advance_read_mark(core, Some(caller.clone()), conversation_id, up_to).await?
    {
        crate::channels::web::push_read(core, &conversation);
    }
    Ok(())
}

/// Moves the customer's read mark (no caller) or the employees' (a caller who may see the
/// conversation) forward to `up_to`, never past the last message nor backwards; announces and
/// returns the conversation when it moved.
async fn advance_read_mark(
    core: &Core,
    reader: Option<Caller>,
    conversation_id: u64,
    up_to: u64,
) -> AppResult<Option<Conversation>> {
    let changed = core
        .store
        .write(move |txn| {
            let mut conversation = load(txn, conversation_id)?;
            if let Some(caller) = &reader {
                require_visible(caller, &conversation)?;
            }
            let up_to = up_to.min(last_message_id(txn, conversation_id)?);
            let mark = match reader {
                Some(_) => &mut conversation.employee_read_up_to,
                None => &mut conversation.customer_read_up_to,
            };
            if up_to <= *mark {
                return Ok(None);
            }
            *mark = up_to;
            save(txn, &conversation)?;
            Ok(Some(conversation))
        })
        .await?;
    if let Some(conversation) = &changed {
        core.hub.publish(&Event::ConversationUpdated {
            conversation: conversation.clone(),
        });
    }
    Ok(changed)
}

/// Tells the customer (where the channel shows it) and the other consoles that an employee is
/// typing in a conversation they may see.
pub async fn employee_typing(core: &Core, caller: &Caller, conversation_id: u64) -> AppResult<()> {
    let conversation = core
        .store
        .read(move |txn| get(txn, conversation_id))
        .await?;
    require_visible(caller, &conversation)?;
    let employee_id = caller.employee_id;
    let name = core
        .store
        .read(move |txn| {
            let e: Option<crate::org::Employee> =
                get_record(&txn.open_table(tables::EMPLOYEES)?, employee_id)?;
            Ok(e.map(|e| {
                if e.display_name.is_empty() {
                    e.username
                } else {
                    e.display_name
                }
            }))
        })
        .await?
        .unwrap_or_default();
    crate::channels::web::push_typing(core, &conversation, &name);
    core.hub.publish(&Event::Typing {
        conversation,
        typist: crate::collaboration::hub::Typist::Employee { employee_id, name },
    });
    Ok(())
}

fn last_message_id(txn: &WriteTxn, conversation_id: u64) -> AppResult<u64> {
    let table = txn.open_table(tables::MESSAGES)?;
    let last = table
        .range((conversation_id, 0)..=(conversation_id, u64::MAX))?
        .next_back()
        .transpose()?
        .map(|(k, _)| k.value().1)
        .unwrap_or(0);
    Ok(last)
}

/// Tells the consoles that may see it about a committed message, and the customer's widgets
/// when it is a web conversation.
fn announce(core: &Core, conversation: Conversation, message: Message) -> Message {
    // Consoles first: the customer's widget may answer (a read mark) at once, and the console
    // should not hear that answer before the message it answers.
    core.routing.observe(&conversation, &message);
    core.hub.publish(&Event::MessageCreated {
        conversation: conversation.clone(),
        message: message.clone(),
    });
    crate::channels::web::push_message(core, &conversation, &message);
    crate::assist::alerts::after_message(core, &conversation, &message);
    message
}

/// Announces a customer's message stored by a channel that pushes nothing back to the
/// customer (the API channel, e-mail): the consoles hear of it and routing sees it.
pub fn announce_inbound(core: &Core, conversation: Conversation, message: Message) {
    core.routing.observe(&conversation, &message);
    crate::assist::alerts::after_message(core, &conversation, &message);
    core.hub.publish(&Event::MessageCreated {
        conversation,
        message,
    });
}

/// Tells the consoles about a committed change that also recorded a system message.
fn announce_change(core: &Core, conversation: Conversation, message: Message) -> Conversation {
    announce(core, conversation.clone(), message);
    conversation
}

/// Raises a conversation's priority to `wanted` (routing's urgency reading); never lowers it.
/// Returns the conversation with the system message that records it, when it changed.
pub fn raise_priority(
    txn: &WriteTxn,
    id: u64,
    wanted: Priority,
    now: Millis,
) -> AppResult<Option<(Conversation, Message)>> {
    let Some(mut conversation) =
        get_record::<Conversation>(&txn.open_table(tables::CONVERSATIONS)?, id)?
    else {
        return Ok(None);
    };
    if conversation.priority >= wanted {
        return Ok(None);
    }
    conversation.priority = wanted;
    let message = record_event(
        txn,
        &mut conversation,
        Author::System,
        &format!("priority: {wanted:?}").to_lowercase(),
        now,
    )?;
    Ok(Some((conversation, message)))
}

/// Records a system message on a conversation inside a write (a hand-off note, an escalation).
pub fn record_event_in(
    txn: &WriteTxn,
    id: u64,
    author: Author,
    text: &str,
    now: Millis,
) -> AppResult<(Conversation, Message)> {
    let mut conversation = load(txn, id)?;
    let message = record_event(txn, &mut conversation, author, text, now)?;
    Ok((conversation, message))
}

/// A conversation inside a write.
pub fn get_in_write(txn: &WriteTxn, id: u64) -> AppResult<Conversation> {
    load(txn, id)
}

/// What routing's assignment found: the conversation now owned (with the system message that
/// records it, when it changed), or why it could not be given (with the conversation as it is).
pub type RoutedAssignment = Result<(Conversation, Option<Message>), (Conversation, AppError)>;

/// Gives an open conversation to the employee who accepted routing's offer: an unassigned one,
/// or one `replacing` owns (a transfer), who stays on as a participant when `stays` names them.
pub fn assign_routed(
    txn: &WriteTxn,
    id: u64,
    employee_id: u64,
    replacing: Option<u64>,
    stays: Option<u64>,
    now: Millis,
) -> AppResult<RoutedAssignment> {
    let mut conversation = load(txn, id)?;
    if conversation.assignee_id == Some(employee_id) {
        return Ok(Ok((conversation, None)));
    }
    if conversation.assignee_id.is_some() && conversation.assignee_id != replacing {
        return Ok(Err((
            conversation,
            AppError::conflict("someone else took this conversation meanwhile"),
        )));
    }
    if conversation.status != Status::Open {
        let status = conversation.status.as_str();
        return Ok(Err((
            conversation,
            AppError::conflict(format!("the conversation is {status} now")),
        )));
    }
    let employee: crate::org::Employee =
        get_record(&txn.open_table(tables::EMPLOYEES)?, employee_id)?
            .ok_or_else(|| AppError::not_found("employee"))?;
    conversation.assignee_id = Some(employee_id);
    if let Some(sender) = stays
        && !conversation.participants.contains(&sender)
    {
        conversation.participants.push(sender);
    }
    let how = if replacing.is_some() {
        "transfer accepted"
    } else {
        "routed, offer accepted"
    };
    let message = record_event(
        txn,
        &mut conversation,
        Author::System,
        &format!("assignee: {} ({how})", employee.username),
        now,
    )?;
    Ok(Ok((conversation, Some(message))))
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    pub status: Status,
    /// Required for `snoozed`: milliseconds since the epoch.
    pub snoozed_until: Option<Millis>,
}

pub async fn change_status(
    core: &Core,
    caller: &Caller,
    id: u64,
    change: StatusChange,
) -> AppResult<Conversation> {
    caller.require(Permission::ConversationsReply)?;
    let actor_caller = caller.clone();
    let now = core.now();
    if change.status == Status::Snoozed && change.snoozed_until.is_none_or(|t| t <= now) {
        return Err(AppError::field(
            "snoozed_until",
            "a snoozed conversation needs a time in the future",
        ));
    }
    let employee_id = caller.employee_id;
    let conversation = core
        .store
        .write(move |txn| {
            let mut conversation = load(txn, id)?;
            // Checked on the committed state, inside the write: nothing can move it in between.
            require_can_act(&actor_caller, &conversation, Permission::ConversationsReply)?;
            conversation.status.check_transition(change.status)?;
            let previous = conversation.status;
            conversation.status = change.status;
            set_snooze(
                txn,
                &mut conversation,
                if change.status == Status::Snoozed {
                    change.snoozed_until
                } else {
                    None
                },
            )?;
            match change.status {
                Status::Resolved => {
                    conversation.resolved_at = Some(now);
                    // Its replies become suggestions for the next customer who asks the same.
                    crate::assist::suggest::harvest(txn, &conversation, now)?;
                }
                Status::Open if previous == Status::Resolved => {
                    conversation.reopen_count += 1;
                    conversation.last_reopened_at = Some(now);
                }
                _ => {}
            }
            let text = format!(
                "status: {} -> {}",
                previous.as_str(),
                change.status.as_str()
            );
            let message = record_event(
                txn,
                &mut conversation,
                Author::Employee { employee_id },
                &text,
                now,
            )?;
            Ok((conversation, message))
        })
        .await
        .map(|(conversation, message)| announce_change(core, conversation, message))?;
    if conversation.status == Status::Resolved {
        // The replies just kept become suggestions.
        crate::knowledge::ops::sync_index(core).await;
    }
    Ok(conversation)
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// The employee to assign; `null` unassigns.
    #[serde(
        default,
        deserialize_with = "crate::org::service::double_option::deserialize"
    )]
    #[schemars(with = "Option<u64>")]
    pub assignee_id: Option<Option<u64>>,
    /// The owning department (team); `null` clears it.
    #[serde(
        default,
        deserialize_with = "crate::org::service::double_option::deserialize"
    )]
    #[schemars(with = "Option<u64>")]
    pub team_id: Option<Option<u64>>,
    pub priority: Option<Priority>,
}

pub async fn assign(
    core: &Core,
    caller: &Caller,
    id: u64,
    change: Assignment,
) -> AppResult<Conversation> {
    caller.require(Permission::ConversationsAssign)?;
    let actor_caller = caller.clone();
    let now = core.now();
    let employee_id = caller.employee_id;
    core.store
        .write(move |txn| {
            let mut conversation = load(txn, id)?;
            // Checked on the committed state, inside the write: nothing can move it in between.
            require_can_act(
                &actor_caller,
                &conversation,
                Permission::ConversationsAssign,
            )?;
            let mut changes = Vec::new();
            if let Some(assignee) = change.assignee_id {
                if let Some(a) = assignee {
                    let employee: Option<crate::org::Employee> =
                        get_record(&txn.open_table(tables::EMPLOYEES)?, a)?;
                    match employee {
                        Some(e) if !e.disabled => {}
                        Some(_) => {
                            return Err(AppError::field(
                                "assignee_id",
                                format!("employee {a} is disabled"),
                            ));
                        }
                        None => {
                            return Err(AppError::field(
                                "assignee_id",
                                format!("employee {a} does not exist"),
                            ));
                        }
                    }
                }
                conversation.assignee_id = assignee;
                changes.push(format!(
                    "assignee: {}",
                    assignee
                        .map(|a| a.to_string())
                        .unwrap_or_else(|| "none".into())
                ));
            }
            if let Some(team) = change.team_id {
                if let Some(t) = team
                    && txn.open_table(tables::DEPARTMENTS)?.get(t)?.is_none()
                {
                    return Err(AppError::field(
                        "team_id",
                        format!("department {t} does not exist"),
                    ));
                }
                conversation.team_id = team;
                changes.push(format!(
                    "team: {}",
                    team.map(|t| t.to_string()).unwrap_or_else(|| "none".into())
                ));
            }
            if let Some(priority) = change.priority {
                conversation.priority = priority;
                changes.push(format!("priority: {priority:?}").to_lowercase());
            }
            if changes.is_empty() {
                return Err(AppError::field(
                    "assignee_id",
                    "name at least one of assignee_id, team_id, priority",
                ));
            }
            let message = record_event(
                txn,
                &mut conversation,
                Author::Employee { employee_id },
                &changes.join(", "),
                now,
            )?;
            Ok((conversation, message))
        })
        .await
        .map(|(conversation, message)| announce_change(core, conversation, message))
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TagsChange {
    /// The conversation's tags from now on (at most 20, each at most 50 characters).
    pub tags: Vec<String>,
}

/// Cleans a tag list: trimmed, no control characters, each once (ignoring case), in order.
pub fn clean_tags(tags: &[String]) -> AppResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for tag in tags {
        let tag = tag.trim();
        if tag.is_empty() || tag.chars().count() > 50 || tag.chars().any(char::is_control) {
            return Err(AppError::field(
                "tags",
                format!("{tag:?} must be 1 to 50 characters without control characters"),
            ));
        }
        if !out.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
            out.push(tag.to_string());
        }
    }
    if out.len() > 20 {
        return Err(AppError::field("tags", "at most 20 tags"));
    }
    Ok(out)
}

/// Replaces a conversation's tags; whoever may reply may tag.
pub async fn set_tags(
    core: &Core,
    caller: &Caller,
    id: u64,
    change: TagsChange,
) -> AppResult<Conversation> {
    caller.require(Permission::ConversationsReply)?;
    let tags = clean_tags(&change.tags)?;
    let actor_caller = caller.clone();
    let now = core.now();
    let employee_id = caller.employee_id;
    core.store
        .write(move |txn| {
            let mut conversation = load(txn, id)?;
            require_can_act(&actor_caller, &conversation, Permission::ConversationsReply)?;
            if conversation.tags == tags {
                return Ok((conversation, None));
            }
            conversation.tags = tags.clone();
            let text = if tags.is_empty() {
                "tags: none".to_string()
            } else {
                format!("tags: {}", tags.join(", "))
            };
            let message = record_event(
                txn,
                &mut conversation,
                Author::Employee { employee_id },
                &text,
                now,
            )?;
            Ok((conversation, Some(message)))
        })
        .await
        .map(|(conversation, message)| match message {
            Some(message) => announce_change(core, conversation, message),
            None => conversation,
        })
}
