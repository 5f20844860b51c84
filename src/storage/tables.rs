//! The one catalog of every table in the store.
//!
//! Names follow `<key>_<value>_v<N>`. A changed key layout, or a reshaping the value envelope
//! cannot absorb, means a new `_v<N+1>` table and a migration; never reinterpret a table in place.
//! Values that are records are stored as envelope bytes (see `codec`); the catalog names each
//! table's record type so that `db verify` decodes every value, and backups copy every table.

use redb::{
    MultimapTableDefinition, ReadTransaction, ReadableMultimapTable, ReadableTable,
    TableDefinition, TableError, WriteTransaction,
};

use crate::error::AppResult;
use crate::storage::WriteTxn;
use crate::storage::codec::{self, Record};

type VerifyFn = fn(&ReadTransaction) -> AppResult<(u64, Vec<String>)>;

/// One table of the catalog, with the operations that must work on every table.
pub struct TableInfo {
    pub name: &'static str,
    pub about: &'static str,
    /// Creates the table if missing.
    pub create: fn(&WriteTxn) -> AppResult<()>,
    /// Copies every row from a snapshot into another database's write transaction.
    pub copy: fn(&ReadTransaction, &WriteTransaction) -> AppResult<u64>,
    /// Decodes every value; returns the row count and a description of each damaged row.
    pub verify: VerifyFn,
}

/// Declares the tables and the `CATALOG` listing them.
/// `table` rows hold plain values; `records` rows hold envelope-encoded records of the given type;
/// `multimap` rows are multimap tables.
macro_rules! catalog {
    ($( $kind:ident $def:ident : <$k:ty, $v:ty> $(as $rec:ty)? = $name:literal, $about:literal; )*) => {
        $( catalog!(@def $kind $def, $k, $v, $name, $about); )*

        pub const CATALOG: &[TableInfo] = &[
            $(TableInfo {
                name: $name,
                about: $about,
                create: catalog!(@create $kind $def),
                copy: catalog!(@copy $kind $def),
                verify: catalog!(@verify $kind $def $(, $rec)?),
            },)*
        ];
    };
    (@def table $def:ident, $k:ty, $v:ty, $name:literal, $about:literal) => {
        #[doc = $about]
        pub const $def: TableDefinition<$k, $v> = TableDefinition::new($name);
    };
    (@def records $def:ident, $k:ty, $v:ty, $name:literal, $about:literal) => {
        #[doc = $about]
        pub const $def: TableDefinition<$k, $v> = TableDefinition::new($name);
    };
    (@def multimap $def:ident, $k:ty, $v:ty, $name:literal, $about:literal) => {
        #[doc = $about]
        pub const $def: MultimapTableDefinition<$k, $v> = MultimapTableDefinition::new($name);
    };
    (@create multimap $def:ident) => { |txn| { txn.open_multimap_table($def)?; Ok(()) } };
    (@create $kind:ident $def:ident) => { |txn| { txn.open_table($def)?; Ok(()) } };
    (@copy multimap $def:ident) => { |src, dst| copy_multimap($def, src, dst) };
    (@copy $kind:ident $def:ident) => { |src, dst| copy_table($def, src, dst) };
    (@verify multimap $def:ident) => { |txn| count_multimap($def, txn) };
    (@verify table $def:ident) => { |txn| count_table($def, txn) };
    (@verify records $def:ident, $rec:ty) => { |txn| verify_records::<_, $rec>($def, txn) };
}

