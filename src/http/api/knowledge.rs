//! The knowledge base: articles and their review, entities, relations, the graph, synonyms,
//! search, import and export; and the public help centre's search.

use actix_web::HttpResponse;
use actix_web::http::header;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Data, Reply, created, items, no_content, ok};
use crate::error::{AppError, ErrorCode};
use crate::http::extract::{Auth, Body, IdPath, Query, Upload};
use crate::knowledge::NodeRef;
use crate::knowledge::ops::{
    self, ArticleFilter, EntityFilter, ExportQuery, GraphQuery, LearnRequest, RestoreRequest,
    ReviewNote, SearchQuery, SynonymsInput,
};
use crate::knowledge::service::{ArticlePatch, DraftInput, EntityInput, NewArticle, RelationInput};

pub async fn list_articles(auth: Auth, state: Data, query: Query<ArticleFilter>) -> Reply {
    items(ops::list_articles(&state.core, &auth.caller, query.get()?).await?)
}

pub async fn create_article(auth: Auth, state: Data, body: Body<NewArticle>) -> Reply {
    created(ops::create_article(&state.core, &auth.caller, body.get()?).await?)
}

pub async fn get_article(auth: Auth, state: Data, id: IdPath) -> Reply {
    ok(ops::get_article(&state.core, &auth.caller, id.get()?).await?)
}

pub async fn patch_article(auth: Auth, state: Data, id: IdPath, body: Body<ArticlePatch>) -> Reply {
    let id = id.get()?;
    ok(ops::patch_article(&state.core, &auth.caller, id, body.get()?).await?)
}

pub async fn save_draft(auth: Auth, state: Data, id: IdPath, body: Body<DraftInput>) -> Reply {
    let id = id.get()?;
    ok(ops::save_draft(&state.core, &auth.caller, id, body.get()?).await?)
}

pub async fn discard_draft(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    match ops::discard_draft(&state.core, &auth.caller, id).await? {
        Some(article) => ok(article),
        None => no_content(),
    }
}

pub async fn submit(auth: Auth, state: Data, id: IdPath) -> Reply {
    ok(ops::submit(&state.core, &auth.caller, id.get()?).await?)
}

pub async fn request_changes(auth: Auth, state: Data, id: IdPath, body: Body<ReviewNote>) -> Reply {
    let id = id.get()?;
    ok(ops::request_changes(&state.core, &auth.caller, id, body.get()?).await?)
}

pub async fn publish(auth: Auth, state: Data, id: IdPath) -> Reply {
    ok(ops::publish(&state.core, &auth.caller, id.get()?).await?)
}

pub async fn archive(auth: Auth, state: Data, id: IdPath) -> Reply {
    ok(ops::set_archived(&state.core, &auth.caller, id.get()?, true).await?)
}

pub async fn unarchive(auth: Auth, state: Data, id: IdPath) -> Reply {
    ok(ops::set_archived(&state.core, &auth.caller, id.get()?, false).await?)
}

pub async fn versions(auth: Auth, state: Data, id: IdPath) -> Reply {
    items(ops::versions(&state.core, &auth.caller, id.get()?).await?)
}

pub async fn version(req: actix_web::HttpRequest, auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    let number: u32 = req
        .match_info()
        .get("version")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| AppError::new(ErrorCode::InvalidPath, "version: not a number"))?;
    ok(ops::version(&state.core, &auth.caller, id, number).await?)
}

pub async fn restore(auth: Auth, state: Data, id: IdPath, body: Body<RestoreRequest>) -> Reply {
    let id = id.get()?;
    ok(ops::restore(&state.core, &auth.caller, id, body.get()?).await?)
}

pub async fn learn(auth: Auth, state: Data, id: IdPath, body: Body<LearnRequest>) -> Reply {
    let id = id.get()?;
    ok(ops::learn_question(&state.core, &auth.caller, id, body.get()?).await?)
}

