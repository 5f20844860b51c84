//! The whole HTTP surface in one table: method, path, the permission it requires, and the
//! schemas of its body and answer. The same table registers the handlers, drives the
//! authorization check in `extract::Auth`, generates the OpenAPI document, and is walked by the
//! endpoint × role test. A route that is not in the table cannot be reached.

use actix_web::http::Method;
use actix_web::web;
use schemars::{JsonSchema, Schema, SchemaGenerator};

use crate::auth::rbac::Permission;
use crate::http::api;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials needed (sign-in, health, the API description).
    Public,
    /// No session or token: the request is signed with the channel's own secret.
    Signed,
    Permission(Permission),
}

pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

pub struct RouteInfo {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub tag: &'static str,
    pub summary: &'static str,
    pub request: Option<SchemaFn>,
    pub response: Option<SchemaFn>,
    /// The response is not JSON (metrics text, exports, backups).
    pub raw_response: Option<&'static str>,
}

/// The table entry of the route that answered a request, attached to its resource so that
/// the middleware and the authorization check need not match the path again.
#[derive(Clone, Copy)]
pub struct Matched(pub &'static RouteInfo);

/// The table entry of the route serving `req`, if a table route does.
pub fn matched(req: &actix_web::HttpRequest) -> Option<&'static RouteInfo> {
    req.app_data::<Matched>().map(|m| m.0)
}

/// `/api/v1/<collection>` and the rest of the path; no scope for paths outside the API.
fn scope_of(path: &'static str) -> (Option<&'static str>, &'static str) {
    const API: &str = "/api/v1/";
    let Some(after) = path.strip_prefix(API) else {
        return (None, path);
    };
    let end = API.len() + after.find('/').unwrap_or(after.len());
    (Some(&path[..end]), &path[end..])
}

/// The routes grouped by their first path segment under `/api/v1`. actix tries an app's
/// resources one by one, running each path pattern with parameters as a regular expression; with
/// a scope per collection a request tries only its own collection's routes (a tenth of a
/// message's CPU on the inbound path, whose route came sixtieth).
#[derive(Default)]
struct Scopes {
    scopes: Vec<(&'static str, actix_web::Scope)>,
}

impl Scopes {
    fn add(
        &mut self,
        cfg: &mut web::ServiceConfig,
        scope: Option<&'static str>,
        resource: actix_web::Resource,
    ) {
        let Some(prefix) = scope else {
            cfg.service(resource);
            return;
        };
        let index = match self.scopes.iter().position(|(p, _)| *p == prefix) {
            Some(index) => index,
            None => {
                self.scopes.push((prefix, web::scope(prefix)));
                self.scopes.len() - 1
            }
        };
        let scope = &mut self.scopes[index].1;
        *scope = std::mem::replace(scope, web::scope(prefix)).service(resource);
    }

