use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::{HttpRequest, HttpResponse, http::header};
use schemars::JsonSchema;
use serde::Serialize;

use super::{Data, Reply, no_content, ok};
use crate::auth::service::{self, LoginRequest, PasswordChange, ProfilePatch};
use crate::auth::session::COOKIE_NAME;
use crate::http::extract::{Auth, Body, client_addr};

#[derive(Debug, Serialize, JsonSchema)]
pub struct Ended {
    pub sessions_ended: u64,
}

fn session_cookie(value: String, max_age_hours: u64) -> Cookie<'static> {
    Cookie::build(COOKIE_NAME, value)
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .max_age(CookieDuration::hours(max_age_hours as i64))
        .finish()
}

fn cleared_cookie() -> Cookie<'static> {
    let mut cookie = session_cookie(String::new(), 0);
    cookie.make_removal();
    cookie
}

pub async fn login(req: HttpRequest, state: Data, body: Body<LoginRequest>) -> Reply {
    let body = body.get()?;
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let outcome = service::login(&state.core, body, &client_addr(&req), user_agent).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(session_cookie(
            outcome.cookie,
            state.core.config.auth.session_max_hours,
        ))
        .json(outcome.info))
}

pub async fn logout(auth: Auth, state: Data) -> Reply {
    service::logout(&state.core, &auth.caller).await?;
    Ok(HttpResponse::NoContent().cookie(cleared_cookie()).finish())
}

pub async fn logout_everywhere(auth: Auth, state: Data) -> Reply {
    let ended = service::logout_everywhere(&state.core, &auth.caller).await?;
    Ok(HttpResponse::Ok().cookie(cleared_cookie()).json(Ended {
        sessions_ended: ended,
    }))
}

pub async fn session(auth: Auth, state: Data) -> Reply {
    ok(service::current_session(
        &state.core,
        &auth.caller,
        auth.csrf_token.unwrap_or_default(),
    )
    .await?)
}

pub async fn change_password(auth: Auth, state: Data, body: Body<PasswordChange>) -> Reply {
    let body = body.get()?;
    service::change_password(&state.core, &auth.caller, body).await?;
    no_content()
}

pub async fn update_profile(auth: Auth, state: Data, body: Body<ProfilePatch>) -> Reply {
    let body = body.get()?;
    ok(service::update_profile(&state.core, &auth.caller, body).await?)
}