pub async fn article_graph(auth: Auth, state: Data, id: IdPath, query: Query<GraphQuery>) -> Reply {
    let id = id.get()?;
    ok(ops::graph(
        &state.core,
        &auth.caller,
        NodeRef::article(id),
        query.get()?,
    )
    .await?)
}

pub async fn list_entities(auth: Auth, state: Data, query: Query<EntityFilter>) -> Reply {
    items(ops::list_entities(&state.core, &auth.caller, query.get()?).await?)
}

pub async fn create_entity(auth: Auth, state: Data, body: Body<EntityInput>) -> Reply {
    created(ops::put_entity(&state.core, &auth.caller, None, body.get()?).await?)
}

pub async fn get_entity(auth: Auth, state: Data, id: IdPath) -> Reply {
    ok(ops::get_entity(&state.core, &auth.caller, id.get()?).await?)
}

pub async fn replace_entity(auth: Auth, state: Data, id: IdPath, body: Body<EntityInput>) -> Reply {
    let id = id.get()?;
    ok(ops::put_entity(&state.core, &auth.caller, Some(id), body.get()?).await?)
}

pub async fn delete_entity(auth: Auth, state: Data, id: IdPath) -> Reply {
    ops::delete_entity(&state.core, &auth.caller, id.get()?).await?;
    no_content()
}

pub async fn entity_graph(auth: Auth, state: Data, id: IdPath, query: Query<GraphQuery>) -> Reply {
    let id = id.get()?;
    ok(ops::graph(&state.core, &auth.caller, NodeRef::entity(id), query.get()?).await?)
}

pub async fn add_relation(auth: Auth, state: Data, body: Body<RelationInput>) -> Reply {
    created(ops::add_relation(&state.core, &auth.caller, body.get()?).await?)
}

pub async fn remove_relation(auth: Auth, state: Data, id: IdPath) -> Reply {
    ops::remove_relation(&state.core, &auth.caller, id.get()?).await?;
    no_content()
}

pub async fn synonyms(auth: Auth, state: Data) -> Reply {
    items(ops::synonyms(&state.core, &auth.caller).await?)
}

pub async fn replace_synonyms(auth: Auth, state: Data, body: Body<SynonymsInput>) -> Reply {
    items(ops::replace_synonyms(&state.core, &auth.caller, body.get()?).await?)
}

pub async fn search(auth: Auth, state: Data, query: Query<SearchQuery>) -> Reply {
    ok(ops::search(&state.core, &auth.caller, query.get()?).await?)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// The uploaded file's name: `.json` (a bundle), `.md`, or `.zip`.
    pub filename: Option<String>,
    /// Publish the imported articles at once (otherwise they are drafts).
    pub publish: Option<bool>,
}

pub async fn import(auth: Auth, state: Data, query: Query<ImportQuery>, upload: Upload) -> Reply {
    let query = query.get()?;
    let file = upload.get()?;
    let name = query.filename.unwrap_or_else(|| "bundle.json".to_string());
    ok(ops::import(
        &state.core,
        &auth.caller,
        name,
        file.bytes.to_vec(),
        query.publish.unwrap_or(false),
    )
    .await?)
}

pub async fn export(auth: Auth, state: Data, query: Query<ExportQuery>) -> Reply {
    let (bytes, content_type, name) = ops::export(&state.core, &auth.caller, query.get()?).await?;
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(bytes))
}

pub async fn help_search(state: Data, query: Query<SearchQuery>) -> Reply {
    ok(ops::public_search(&state.core, query.get()?).await?)
}

pub async fn help_article(state: Data, id: IdPath) -> Reply {
    ok(ops::public_article(&state.core, id.get()?).await?)
}

pub async fn tasks(auth: Auth, state: Data) -> Reply {
    items(ops::tasks(&state.core, &auth.caller).await?)
}

pub async fn patch_task(
    auth: Auth,
    state: Data,
    id: IdPath,
    body: Body<crate::knowledge::gaps::TaskPatch>,
) -> Reply {
    let id = id.get()?;
    ok(ops::patch_task(&state.core, &auth.caller, id, body.get()?).await?)
}
