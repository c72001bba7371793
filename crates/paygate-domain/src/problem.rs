//! The one error type that crosses layers. Each face renders it in its own format.

use std::fmt;
use std::panic::Location;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// Bad input: a field is missing, malformed or out of range (400).
    InvalidRequest,
    /// The credentials or the request signature are missing or wrong (401).
    Authentication,
    /// The object does not exist *for this caller* (404) — also used for other apps' objects.
    NotFound,
    /// The request conflicts with the object's state or with a concurrent request (409).
    Conflict,
    /// An Idempotency-Key was reused with a different request (400).
    Idempotency,
    /// The payment channel refused or is not available (402).
    Channel,
    /// Too many attempts in a short time (429): login throttling, rate limits.
    TooManyRequests,
    /// A dependency (the database) is away for now; retry later (503 with Retry-After).
    Unavailable,
    /// The request is malformed at the HTTP level: body too large (413), URI too long (414),
    /// a body that never finished arriving (408). The code says which.
    Http(u16),
    /// The path exists but not with this method (405 with `Allow`).
    MethodNotAllowed,
    /// Something on our side failed; details are logged, never shown (500).
    Internal,
}

/// A failure with a machine-readable `code`, a human message, and the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
    /// Where the problem was raised; logged for internal errors, never rendered.
    pub location: &'static Location<'static>,
}

impl Problem {
    #[track_caller]
    pub fn new(kind: ProblemKind, code: &'static str, message: impl Into<String>) -> Self {
        Problem { kind, code, message: message.into(), param: None, location: Location::caller() }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// A bad field: the message names it and `param` carries it.
    #[track_caller]
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Problem::new(ProblemKind::InvalidRequest, "invalid_parameter", message).with_param(param)
    }

    #[track_caller]
    pub fn missing(param: &str) -> Self {
        Problem::new(ProblemKind::InvalidRequest, "missing_parameter", format!("Missing required parameter: {param}."))
            .with_param(param)
    }

    #[track_caller]
    pub fn not_found(what: &str, id: &str) -> Self {
        Problem::new(ProblemKind::NotFound, "resource_missing", format!("No such {what}: {id}"))
    }

    #[track_caller]
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Problem::new(ProblemKind::Conflict, code, message)
    }

    #[track_caller]
    pub fn authentication(message: impl Into<String>) -> Self {
        Problem::new(ProblemKind::Authentication, "authentication_failed", message)
    }

    #[track_caller]
    pub fn internal(detail: impl fmt::Display) -> Self {
        Problem::new(ProblemKind::Internal, "internal_error", format!("{detail}"))
    }

    #[track_caller]
    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Problem::new(ProblemKind::TooManyRequests, "rate_limited", message)
    }

    #[track_caller]
    pub fn unavailable(detail: impl fmt::Display) -> Self {
        Problem::new(ProblemKind::Unavailable, "service_unavailable", format!("{detail}"))
    }

    /// For our own failures (internal, or the database away): says where they were met, when
    /// that is more telling than where the error was first made. Client errors keep theirs.
    pub fn raised_at(mut self, at: &'static Location<'static>) -> Self {
        if matches!(self.kind, ProblemKind::Internal | ProblemKind::Unavailable) {
            self.location = at;
        }
        self
    }

    pub fn is_internal(&self) -> bool {
        self.kind == ProblemKind::Internal
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}/{}: {} (at {})", self.kind, self.code, self.message, self.location)
    }
}

impl std::error::Error for Problem {}
