//! Thin handlers: extract, call the domain, shape the answer.

pub mod audit;
pub mod auth;
pub mod inbox;
pub mod live;
pub mod org;
pub mod roles;
pub mod system;
pub mod tokens;

use actix_web::HttpResponse;
use actix_web::http::header;
use schemars::JsonSchema;
use serde::Serialize;

use crate::error::AppResult;

pub type Data = actix_web::web::Data<crate::http::AppState>;
pub type Reply = AppResult<HttpResponse>;

/// A list answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

pub fn ok<T: Serialize>(value: T) -> Reply {
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(value))
}

pub fn created<T: Serialize>(value: T) -> Reply {
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(value))
}

pub fn items<T: Serialize>(items: Vec<T>) -> Reply {
    ok(Items { items })
}

pub fn no_content() -> Reply {
    Ok(HttpResponse::NoContent().finish())
}
