//! `face-api`: the contract of the HTTPS API ("front door"), shared by the
//! server (`face-service::api`, the `api` and `authorizer` functions), the
//! local gateway (`xtask`), `facectl`'s remote mode and the stack.
//!
//! Pure data: serde types of every request and response ([`types`]), the
//! error body and the status of each error code ([`error`]), the route
//! table ([`routes`]) that both the server's router and the OpenAPI
//! generator ([`openapi`]) read, the API keys table layout and key format
//! ([`keys`]), the id and limit formats ([`ids`], [`limits`]), and the
//! Lambda price table behind the costs it reports ([`pricing`]). No I/O,
//! no AWS: faces reuse `face-core`'s serde shapes, so a remote result
//! renders exactly like a local one.

pub mod error;
pub mod ids;
pub mod jobs;
pub mod keys;
pub mod limits;
pub mod openapi;
pub mod pricing;
pub mod routes;
pub mod types;

pub use error::{ApiError, ErrorBody, ErrorCode};
pub use routes::{ROUTES, Route, RouteId, RouteMatch};

/// Every route lives under this prefix.
pub const API_VERSION_PREFIX: &str = "/v1";
/// The header that carries the API key ([`face_contracts::api::KEY_HEADER`]).
pub use face_contracts::api::KEY_HEADER as API_KEY_HEADER;
/// Where clients (`facectl --stack/--endpoint`, the demo's curl lines) read
/// the key from when it is not given on the command line
/// ([`face_contracts::env::API_KEY`]).
pub use face_contracts::env::API_KEY as CLIENT_API_KEY_ENV;

/// The base URL of a deployed REST API (routes are `<base>/v1/...`).
pub fn api_base_url(rest_api_id: &str, region: &str) -> String {
    format!(
        "https://{rest_api_id}.execute-api.{region}.amazonaws.com/{}",
        face_contracts::api::STAGE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_has_the_stage() {
        assert_eq!(
            api_base_url("abc123", "eu-west-1"),
            "https://abc123.execute-api.eu-west-1.amazonaws.com/live"
        );
    }
}