    fn register(self, cfg: &mut web::ServiceConfig) {
        for (_, scope) in self.scopes {
            cfg.service(scope);
        }
    }
}

fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

macro_rules! route_table {
    ($(
        $method:ident $path:literal => $handler:path, $access:expr, $tag:literal, $summary:literal
        $(, body: $req:ty)? $(, returns: $res:ty)? $(, raw: $raw:literal)? ;
    )*) => {
        pub const ROUTES: &[RouteInfo] = &[$(
            RouteInfo {
                method: stringify!($method),
                path: $path,
                access: $access,
                tag: $tag,
                summary: $summary,
                request: route_table!(@schema $($req)?),
                response: route_table!(@schema $($res)?),
                raw_response: route_table!(@raw $($raw)?),
            },
        )*];

        pub fn register(cfg: &mut web::ServiceConfig) {
            let mut routes = ROUTES.iter();
            let mut scopes = Scopes::default();
            $(
                let info = routes.next().expect("one table entry per handler");
                let (scope, rest) = scope_of($path);
                // The method is the resource's guard (as `ServiceConfig::route` does), so that
                // another method on the same path reaches its own resource.
                let resource = web::resource(rest)
                    .guard(actix_web::guard::Method(Method::$method))
                    .app_data(Matched(info))
                    .route(web::route().to($handler));
                scopes.add(cfg, scope, resource);
            )*
            scopes.register(cfg);
        }
    };
    (@schema) => { None };
    (@schema $t:ty) => { Some(schema::<$t> as SchemaFn) };
    (@raw) => { None };
    (@raw $r:literal) => { Some($r) };
}

use Access::Public;
use Permission as P;
const fn needs(p: Permission) -> Access {
    Access::Permission(p)
}

route_table! {
    GET "/healthz" => api::system::healthz, Public, "system", "Liveness: the process answers", returns: api::system::Status;
    GET "/readyz" => api::system::readyz, Public, "system", "Readiness: the store reads and accepts writes", returns: api::system::Status;
    GET "/metrics" => api::system::metrics, needs(P::MetricsRead), "system", "Prometheus metrics", raw: "application/openmetrics-text; version=1.0.0";
    GET "/api/v1/openapi.json" => api::system::openapi, Public, "system", "This API description", raw: "application/json";
    GET "/api/v1/system/status" => api::system::status, needs(P::SystemManage), "system", "Version, schema, uptime and store size", returns: api::system::SystemStatus;
    POST "/api/v1/system/backup" => api::system::backup, needs(P::SystemManage), "system", "Download a consistent backup of the store", raw: "application/octet-stream";
    GET "/api/v1/permissions" => api::roles::list_permissions, needs(P::RolesRead), "roles", "Every permission with its description", returns: api::Items<api::roles::PermissionInfo>;

    POST "/api/v1/auth/login" => api::auth::login, Public, "auth", "Sign in to the console; sets the session cookie", body: crate::auth::service::LoginRequest, returns: crate::auth::service::SessionInfo;
    POST "/api/v1/auth/logout" => api::auth::logout, needs(P::AccountSelf), "auth", "End this session";
    POST "/api/v1/auth/logout-everywhere" => api::auth::logout_everywhere, needs(P::AccountSelf), "auth", "End every session of this account", returns: api::auth::Ended;
    GET "/api/v1/auth/session" => api::auth::session, needs(P::AccountSelf), "auth", "The signed-in employee, CSRF token and permissions", returns: crate::auth::service::SessionInfo;
    POST "/api/v1/auth/password" => api::auth::change_password, needs(P::AccountSelf), "auth", "Change one's own password", body: crate::auth::service::PasswordChange;
    PATCH "/api/v1/me" => api::auth::update_profile, needs(P::AccountSelf), "auth", "Change one's own name, language or time zone", body: crate::auth::service::ProfilePatch, returns: crate::org::EmployeeView;

    GET "/api/v1/departments" => api::org::list_departments, needs(P::OrgRead), "organisation", "List departments", returns: api::Items<crate::org::Department>;
    POST "/api/v1/departments" => api::org::create_department, needs(P::OrgManage), "organisation", "Create a department", body: crate::org::service::NewDepartment, returns: crate::org::Department;
    GET "/api/v1/departments/{id}" => api::org::get_department, needs(P::OrgRead), "organisation", "One department", returns: crate::org::Department;
    PATCH "/api/v1/departments/{id}" => api::org::update_department, needs(P::OrgManage), "organisation", "Rename or move a department", body: crate::org::service::DepartmentPatch, returns: crate::org::Department;
    DELETE "/api/v1/departments/{id}" => api::org::delete_department, needs(P::OrgManage), "organisation", "Delete an empty department";
    GET "/api/v1/positions" => api::org::list_positions, needs(P::OrgRead), "organisation", "List positions", returns: api::Items<crate::org::Position>;
    POST "/api/v1/positions" => api::org::create_position, needs(P::OrgManage), "organisation", "Create a position", body: crate::org::service::NewPosition, returns: crate::org::Position;
    GET "/api/v1/positions/{id}" => api::org::get_position, needs(P::OrgRead), "organisation", "One position", returns: crate::org::Position;
    PATCH "/api/v1/positions/{id}" => api::org::update_position, needs(P::OrgManage), "organisation", "Rename a position", body: crate::org::service::PositionPatch, returns: crate::org::Position;
    DELETE "/api/v1/positions/{id}" => api::org::delete_position, needs(P::OrgManage), "organisation", "Delete a position nobody holds";
    GET "/api/v1/employees" => api::org::list_employees, needs(P::EmployeesRead), "organisation", "List employees", returns: api::Items<crate::org::EmployeeView>;
    POST "/api/v1/employees" => api::org::create_employee, needs(P::EmployeesManage), "organisation", "Create an employee account", body: crate::org::service::NewEmployee, returns: crate::org::service::CreatedEmployee;
    GET "/api/v1/employees/{id}" => api::org::get_employee, needs(P::EmployeesRead), "organisation", "One employee", returns: crate::org::EmployeeView;
    PATCH "/api/v1/employees/{id}" => api::org::update_employee, needs(P::EmployeesManage), "organisation", "Change an employee (including disabling)", body: crate::org::service::EmployeePatch, returns: crate::org::EmployeeView;
    POST "/api/v1/employees/{id}/reset-password" => api::org::reset_password, needs(P::EmployeesManage), "organisation", "Set a one-time password and end the employee's sessions", returns: crate::org::service::PasswordReset;
    POST "/api/v1/employees/{id}/end-sessions" => api::org::end_sessions, needs(P::EmployeesManage), "organisation", "Sign the employee out everywhere", returns: api::auth::Ended;
    GET "/api/v1/employees/{id}/access" => api::roles::employee_access, needs(P::RolesRead), "roles", "The employee's effective permissions and the grants behind them", returns: api::roles::EffectiveAccess;

    GET "/api/v1/roles" => api::roles::list_roles, needs(P::RolesRead), "roles", "Built-in and custom roles", returns: api::Items<crate::auth::service::RoleView>;
    POST "/api/v1/roles" => api::roles::create_role, needs(P::RolesManage), "roles", "Create a custom role", body: crate::auth::service::NewRole, returns: crate::auth::service::RoleView;
    GET "/api/v1/roles/{id}" => api::roles::get_role, needs(P::RolesRead), "roles", "One role", returns: crate::auth::service::RoleView;
    PATCH "/api/v1/roles/{id}" => api::roles::update_role, needs(P::RolesManage), "roles", "Change a custom role", body: crate::auth::service::RolePatch, returns: crate::auth::service::RoleView;
    DELETE "/api/v1/roles/{id}" => api::roles::delete_role, needs(P::RolesManage), "roles", "Delete a custom role that is not granted";
    GET "/api/v1/role-grants" => api::roles::list_grants, needs(P::RolesRead), "roles", "Who holds which role, and where", returns: api::Items<crate::auth::rbac::Grant>;
    POST "/api/v1/role-grants" => api::roles::create_grant, needs(P::RolesManage), "roles", "Grant a role to an employee, department or position", body: crate::auth::service::NewGrant, returns: crate::auth::rbac::Grant;
    DELETE "/api/v1/role-grants/{id}" => api::roles::delete_grant, needs(P::RolesManage), "roles", "Revoke a grant";

    GET "/api/v1/api-tokens" => api::tokens::list_tokens, needs(P::TokensManage), "api tokens", "List API tokens (never their secrets)", returns: api::Items<crate::auth::tokens::ApiToken>;
    POST "/api/v1/api-tokens" => api::tokens::issue_token, needs(P::TokensManage), "api tokens", "Issue an API token; the secret is shown once", body: crate::auth::service::NewApiToken, returns: crate::auth::service::IssuedApiToken;
    DELETE "/api/v1/api-tokens/{id}" => api::tokens::revoke_token, needs(P::TokensManage), "api tokens", "Revoke an API token", returns: crate::auth::tokens::ApiToken;

    GET "/api/v1/audit" => api::audit::list, needs(P::AuditRead), "audit", "Read the audit log, newest first, with filters", returns: api::audit::AuditPage;
    GET "/api/v1/audit/export" => api::audit::export, needs(P::AuditExport), "audit", "Export the audit log as CSV or JSON", raw: "text/csv";
    GET "/api/v1/audit/verify" => api::audit::verify, needs(P::AuditRead), "audit", "Check the audit log's hash chain", returns: crate::audit::VerifyReport;

    GET "/api/v1/ws" => api::live::live, needs(P::AccountSelf), "live", "WebSocket of live updates for the console (conversation.updated, message.created)";

    GET "/api/v1/notifications" => api::inbox::list_notifications, needs(P::AccountSelf), "collaboration", "The caller's notifications (@mentions), newest first, with the unread count", returns: crate::collaboration::mentions::NotificationPage;
    POST "/api/v1/notifications/{id}/read" => api::inbox::read_notification, needs(P::AccountSelf), "collaboration", "Mark one of the caller's notifications read";
    POST "/api/v1/notifications/read-all" => api::inbox::read_all_notifications, needs(P::AccountSelf), "collaboration", "Mark all the caller's notifications read";

    GET "/api/v1/channels" => api::inbox::list_channels, needs(P::ChannelsManage), "channels", "Configured channels (never their secrets)", returns: api::Items<crate::channels::ChannelView>;
    POST "/api/v1/channels" => api::inbox::create_channel, needs(P::ChannelsManage), "channels", "Add a channel; an API channel's signing secret is shown once", body: crate::channels::NewChannel, returns: crate::channels::CreatedChannel;
    GET "/api/v1/channels/{id}" => api::inbox::get_channel, needs(P::ChannelsManage), "channels", "One channel", returns: crate::channels::ChannelView;
    PATCH "/api/v1/channels/{id}" => api::inbox::update_channel, needs(P::ChannelsManage), "channels", "Rename, enable or disable, or change a channel's settings", body: crate::channels::ChannelPatch, returns: crate::channels::ChannelView;
    GET "/api/v1/channels/{id}/status" => api::inbox::channel_status, needs(P::ChannelsManage), "channels", "A channel's connection status (e-mail: last successful check, last error)", returns: crate::channels::email::ChannelStatus;
    POST "/api/v1/channels/{id}/rotate-secret" => api::inbox::rotate_channel_secret, needs(P::ChannelsManage), "channels", "Replace an API channel's signing secret or a web chat's identity secret (shown once)", returns: crate::channels::CreatedChannel;
    POST "/api/v1/channels/{id}/inbound" => api::inbox::channel_inbound, Access::Signed, "channels", "An app posts a customer's message or event (HMAC-signed, with an Idempotency-Key)", body: crate::channels::api::InboundRequest, returns: crate::channels::api::InboundAnswer;

    POST "/api/v1/widget/{id}/sessions" => api::widget::start_session, Public, "web chat", "Start or resume a widget visitor's session (cross-origin)", body: crate::channels::web::SessionRequest, returns: crate::channels::web::SessionAnswer;
    OPTIONS "/api/v1/widget/{id}/sessions" => api::widget::preflight, Public, "web chat", "CORS preflight";
    POST "/api/v1/widget/{id}/uploads" => api::widget::upload, Public, "web chat", "A visitor uploads a file (Authorization: Bearer <visitor token>, raw body, ?filename=)", returns: crate::channels::web::WidgetAttachment;
    OPTIONS "/api/v1/widget/{id}/uploads" => api::widget::preflight, Public, "web chat", "CORS preflight";
    GET "/api/v1/widget/{id}/attachments/{attachment}" => api::widget::attachment, Public, "web chat", "A file of the visitor's conversation, by the key in its address", raw: "application/octet-stream";
    GET "/api/v1/widget/{id}/ws" => api::widget::socket, Public, "web chat", "The widget's WebSocket (?token=<visitor token>&after=<last message id>)";
    GET "/api/v1/widget/{id}/search" => api::widget::search, Public, "web chat", "Search the public help articles from the widget (?q=, ?lang=zh|en from the widget's locale); the help centre's engine", returns: crate::knowledge::ops::SearchResults;
    GET "/api/v1/widget/{id}/articles/{article}" => api::widget::article, Public, "web chat", "A public help article, to read inside the widget", returns: crate::knowledge::ops::PublicArticle;

    GET "/api/v1/dead-letters" => api::inbox::list_dead_letters, needs(P::ChannelsManage), "channels", "Outbound deliveries that failed for good", returns: api::Items<crate::channels::delivery::DeadLetter>;
    POST "/api/v1/dead-letters/{id}/retry" => api::inbox::retry_dead_letter, needs(P::ChannelsManage), "channels", "Send a failed delivery again", returns: crate::channels::delivery::OutboxItem;

    GET "/api/v1/conversations" => api::inbox::list_conversations, needs(P::ConversationsReadAssigned), "conversations", "Conversations the caller may see, newest first, with filters", returns: crate::conversations::service::ConversationPage;
    GET "/api/v1/reply-channels" => api::inbox::reply_channels, needs(P::ConversationsReply), "conversations", "Enabled channels to open a conversation on (names and kinds only)", returns: api::Items<crate::channels::ChannelChoice>;
    POST "/api/v1/conversations" => api::inbox::create_conversation, needs(P::ConversationsReply), "conversations", "Open a conversation on a customer's behalf (a call, a walk-in); the caller owns it", body: crate::conversations::service::NewConversation, returns: crate::conversations::Conversation;
    GET "/api/v1/conversations/{id}" => api::inbox::get_conversation, needs(P::ConversationsReadAssigned), "conversations", "A conversation with its messages, customer and the customer's other conversations", returns: crate::conversations::service::ConversationDetail;
    POST "/api/v1/conversations/{id}/messages" => api::inbox::post_message, needs(P::ConversationsReply), "conversations", "Reply to the customer, or write an internal note", body: crate::conversations::service::NewMessage, returns: crate::conversations::Message;
    POST "/api/v1/attachments" => api::inbox::upload_attachment, needs(P::ConversationsReply), "conversations", "Upload a file (raw body, ?filename=) to send with a message", returns: crate::attachments::AttachmentRef;
    GET "/api/v1/attachments/{id}" => api::inbox::download_attachment, needs(P::ConversationsReadAssigned), "conversations", "Download a file of a conversation the caller may see", raw: "application/octet-stream";
    POST "/api/v1/conversations/{id}/status" => api::inbox::change_status, needs(P::ConversationsReply), "conversations", "Open, pend, snooze, resolve or close", body: crate::conversations::service::StatusChange, returns: crate::conversations::Conversation;
    PUT "/api/v1/conversations/{id}/tags" => api::inbox::set_tags, needs(P::ConversationsReply), "conversations", "Replace the conversation's tags", body: crate::conversations::service::TagsChange, returns: crate::conversations::Conversation;
    POST "/api/v1/conversations/{id}/assign" => api::inbox::assign, needs(P::ConversationsAssign), "conversations", "Assign to an employee or a team, or set the priority", body: crate::conversations::service::Assignment, returns: crate::conversations::Conversation;
    GET "/api/v1/customers" => api::inbox::list_customers, needs(P::CustomersRead), "customers", "Search customers", returns: api::Items<crate::customers::Customer>;
    GET "/api/v1/customers/{id}" => api::inbox::get_customer, needs(P::CustomersRead), "customers", "A customer's profile and behaviour timeline", returns: api::inbox::CustomerProfile;
    POST "/api/v1/customers/{id}/merge" => api::inbox::merge_customer, needs(P::CustomersManage), "customers", "Fold another customer's profile, conversations and events into this one", body: crate::customers::merge::MergeRequest, returns: crate::customers::merge::MergeRecord;
    POST "/api/v1/customer-merges/{id}/undo" => api::inbox::undo_merge, needs(P::CustomersManage), "customers", "Undo a merge: the source gets back what was its own", returns: crate::customers::merge::MergeRecord;
    GET "/api/v1/routing/me" => api::routing::me, needs(P::AccountSelf), "routing", "The caller's routing settings, presence and open offers", returns: crate::routing::live::MyRouting;
    PUT "/api/v1/routing/me/presence" => api::routing::set_presence, needs(P::AccountSelf), "routing", "Set one's presence (online needs the reply permission)", body: api::routing::PresenceChange, returns: crate::routing::service::AgentSettings;
    POST "/api/v1/routing/offers/{id}/accept" => api::routing::accept, needs(P::ConversationsReply), "routing", "Accept an offer: the conversation becomes the caller's", returns: crate::conversations::Conversation;
    POST "/api/v1/routing/offers/{id}/decline" => api::routing::decline, needs(P::AccountSelf), "routing", "Decline an offer: routing offers the conversation to someone else";
    GET "/api/v1/routing/live" => api::routing::live_view, needs(P::RoutingMonitor), "routing", "Queues, waits, open offers and who is available, live", returns: crate::routing::live::LiveSnapshot;
    GET "/api/v1/routing/agents" => api::routing::agents, needs(P::RoutingMonitor), "routing", "Every employee's routing settings and presence", returns: api::Items<crate::routing::live::AgentView>;
    PATCH "/api/v1/routing/agents/{id}" => api::routing::update_agent, needs(P::RoutingManage), "routing", "Change an employee's skills, languages, capacity, mode, working hours (a calendar) or quiet hours", body: crate::routing::service::AgentSettingsPatch, returns: crate::routing::service::AgentSettings;
    GET "/api/v1/routing/policies" => api::routing::policies, needs(P::RoutingMonitor), "routing", "Routing policy versions, oldest first; the last is active unless an experiment runs", returns: api::Items<crate::routing::service::PolicyVersion>;
    POST "/api/v1/routing/policies" => api::routing::add_policy, needs(P::RoutingManage), "routing", "Add a policy version (the active one with changes); it becomes active", body: crate::routing::service::NewPolicy, returns: crate::routing::service::PolicyVersion;
    GET "/api/v1/routing/experiments" => api::routing::experiments, needs(P::RoutingMonitor), "routing", "Routing experiments, newest first, with their state and the arm in force", returns: api::Items<crate::routing::experiment::ExperimentView>;
    POST "/api/v1/routing/experiments" => api::routing::create_experiment, needs(P::RoutingManage), "routing", "Declare an experiment: a control and a candidate policy version that take turns by time slice", body: crate::routing::experiment::NewExperiment, returns: crate::routing::experiment::ExperimentView;
    POST "/api/v1/routing/experiments/{id}/start" => api::routing::start_experiment, needs(P::RoutingManage), "routing", "Start an experiment (one runs at a time); conversations arriving from now are tagged with their arm", returns: crate::routing::experiment::ExperimentView;
    POST "/api/v1/routing/experiments/{id}/stop" => api::routing::stop_experiment, needs(P::RoutingManage), "routing", "Stop a running experiment before its planned end; the newest policy routes again", returns: crate::routing::experiment::ExperimentView;
    GET "/api/v1/routing/experiments/{id}/report" => api::routing::experiment_report, needs(P::RoutingMonitor), "routing", "Each arm's service level, wait, resolution, first-contact resolution, CSAT and fairness with 95% intervals, and the candidate's difference", returns: crate::routing::experiment::ExperimentReport;
    POST "/api/v1/routing/replay" => api::routing::replay, needs(P::RoutingManage), "routing", "Replay a window of recorded traffic through a policy version beside the active one, offline", body: crate::routing::replay::ReplayRequest, returns: crate::routing::replay::ReplayReport;
    GET "/api/v1/routing/lanes" => api::routing::lanes, needs(P::ConversationsReadAssigned), "routing", "Lanes in order: eligibility, stages, escalation path, overflow, SLA targets", returns: api::Items<crate::routing::service::Lane>;
    POST "/api/v1/routing/lanes" => api::routing::create_lane, needs(P::RoutingManage), "routing", "Declare a lane", body: crate::routing::service::LaneInput, returns: crate::routing::service::Lane;
    PUT "/api/v1/routing/lanes/{id}" => api::routing::replace_lane, needs(P::RoutingManage), "routing", "Change a lane", body: crate::routing::service::LaneInput, returns: crate::routing::service::Lane;
    DELETE "/api/v1/routing/lanes/{id}" => api::routing::delete_lane, needs(P::RoutingManage), "routing", "Remove a lane no other lane escalates or overflows to";
    POST "/api/v1/conversations/{id}/escalate" => api::routing::escalate, needs(P::ConversationsTransfer), "routing", "Escalate up the lane's path (or to a named lane) with a hand-off note; the owner keeps it until someone accepts", body: crate::routing::live::EscalateRequest, returns: crate::routing::service::RoutingRecord;
    POST "/api/v1/conversations/{id}/transfer" => api::routing::transfer, needs(P::ConversationsTransfer), "routing", "Transfer to a lane or a named person, blind or warm; the owner keeps it until the receiver accepts", body: crate::routing::live::TransferRequest, returns: crate::routing::service::RoutingRecord;
    DELETE "/api/v1/conversations/{id}/transfer" => api::routing::cancel_transfer, needs(P::ConversationsTransfer), "routing", "Cancel a waiting transfer", returns: crate::routing::service::RoutingRecord;
    POST "/api/v1/conversations/{id}/return" => api::routing::return_to_owner, needs(P::ConversationsTransfer), "routing", "Return an escalated conversation to its owner before the escalation", body: crate::routing::live::ReturnRequest, returns: crate::routing::service::RoutingRecord;
    GET "/api/v1/routing/calendars" => api::routing::calendars, needs(P::RoutingMonitor), "routing", "Business calendars SLA targets count on", returns: api::Items<crate::routing::sla::Calendar>;
    POST "/api/v1/routing/calendars" => api::routing::create_calendar, needs(P::RoutingManage), "routing", "Add a business calendar (time zone, hours per weekday, holidays, make-up working days)", body: crate::routing::service::CalendarInput, returns: crate::routing::sla::Calendar;
    PUT "/api/v1/routing/calendars/{id}" => api::routing::replace_calendar, needs(P::RoutingManage), "routing", "Change a business calendar", body: crate::routing::service::CalendarInput, returns: crate::routing::sla::Calendar;
    DELETE "/api/v1/routing/calendars/{id}" => api::routing::delete_calendar, needs(P::RoutingManage), "routing", "Remove a calendar no lane counts on";
    GET "/api/v1/conversations/{id}/routing" => api::routing::conversation_routing, needs(P::ConversationsReadAssigned), "routing", "A conversation's classification, routing decisions (why each person) and place in line", returns: crate::routing::service::RoutingView;
    PUT "/api/v1/conversations/{id}/classification" => api::routing::relabel, needs(P::ConversationsReply), "routing", "Correct the question's type or urgency; the classifier learns from it", body: crate::routing::live::RelabelRequest, returns: crate::routing::service::RoutingRecord;
    PATCH "/api/v1/customers/{id}" => api::inbox::update_customer, needs(P::CustomersManage), "customers", "Change a customer's profile and CRM fields", body: crate::customers::CustomerPatch, returns: crate::customers::Customer;
    GET "/api/v1/knowledge/articles" => api::knowledge::list_articles, needs(P::KnowledgeRead), "knowledge", "Articles the caller may read (writers also see drafts), newest change first, with filters", returns: api::Items<crate::knowledge::service::ArticleSummary>;
    POST "/api/v1/knowledge/articles" => api::knowledge::create_article, needs(P::KnowledgeWrite), "knowledge", "Start an article as a draft", body: crate::knowledge::service::NewArticle, returns: crate::knowledge::Article;
    GET "/api/v1/knowledge/articles/{id}" => api::knowledge::get_article, needs(P::KnowledgeRead), "knowledge", "An article with its draft (for writers), relations and learned questions", returns: crate::knowledge::service::ArticleDetail;
    PATCH "/api/v1/knowledge/articles/{id}" => api::knowledge::patch_article, needs(P::KnowledgeManage), "knowledge", "Change an article's owner or review date", body: crate::knowledge::service::ArticlePatch, returns: crate::knowledge::Article;
    PUT "/api/v1/knowledge/articles/{id}/draft" => api::knowledge::save_draft, needs(P::KnowledgeWrite), "knowledge", "Save the working draft (a draft changed by someone else since base_updated_at is a conflict)", body: crate::knowledge::service::DraftInput, returns: crate::knowledge::Article;
    DELETE "/api/v1/knowledge/articles/{id}/draft" => api::knowledge::discard_draft, needs(P::KnowledgeWrite), "knowledge", "Discard the draft (an article never published goes with it)", returns: crate::knowledge::Article;
    POST "/api/v1/knowledge/articles/{id}/submit" => api::knowledge::submit, needs(P::KnowledgeWrite), "knowledge", "Submit the draft for review", returns: crate::knowledge::Article;
    POST "/api/v1/knowledge/articles/{id}/request-changes" => api::knowledge::request_changes, needs(P::KnowledgeManage), "knowledge", "Send a draft in review back with a note", body: crate::knowledge::ops::ReviewNote, returns: crate::knowledge::Article;
    POST "/api/v1/knowledge/articles/{id}/publish" => api::knowledge::publish, needs(P::KnowledgeManage), "knowledge", "Publish the draft as the next version; search finds it at once", returns: crate::knowledge::Article;
    POST "/api/v1/knowledge/articles/{id}/archive" => api::knowledge::archive, needs(P::KnowledgeManage), "knowledge", "Withdraw an article from search, suggestions and the help centre", returns: crate::knowledge::Article;
    POST "/api/v1/knowledge/articles/{id}/unarchive" => api::knowledge::unarchive, needs(P::KnowledgeManage), "knowledge", "Bring an archived article back", returns: crate::knowledge::Article;
    GET "/api/v1/knowledge/articles/{id}/versions" => api::knowledge::versions, needs(P::KnowledgeRead), "knowledge", "The article's published versions, newest first", returns: api::Items<crate::knowledge::service::VersionSummary>;
    GET "/api/v1/knowledge/articles/{id}/versions/{version}" => api::knowledge::version, needs(P::KnowledgeRead), "knowledge", "One published version", returns: crate::knowledge::ArticleVersion;
    POST "/api/v1/knowledge/articles/{id}/restore" => api::knowledge::restore, needs(P::KnowledgeWrite), "knowledge", "Start a draft from an earlier version", body: crate::knowledge::ops::RestoreRequest, returns: crate::knowledge::Article;
    POST "/api/v1/knowledge/articles/{id}/questions" => api::knowledge::learn, needs(P::ConversationsReply), "knowledge", "Confirm that the article answered a customer's question; search learns it", body: crate::knowledge::ops::LearnRequest, returns: crate::knowledge::ops::Learned;
    GET "/api/v1/knowledge/articles/{id}/graph" => api::knowledge::article_graph, needs(P::KnowledgeRead), "knowledge", "The article's neighbourhood in the knowledge graph", returns: crate::knowledge::service::GraphView;
    GET "/api/v1/knowledge/entities" => api::knowledge::list_entities, needs(P::KnowledgeRead), "knowledge", "Entities of the knowledge graph, by name", returns: api::Items<crate::knowledge::Entity>;
    POST "/api/v1/knowledge/entities" => api::knowledge::create_entity, needs(P::KnowledgeManage), "knowledge", "Add an entity (product, component, feature, known issue, fix, policy, team, topic)", body: crate::knowledge::service::EntityInput, returns: crate::knowledge::Entity;
    GET "/api/v1/knowledge/entities/{id}" => api::knowledge::get_entity, needs(P::KnowledgeRead), "knowledge", "An entity with its relations", returns: crate::knowledge::ops::EntityDetail;
    PUT "/api/v1/knowledge/entities/{id}" => api::knowledge::replace_entity, needs(P::KnowledgeManage), "knowledge", "Change an entity; articles about it are reindexed", body: crate::knowledge::service::EntityInput, returns: crate::knowledge::Entity;
    DELETE "/api/v1/knowledge/entities/{id}" => api::knowledge::delete_entity, needs(P::KnowledgeManage), "knowledge", "Remove an entity and its relations";
    GET "/api/v1/knowledge/entities/{id}/graph" => api::knowledge::entity_graph, needs(P::KnowledgeRead), "knowledge", "The entity's neighbourhood in the knowledge graph (?depth=1..3)", returns: crate::knowledge::service::GraphView;
    POST "/api/v1/knowledge/relations" => api::knowledge::add_relation, needs(P::KnowledgeWrite), "knowledge", "Relate two nodes (between entities: knowledge.manage)", body: crate::knowledge::service::RelationInput, returns: crate::knowledge::Relation;
    DELETE "/api/v1/knowledge/relations/{id}" => api::knowledge::remove_relation, needs(P::KnowledgeWrite), "knowledge", "Remove a relation";
    GET "/api/v1/knowledge/synonyms" => api::knowledge::synonyms, needs(P::KnowledgeRead), "knowledge", "The organisation's synonym sets", returns: api::Items<crate::knowledge::SynonymSet>;
    PUT "/api/v1/knowledge/synonyms" => api::knowledge::replace_synonyms, needs(P::KnowledgeManage), "knowledge", "Replace the synonym sets", body: crate::knowledge::ops::SynonymsInput, returns: api::Items<crate::knowledge::SynonymSet>;
    GET "/api/v1/knowledge/search" => api::knowledge::search, needs(P::KnowledgeRead), "knowledge", "Ask in Chinese or English: the best published articles the caller may read, with the passage", returns: crate::knowledge::ops::SearchResults;
    POST "/api/v1/knowledge/import" => api::knowledge::import, needs(P::KnowledgeManage), "knowledge", "Import a JSON bundle, a Markdown file or a zip of them (raw body, ?filename=, ?publish=)", returns: crate::knowledge::portable::ImportReport;
    GET "/api/v1/knowledge/export" => api::knowledge::export, needs(P::KnowledgeRead), "knowledge", "Export what the caller may read: JSON bundle, or ?format=markdown for a zip", raw: "application/json";
    GET "/api/v1/knowledge/tasks" => api::knowledge::tasks, needs(P::KnowledgeWrite), "knowledge", "Knowledge-base tasks opened by groups of customers' questions that found no good article, most asked first", returns: api::Items<crate::knowledge::gaps::KnowledgeTask>;
    PATCH "/api/v1/knowledge/tasks/{id}" => api::knowledge::patch_task, needs(P::KnowledgeManage), "knowledge", "Give a task an owner, link the article that answers it, mark it done or dismiss it", body: crate::knowledge::gaps::TaskPatch, returns: crate::knowledge::gaps::KnowledgeTask;
    GET "/api/v1/help/search" => api::knowledge::help_search, Public, "help centre", "Search the public articles", returns: crate::knowledge::ops::SearchResults;
    GET "/api/v1/help/articles/{id}" => api::knowledge::help_article, Public, "help centre", "A public article", returns: crate::knowledge::ops::PublicArticle;
    GET "/api/v1/assist/dictionaries" => api::assist::list_dictionaries, needs(P::AssistManage), "assist", "Sensitive-word dictionaries (without their words)", returns: api::Items<crate::assist::dictionary::DictionarySummary>;
    POST "/api/v1/assist/dictionaries" => api::assist::create_dictionary, needs(P::AssistManage), "assist", "Add a sensitive-word dictionary (words with category and severity: flag, warn, block)", body: crate::assist::dictionary::DictionaryInput, returns: crate::assist::dictionary::Dictionary;
    GET "/api/v1/assist/dictionaries/{id}" => api::assist::get_dictionary, needs(P::AssistManage), "assist", "A dictionary with its words", returns: crate::assist::dictionary::Dictionary;
    PUT "/api/v1/assist/dictionaries/{id}" => api::assist::replace_dictionary, needs(P::AssistManage), "assist", "Replace a dictionary; it applies to the next reply", body: crate::assist::dictionary::DictionaryInput, returns: crate::assist::dictionary::Dictionary;
    DELETE "/api/v1/assist/dictionaries/{id}" => api::assist::delete_dictionary, needs(P::AssistManage), "assist", "Remove a dictionary";
    POST "/api/v1/assist/check" => api::assist::check, needs(P::ConversationsReply), "assist", "The sensitive words in a reply being written (positions in UTF-16 units, for highlighting) and whether it would be sent", body: crate::assist::ops::CheckRequest, returns: crate::assist::ops::CheckAnswer;
    GET "/api/v1/conversations/{id}/suggestions" => api::assist::suggestions, needs(P::ConversationsReply), "assist", "Reply suggestions for the customer's latest words and the draft so far (?draft=): knowledge passages and past replies that ended well", returns: crate::assist::ops::Suggestions;
    POST "/api/v1/conversations/{id}/suggestions/feedback" => api::assist::suggestion_feedback, needs(P::ConversationsReply), "assist", "What was done with the suggestions when the reply was sent (inserted, edited, ignored); an inserted article learns the question";
    POST "/api/v1/conversations/{id}/draft" => api::assist::draft, needs(P::ConversationsReply), "assist", "Draft a reply, or polish the employee's text, with the organisation's model server, grounded in the knowledge articles the caller may read; not sent (409 llm_disabled when the connector is off)", body: crate::assist::draft::DraftRequest, returns: crate::assist::draft::DraftAnswer;
    GET "/api/v1/assist/llm" => api::assist::llm_status, needs(P::ConversationsReply), "assist", "Whether AI drafts are on, the model, and the model server's health", returns: crate::assist::llm::LlmStatus;
}

/// Whether a concrete path matches a table pattern (segments in braces match anything).
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let mut a = pattern.trim_end_matches('/').split('/');
    let mut b = path.trim_end_matches('/').split('/');
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(p), Some(s)) if p.starts_with('{') || p == s => continue,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_unique_and_api_routes_are_versioned() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(
                seen.insert((r.method, r.path)),
                "{} {} twice",
                r.method,
                r.path
            );
            assert!(
                r.path.starts_with("/api/v1/")
                    || ["/healthz", "/readyz", "/metrics"].contains(&r.path),
                "{}",
                r.path
            );
        }
    }

    #[test]
    fn only_the_expected_routes_are_public() {
        let public: Vec<_> = ROUTES
            .iter()
            .filter(|r| r.access == Access::Public)
            .map(|r| r.path)
            .collect();
        assert_eq!(
            public,
            [
                "/healthz",
                "/readyz",
                "/api/v1/openapi.json",
                "/api/v1/auth/login",
                "/api/v1/widget/{id}/sessions",
                "/api/v1/widget/{id}/sessions",
                "/api/v1/widget/{id}/uploads",
                "/api/v1/widget/{id}/uploads",
                "/api/v1/widget/{id}/attachments/{attachment}",
                "/api/v1/widget/{id}/ws",
                "/api/v1/widget/{id}/search",
                "/api/v1/widget/{id}/articles/{article}",
                "/api/v1/help/search",
                "/api/v1/help/articles/{id}",
            ]
        );
    }

    #[test]
    fn patterns_match_paths() {
        assert!(path_matches("/api/v1/roles/{id}", "/api/v1/roles/7"));
        assert!(!path_matches("/api/v1/roles/{id}", "/api/v1/roles/7/x"));
        assert!(path_matches("/api/v1/roles", "/api/v1/roles/"));
    }
}