catalog! {
    table META: <&'static str, &'static [u8]> = "key_meta_v1",
        "Metadata: schema version, instance id, audit chain head and anchor.";
    table COUNTERS: <&'static str, u64> = "name_counter_v1",
        "Id allocators: counter name -> last id handed out.";
    records EMPLOYEES: <u64, &'static [u8]> as crate::org::Employee = "employeeid_employee_v1",
        "Employees, who are also the console's user accounts.";
    table USERNAME_EMPLOYEE: <&'static str, u64> = "username_employeeid_v1",
        "Lower-cased user name -> employee id (unique).";
    records DEPARTMENTS: <u64, &'static [u8]> as crate::org::Department = "departmentid_department_v1",
        "Departments, a tree by parent id.";
    records POSITIONS: <u64, &'static [u8]> as crate::org::Position = "positionid_position_v1",
        "Positions (job titles) that roles can be granted to.";
    records ROLES: <u64, &'static [u8]> as crate::auth::rbac::CustomRole = "roleid_role_v1",
        "Custom roles; the built-in roles are defined in code.";
    records ROLE_GRANTS: <u64, &'static [u8]> as crate::auth::rbac::Grant = "grantid_grant_v1",
        "Role grants to an employee, a department or a position, optionally scoped.";
    records SESSIONS: <&'static [u8], &'static [u8]> as crate::auth::session::Session = "sessionhash_session_v1",
        "SHA-256 of a console session cookie -> session.";
    multimap EMPLOYEE_SESSIONS: <u64, &'static [u8]> = "employeeid_sessionhash_v1",
        "Employee id -> hashes of that employee's sessions (log out everywhere).";
    records API_TOKENS: <u64, &'static [u8]> as crate::auth::tokens::ApiToken = "tokenid_token_v1",
        "API tokens for integrations (secret stored hashed).";
    table TOKEN_HASHES: <&'static [u8], u64> = "tokenhash_tokenid_v1",
        "SHA-256 of an API token secret -> token id.";
    records AUDIT: <u64, &'static [u8]> as crate::audit::AuditEntry = "seq_auditentry_v1",
        "The hash-chained audit log, by sequence number.";
    records CHANNELS: <u64, &'static [u8]> as crate::channels::Channel = "channelid_channel_v1",
        "Configured channels; their secrets sealed with the data directory's key.";
    records CUSTOMERS: <u64, &'static [u8]> as crate::customers::Customer = "customerid_customer_v1",
        "Customer profiles.";
    table IDENTITY_CUSTOMER: <&'static str, u64> = "identity_customerid_v1",
        "`<kind>:<value>` of a customer's identity on a channel -> customer id.";
    table CUSTOMER_CONVERSATIONS: <(u64, u64), ()> = "customerid_conversationid_v1",
        "(customer id, conversation id): a customer's conversations in order.";
    table CUSTOMER_EVENTS: <(u64, u64), &'static [u8]> = "customerid_eventid_event_v1",
        "(customer id, event id) -> behaviour event.";
    records CONVERSATIONS: <u64, &'static [u8]> as crate::conversations::Conversation = "conversationid_conversation_v1",
        "Conversations, every channel alike.";
    table CONVERSATION_ACTIVITY: <(u64, u64), ()> = "lastmessageat_conversationid_v1",
        "(last message ms, conversation id): conversations by last activity, for the inbox.";
    table MESSAGES: <(u64, u64), &'static [u8]> = "conversationid_messageid_message_v1",
        "(conversation id, message id) -> message; ids grow with commit order.";
    table CHANNEL_MESSAGES: <&'static str, (u64, u64)> = "channelmessage_conversationmessage_v1",
        "`<channel id>:<channel's message id>` -> (conversation id, message id), for deduplication.";
    table IDEMPOTENCY: <&'static str, &'static [u8]> = "channelkey_answer_v1",
        "`<channel id>:<Idempotency-Key>` -> the answer given, to repeat it to a retry.";
    records CUSTOMER_MERGES: <u64, &'static [u8]> as crate::customers::merge::MergeRecord = "mergeid_customermerge_v1",
        "Customer merges with what moved, so a merge can be undone exactly.";
    table SNOOZES: <(u64, u64), ()> = "until_conversationid_v1",
        "(snoozed until ms, conversation id): when snoozed conversations wake up.";
    table OUTBOX: <(u64, u64), &'static [u8]> = "due_itemid_outboxitem_v1",
        "(due time in ms, item id) -> outbound delivery waiting to be attempted.";
    records DEAD_LETTERS: <u64, &'static [u8]> as crate::channels::delivery::DeadLetter = "itemid_deadletter_v1",
        "Deliveries that failed for good, until an administrator retries them.";
    records VISITORS: <&'static [u8], &'static [u8]> as crate::channels::web::Visitor = "visitortokenhash_visitor_v1",
        "SHA-256 of a web chat visitor's token -> the visitor (their customer once they write).";
    table NOTIFICATIONS: <(u64, u64), &'static [u8]> = "employeeid_notificationid_notification_v1",
        "(employee id, notification id) -> notification (an @mention), until read and beyond.";
    records ATTACHMENTS: <u64, &'static [u8]> as crate::attachments::Attachment = "attachmentid_attachment_v1",
        "Files attached to messages (or uploaded and not yet sent).";
    table ATTACHMENT_CHUNKS: <(u64, u32), &'static [u8]> = "attachmentid_chunk_bytes_v1",
        "(attachment id, chunk number) -> up to 256 KiB of the file's content.";
    table UNBOUND_ATTACHMENTS: <(u64, u64), ()> = "uploadedat_attachmentid_v1",
        "(uploaded at ms, attachment id): uploads no message has taken yet, removed after a day.";
    records MAILBOXES: <u64, &'static [u8]> as crate::channels::email::MailboxState = "channelid_mailboxstate_v1",
        "E-mail channels: the mailbox's UIDVALIDITY and the last UID ingested (moved in the ingest's write).";
    table EMAIL_THREADS: <&'static str, (u64, u64)> = "channelmessageid_conversationmessage_v1",
        "`<channel id>:<Message-ID>` of e-mails received and sent -> (conversation id, message id): threading and bounces.";
    records ROUTING_AGENTS: <u64, &'static [u8]> as crate::routing::service::AgentSettings = "employeeid_routingagent_v1",
        "Employees' routing settings (skills, languages, capacity, mode) and presence; absent: the defaults.";
    records ROUTING_RECORDS: <u64, &'static [u8]> as crate::routing::service::RoutingRecord = "conversationid_routingrecord_v1",
        "What routing knows of a conversation: the question, its classification, relabel, and each offer with its scores.";
    records ROUTING_LABELS: <u64, &'static [u8]> as crate::routing::service::RoutingLabel = "labelid_routinglabel_v1",
        "Question types and urgencies employees gave conversations: the organisation's training data.";
    records ROUTING_LANES: <u64, &'static [u8]> as crate::routing::service::Lane = "laneid_routinglane_v1",
        "Routing lanes (queues with eligibility, stages, escalation path, SLA targets); absent: the defaults.";
    records ROUTING_CALENDARS: <u64, &'static [u8]> as crate::routing::sla::Calendar = "calendarid_routingcalendar_v1",
        "Business calendars (time zone, opening hours, holidays, make-up working days) that SLA targets count on.";
    records ROUTING_POLICIES: <u64, &'static [u8]> as crate::routing::service::PolicyVersion = "version_routingpolicy_v1",
        "Immutable routing policy versions; the newest is active unless an experiment runs.";
    records ROUTING_EXPERIMENTS: <u64, &'static [u8]> as crate::routing::experiment::Experiment = "experimentid_routingexperiment_v1",
        "Routing experiments: two policy versions that take turns by time slice.";
    table ROUTING_EXPERIMENT_CONVERSATIONS: <(u64, u64), ()> = "experimentid_conversationid_v1",
        "(experiment id, conversation id): the conversations an experiment tagged with a variant.";
    table ROUTING_PRESENCE_LOG: <(u64, u64), &'static str> = "at_employeeid_presence_v1",
        "(time ms, employee id) -> presence taken then: who was there when, for the replay simulator.";
    records KNOWLEDGE_ARTICLES: <u64, &'static [u8]> as crate::knowledge::Article = "articleid_article_v1",
        "Knowledge articles: the published content, the working draft and its review state.";
    table KNOWLEDGE_VERSIONS: <(u64, u64), &'static [u8]> = "articleid_version_articleversion_v1",
        "(article id, version) -> every published version of an article.";
    records KNOWLEDGE_ENTITIES: <u64, &'static [u8]> as crate::knowledge::Entity = "entityid_entity_v1",
        "Knowledge graph entities: products, components, features, known issues, fixes, policies, teams.";
    table KNOWLEDGE_ENTITY_KEYS: <&'static str, u64> = "entitykey_entityid_v1",
        "An entity's stable import key (e.g. `product:cam-c3`) -> entity id.";
    records KNOWLEDGE_RELATIONS: <u64, &'static [u8]> as crate::knowledge::Relation = "relationid_relation_v1",
        "Typed relations between entities and articles.";
    table KNOWLEDGE_NODE_RELATIONS: <(&'static str, u64), ()> = "nodekey_relationid_v1",
        "(`e:<id>` or `a:<id>`, relation id): the relations at each end of each node.";
    records KNOWLEDGE_SYNONYMS: <u64, &'static [u8]> as crate::knowledge::SynonymSet = "synonymsetid_synonymset_v1",
        "The organisation's synonym sets, which widen search questions.";
    table KNOWLEDGE_LEARNED: <(u64, u64), &'static [u8]> = "articleid_questionid_learnedquestion_v1",
        "(article id, question id) -> a customer question the article was confirmed to answer.";
    table KNOWLEDGE_INDEX_QUEUE: <(u64, u64), ()> = "indexseq_articleid_v1",
        "(knowledge sequence number, article id): the last change of each article the search index follows.";
    records SENSITIVE_DICTIONARIES: <u64, &'static [u8]> as crate::assist::dictionary::Dictionary = "dictionaryid_sensitivedictionary_v1",
        "Sensitive-word dictionaries: words with category and severity, for the organisation or some departments.";
    records PAST_REPLIES: <u64, &'static [u8]> as crate::assist::suggest::PastReply = "messageid_pastreply_v1",
        "Employees' replies in resolved conversations, with the customer's words they answered: reply suggestions.";
    table PAST_REPLY_QUEUE: <u64, u64> = "seq_messageid_v1",
        "Knowledge sequence number -> past reply (message id): the order the suggestion index takes them in.";
    records SUGGESTION_FEEDBACK: <&'static str, &'static [u8]> as crate::assist::suggest::Feedback = "suggestionkey_feedback_v1",
        "`article:<id>` or `reply:<id>` -> how often employees inserted, edited or ignored the suggestion.";
    records KNOWLEDGE_GAPS: <u64, &'static [u8]> as crate::knowledge::gaps::GapCluster = "gapid_gapcluster_v1",
        "Groups of customers' questions that found no good article, with examples and counts.";
    records KNOWLEDGE_TASKS: <u64, &'static [u8]> as crate::knowledge::gaps::KnowledgeTask = "taskid_knowledgetask_v1",
        "Knowledge-base tasks opened by a group of unanswered questions: owner, examples, status, the article that answers it.";
}

/// Only present in backup files: data-dir files (keys, certificates) that travel with a backup.
pub const BACKUP_FILES: TableDefinition<&str, &[u8]> = TableDefinition::new("name_backupfile_v1");

fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    def: TableDefinition<K, V>,
    src: &ReadTransaction,
    dst: &WriteTransaction,
) -> AppResult<u64> {
    let source = match src.open_table(def) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut target = dst.open_table(def)?;
    let mut rows = 0;
    for entry in source.iter()? {
        let (k, v) = entry?;
        target.insert(k.value(), v.value())?;
        rows += 1;
    }
    Ok(rows)
}

