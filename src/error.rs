//! The one error type of the domain and its table of stable codes.
//!
//! Every failure a caller can see has a stable, machine-readable code from [`ErrorCode`]. The HTTP
//! status for each code is part of the table so the mapping lives in exactly one place;
//! `http::error` only turns an [`AppError`] into a response. Internal failures keep their detail
//! for the log and show callers nothing but the code.

use std::fmt;

/// Stable error codes. The string form (`as_str`) is part of the public API: never rename one.
macro_rules! error_codes {
    ($($variant:ident => ($code:literal, $status:literal, $doc:literal),)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $($variant,)* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            pub fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }

            pub fn description(self) -> &'static str {
                match self { $(ErrorCode::$variant => $doc,)* }
            }
        }
    };
}

error_codes! {
    InvalidJson => ("invalid_json", 400, "The body is not well-formed JSON."),
    InvalidField => ("invalid_field", 400, "A field is missing, of the wrong type or has an invalid value; the message names it."),
    InvalidQuery => ("invalid_query", 400, "A query-string parameter is invalid; the message names it."),
    InvalidPath => ("invalid_path", 400, "A path parameter is invalid."),
    InvalidHeader => ("invalid_header", 400, "A required header is missing or invalid; the message names it."),
    WeakPassword => ("weak_password", 400, "The new password does not meet the password policy."),
    Unauthenticated => ("unauthenticated", 401, "No valid session or API token was presented."),
    InvalidCredentials => ("invalid_credentials", 401, "The user name or password is wrong."),
    SessionExpired => ("session_expired", 401, "The session has expired or was logged out."),
    InvalidSignature => ("invalid_signature", 401, "A channel request's signature or timestamp does not verify."),
    Forbidden => ("forbidden", 403, "The caller lacks the permission this endpoint requires."),
    CsrfRejected => ("csrf_rejected", 403, "A state-changing request from the console lacked a valid CSRF token or came from another origin."),
    OriginNotAllowed => ("origin_not_allowed", 403, "The page's origin is not among the web chat channel's allowed origins."),
    PasswordChangeRequired => ("password_change_required", 403, "The account must change its password before doing anything else."),
    AccountDisabled => ("account_disabled", 403, "The account is disabled."),
    NotFound => ("not_found", 404, "The resource does not exist."),
    MethodNotAllowed => ("method_not_allowed", 405, "The path exists but not with this method."),
    Conflict => ("conflict", 409, "The request conflicts with existing data, e.g. a name already in use."),
    DraftConflict => ("draft_conflict", 409, "The draft was changed by someone else since the editor opened it (`details.updated_at` is the stored one); reload it and apply the edits again."),
    SensitiveWordBlocked => ("sensitive_word_blocked", 422, "The reply contains a word the organisation does not allow; the message and `details.matches` name it."),
    SensitiveWordConfirm => ("sensitive_word_confirm", 422, "The reply contains a word that needs confirmation; send it again with `confirm_sensitive: true`, or change it. `details.matches` names it."),
    PayloadTooLarge => ("payload_too_large", 413, "The body exceeds the configured size limit."),
    UnsupportedMediaType => ("unsupported_media_type", 415, "The body must be application/json."),
    UnsupportedType => ("unsupported_type", 415, "The file's type, as found in its content, is not accepted (executables never are)."),
    Throttled => ("throttled", 429, "Too many attempts; retry after the time given in Retry-After."),
    LlmDisabled => ("llm_disabled", 409, "The connector to a model server (`[assist.llm]`) is off in this installation; drafting with AI is not available."),
    LlmBadResponse => ("llm_bad_response", 502, "The model server answered, but not with a usable draft (an error status or an answer that is not an OpenAI-compatible chat completion)."),
    LlmUnavailable => ("llm_unavailable", 503, "The model server did not answer in time, refused the connection, or failed repeatedly and is being left alone for a while (Retry-After)."),
    Internal => ("internal", 500, "An internal error; details are in the server log under the request id."),
    StorageUnavailable => ("storage_unavailable", 503, "The store cannot accept writes right now."),
}

/// The error every domain operation returns.
#[derive(Debug)]
pub struct AppError {
    pub code: ErrorCode,
    /// Safe to show the caller.
    pub message: String,
    /// Seconds before a retry makes sense (429).
    pub retry_after: Option<u64>,
    /// Kept for the log only; never sent to the caller.
    pub detail: Option<String>,
    /// Structured facts the caller can act on (e.g. which words a reply was refused for).
    pub details: Option<serde_json::Value>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError {
            code,
            message: message.into(),
            retry_after: None,
            detail: None,
            details: None,
        }
    }

    /// Adds structured facts for the caller.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn field(field: &str, problem: impl fmt::Display) -> Self {
        Self::new(ErrorCode::InvalidField, format!("{field}: {problem}"))
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// An internal failure: the caller sees only a generic message, the log gets `detail`.
    pub fn internal(detail: impl fmt::Display) -> Self {
        AppError {
            code: ErrorCode::Internal,
            message: "internal error".into(),
            retry_after: None,
            detail: Some(detail.to_string()),
            details: None,
        }
    }

    pub fn throttled(retry_after_secs: u64) -> Self {
        AppError {
            code: ErrorCode::Throttled,
            message: format!("too many attempts; retry in {retry_after_secs} s"),
            retry_after: Some(retry_after_secs.max(1)),
            detail: None,
            details: None,
        }
    }

    pub fn is_internal(&self) -> bool {
        self.code.http_status() >= 500
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AppError {}

macro_rules! internal_from {
    ($($ty:ty),* $(,)?) => {
        $(impl From<$ty> for AppError {
            fn from(err: $ty) -> Self { AppError::internal(err) }
        })*
    };
}

internal_from!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::DatabaseError,
    std::io::Error,
    serde_json::Error,
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_snake_case_and_statuses_valid() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
            assert!((400..600).contains(&code.http_status()));
        }
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let err = AppError::internal("disk on fire at /var/lib/x");
        assert_eq!(err.message, "internal error");
        assert!(err.detail.unwrap().contains("disk on fire"));
    }
}
