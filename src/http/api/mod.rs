//! Thin handlers: extract, call the domain, shape the answer.

pub mod assist;
pub mod audit;
pub mod auth;
pub mod inbox;
pub mod knowledge;
pub mod live;
pub mod org;
pub mod roles;
pub mod routing;
pub mod system;
pub mod tokens;
pub mod widget;

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

/// A stored file as a download. Only images, audio and video are shown inline; anything else is
/// saved, and the sandbox keeps even a mislabelled file from running script on this origin.
pub fn file_response(
    attachment: &crate::attachments::Attachment,
    content: Vec<u8>,
) -> HttpResponse {
    let major = attachment
        .content_type
        .split('/')
        .next()
        .unwrap_or_default();
    let disposition = if matches!(major, "image" | "audio" | "video") {
        "inline"
    } else {
        "attachment"
    };
    let encoded: String = form_urlencoded::byte_serialize(attachment.filename.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, attachment.content_type.as_str()))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("{disposition}; filename*=UTF-8''{encoded}"),
        ))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'",
        ))
        .insert_header((header::CACHE_CONTROL, "private, max-age=3600"))
        .body(content)
}
