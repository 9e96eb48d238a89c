//! What the stack's API Gateway and the API's clients agree on beyond the
//! routes and bodies (those are `face-api`'s).

/// The one stage every deployment's REST API is deployed to; the base URL
/// ends in `/<stage>`.
pub const STAGE: &str = "live";

/// The header that carries the API key (the authorizer's identity source).
pub const KEY_HEADER: &str = "x-api-key";