fn copy_multimap<K: redb::Key + 'static, V: redb::Key + 'static>(
    def: MultimapTableDefinition<K, V>,
    src: &ReadTransaction,
    dst: &WriteTransaction,
) -> AppResult<u64> {
    let source = match src.open_multimap_table(def) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut target = dst.open_multimap_table(def)?;
    let mut rows = 0;
    for entry in source.iter()? {
        let (k, values) = entry?;
        for v in values {
            target.insert(k.value(), v?.value())?;
            rows += 1;
        }
    }
    Ok(rows)
}

fn count_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    def: TableDefinition<K, V>,
    txn: &ReadTransaction,
) -> AppResult<(u64, Vec<String>)> {
    let table = txn.open_table(def)?;
    let mut rows = 0;
    for entry in table.iter()? {
        entry?;
        rows += 1;
    }
    Ok((rows, Vec::new()))
}

fn count_multimap<K: redb::Key + 'static, V: redb::Key + 'static>(
    def: MultimapTableDefinition<K, V>,
    txn: &ReadTransaction,
) -> AppResult<(u64, Vec<String>)> {
    let table = txn.open_multimap_table(def)?;
    let mut rows = 0;
    for entry in table.iter()? {
        let (_, values) = entry?;
        for v in values {
            v?;
            rows += 1;
        }
    }
    Ok((rows, Vec::new()))
}

fn verify_records<K: redb::Key + 'static, T: Record>(
    def: TableDefinition<K, &'static [u8]>,
    txn: &ReadTransaction,
) -> AppResult<(u64, Vec<String>)>
where
    for<'a> K::SelfType<'a>: std::fmt::Debug,
{
    let table = txn.open_table(def)?;
    let mut rows = 0;
    let mut damaged = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        rows += 1;
        if let Err(e) = codec::decode::<T>(v.value()) {
            damaged.push(format!(
                "{}[{:?}]: {}",
                T::KIND,
                k.value(),
                e.detail.unwrap_or(e.message)
            ));
        }
    }
    Ok((rows, damaged))
}
