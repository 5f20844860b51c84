//! Routing: presence, offers, the supervisor's live view, employees' routing settings,
//! policies, and each conversation's classification and decisions.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Data, Reply, created, items, ok};
use crate::http::extract::{Auth, Body, IdPath};
use crate::routing::engine::Presence;
use crate::routing::experiment::NewExperiment;
use crate::routing::live::{self, EscalateRequest, RelabelRequest, ReturnRequest, TransferRequest};
use crate::routing::replay::ReplayRequest;
use crate::routing::service::{AgentSettingsPatch, CalendarInput, LaneInput, NewPolicy};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceChange {
    pub presence: Presence,
}

pub async fn me(auth: Auth, state: Data) -> Reply {
    ok(live::me(&state.core, &auth.caller).await?)
}

pub async fn set_presence(auth: Auth, state: Data, body: Body<PresenceChange>) -> Reply {
    let body = body.get()?;
    ok(live::set_presence(&state.core, &auth.caller, body.presence).await?)
}

pub async fn accept(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    ok(live::accept(&state.core, &auth.caller, id).await?)
}

pub async fn decline(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    live::decline(&state.core, &auth.caller, id).await?;
    super::no_content()
}

pub async fn live_view(_auth: Auth, state: Data) -> Reply {
    ok(live::snapshot(&state.core).await?)
}

pub async fn agents(_auth: Auth, state: Data) -> Reply {
    items(live::agents(&state.core).await?)
}

pub async fn update_agent(
    auth: Auth,
    state: Data,
    id: IdPath,
    body: Body<AgentSettingsPatch>,
) -> Reply {
    let id = id.get()?;
    let body = body.get()?;
    ok(live::update_agent(&state.core, &auth.caller, id, body).await?)
}

pub async fn policies(_auth: Auth, state: Data) -> Reply {
    items(live::policies(&state.core).await?)
}

pub async fn add_policy(auth: Auth, state: Data, body: Body<NewPolicy>) -> Reply {
    let body = body.get()?;
    created(live::add_policy(&state.core, &auth.caller, body).await?)
}

pub async fn conversation_routing(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    ok(live::conversation_routing(&state.core, &auth.caller, id).await?)
}

pub async fn relabel(auth: Auth, state: Data, id: IdPath, body: Body<RelabelRequest>) -> Reply {
    let id = id.get()?;
    let body = body.get()?;
    ok(live::relabel(&state.core, &auth.caller, id, body).await?)
}

pub async fn lanes(_auth: Auth, state: Data) -> Reply {
    items(live::lanes(&state.core).await?)
}

pub async fn create_lane(auth: Auth, state: Data, body: Body<LaneInput>) -> Reply {
    let body = body.get()?;
    created(live::put_lane(&state.core, &auth.caller, None, body).await?)
}

pub async fn replace_lane(auth: Auth, state: Data, id: IdPath, body: Body<LaneInput>) -> Reply {
    let id = id.get()?;
    let body = body.get()?;
    ok(live::put_lane(&state.core, &auth.caller, Some(id), body).await?)
}

pub async fn delete_lane(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    live::delete_lane(&state.core, &auth.caller, id).await?;
    super::no_content()
}

pub async fn escalate(auth: Auth, state: Data, id: IdPath, body: Body<EscalateRequest>) -> Reply {
    let id = id.get()?;
    let body = body.get()?;
    ok(live::escalate(&state.core, &auth.caller, id, body).await?)
}

pub async fn transfer(auth: Auth, state: Data, id: IdPath, body: Body<TransferRequest>) -> Reply {
    let id = id.get()?;
    let body = body.get()?;
    ok(live::transfer(&state.core, &auth.caller, id, body).await?)
}

pub async fn cancel_transfer(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    ok(live::cancel_transfer(&state.core, &auth.caller, id).await?)
}

pub async fn return_to_owner(
    auth: Auth,
    state: Data,
    id: IdPath,
    body: Body<ReturnRequest>,
) -> Reply {
    let id = id.get()?;
    let body = body.get()?;
    ok(live::return_to_owner(&state.core, &auth.caller, id, body).await?)
}

pub async fn calendars(_auth: Auth, state: Data) -> Reply {
    items(live::calendars(&state.core).await?)
}

pub async fn create_calendar(auth: Auth, state: Data, body: Body<CalendarInput>) -> Reply {
    let body = body.get()?;
    created(live::put_calendar(&state.core, &auth.caller, None, body).await?)
}

pub async fn replace_calendar(
    auth: Auth,
    state: Data,
    id: IdPath,
    body: Body<CalendarInput>,
) -> Reply {
    let id = id.get()?;
    let body = body.get()?;
    ok(live::put_calendar(&state.core, &auth.caller, Some(id), body).await?)
}

pub async fn delete_calendar(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    live::delete_calendar(&state.core, &auth.caller, id).await?;
    super::no_content()
}

pub async fn experiments(_auth: Auth, state: Data) -> Reply {
    items(live::experiments(&state.core).await?)
}

pub async fn create_experiment(auth: Auth, state: Data, body: Body<NewExperiment>) -> Reply {
    let body = body.get()?;
    created(live::create_experiment(&state.core, &auth.caller, body).await?)
}

pub async fn start_experiment(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    ok(live::change_experiment(&state.core, &auth.caller, id, true).await?)
}

pub async fn stop_experiment(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    ok(live::change_experiment(&state.core, &auth.caller, id, false).await?)
}

pub async fn experiment_report(_auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    ok(live::experiment_report(&state.core, id).await?)
}

pub async fn replay(auth: Auth, state: Data, body: Body<ReplayRequest>) -> Reply {
    let body = body.get()?;
    ok(live::replay(&state.core, &auth.caller, body).await?)
}
