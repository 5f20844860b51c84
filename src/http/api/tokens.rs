use super::{Data, Reply, created, items, ok};
use crate::auth::service::{self, NewApiToken};
use crate::auth::tokens;
use crate::http::extract::{Auth, Body, IdPath};

pub async fn list_tokens(_auth: Auth, state: Data) -> Reply {
    items(state.core.store.read(tokens::list).await?)
}

pub async fn issue_token(auth: Auth, state: Data, body: Body<NewApiToken>) -> Reply {
    let body = body.get()?;
    created(service::issue_token(&state.core, &auth.caller, body).await?)
}

pub async fn revoke_token(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    ok(service::revoke_token(&state.core, &auth.caller, id).await?)
}
