//! Assist: the sensitive-word dictionaries, the reply box's check, suggestions and AI drafts.

use super::{Data, Reply, created, items, no_content, ok};
use crate::assist::dictionary::DictionaryInput;
use crate::assist::draft::{self, DraftRequest};
use crate::assist::ops::{self, CheckRequest, SuggestQuery, SuggestionFeedback};
use crate::http::extract::{Auth, Body, IdPath, Query};

pub async fn list_dictionaries(auth: Auth, state: Data) -> Reply {
    items(ops::list(&state.core, &auth.caller).await?)
}

pub async fn create_dictionary(auth: Auth, state: Data, body: Body<DictionaryInput>) -> Reply {
    created(ops::put(&state.core, &auth.caller, None, body.get()?).await?)
}

pub async fn get_dictionary(auth: Auth, state: Data, id: IdPath) -> Reply {
    ok(ops::get(&state.core, &auth.caller, id.get()?).await?)
}

pub async fn replace_dictionary(
    auth: Auth,
    state: Data,
    id: IdPath,
    body: Body<DictionaryInput>,
) -> Reply {
    let id = id.get()?;
    ok(ops::put(&state.core, &auth.caller, Some(id), body.get()?).await?)
}

pub async fn delete_dictionary(auth: Auth, state: Data, id: IdPath) -> Reply {
    ops::delete(&state.core, &auth.caller, id.get()?).await?;
    no_content()
}

pub async fn check(auth: Auth, state: Data, body: Body<CheckRequest>) -> Reply {
    ok(ops::check(&state.core, &auth.caller, body.get()?).await?)
}

pub async fn suggestions(auth: Auth, state: Data, id: IdPath, query: Query<SuggestQuery>) -> Reply {
    let id = id.get()?;
    ok(ops::suggestions(&state.core, &auth.caller, id, query.get()?).await?)
}

pub async fn suggestion_feedback(
    auth: Auth,
    state: Data,
    id: IdPath,
    body: Body<SuggestionFeedback>,
) -> Reply {
    let id = id.get()?;
    ops::suggestion_feedback(&state.core, &auth.caller, id, body.get()?).await?;
    no_content()
}

pub async fn draft(auth: Auth, state: Data, id: IdPath, body: Body<DraftRequest>) -> Reply {
    let id = id.get()?;
    ok(draft::draft(&state.core, &auth.caller, id, body.get()?).await?)
}

pub async fn llm_status(auth: Auth, state: Data) -> Reply {
    ok(draft::status(&state.core, &auth.caller).await?)
}
