//! The AWS SDK's configuration, built one way for every crate that talks to
//! AWS (`face-service`, the coordinator, `facectl`, `xtask`, `local-aws`).
//!
//! A config per region is always built explicitly from a base, never
//! through process-wide state (`AWS_REGION`), so one process can serve
//! several regions at once.

pub use aws_config::SdkConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// The SDK's loader with its HTTPS client: rustls on ring. The SDK's own
/// default client (`default-https-client`) is rustls on aws-lc, a second
/// C crypto library beside the ring that ureq already builds; the workspace
/// turns it off, so every config must get its client here.
fn loader() -> ConfigLoader {
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest()).http_client(https)
}

/// The standard chain: profile, credentials, region, `AWS_ENDPOINT_URL`.
pub async fn load_sdk_config() -> SdkConfig {
    loader().load().await
}

/// `base` with its region replaced: credentials, endpoint and everything
/// else stay.
pub fn with_region(base: &SdkConfig, region: &str) -> SdkConfig {
    base.to_builder()
        .region(Region::new(region.to_string()))
        .build()
}

/// The config of `region`: `base`'s with its region replaced, or the
/// standard chain's (profile, credentials, `AWS_ENDPOINT_URL`) in that
/// region when there is no base.
pub async fn region_config(base: Option<&SdkConfig>, region: &str) -> SdkConfig {
    match base {
        Some(base) => with_region(base, region),
        None => {
            loader()
                .region(Region::new(region.to_string()))
                .load()
                .await
        }
    }
}

/// A local endpoint (moto on loopback) in `region`, with test credentials:
/// no profile or account is read.
pub async fn local_config(endpoint_url: &str, region: &str) -> SdkConfig {
    loader()
        .endpoint_url(endpoint_url)
        .region(Region::new(region.to_string()))
        .test_credentials()
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_region_is_replaced_and_nothing_else() {
        let base = local_config("http://127.0.0.1:5000", "us-east-1").await;
        assert_eq!(base.region(), Some(&Region::new("us-east-1")));
        assert_eq!(base.endpoint_url(), Some("http://127.0.0.1:5000"));
        assert!(base.credentials_provider().is_some());
        assert!(
            base.http_client().is_some(),
            "the SDK has no default client"
        );

        let eu = region_config(Some(&base), "eu-west-1").await;
        assert_eq!(eu.region(), Some(&Region::new("eu-west-1")));
        assert_eq!(eu.endpoint_url(), base.endpoint_url());
        assert!(eu.credentials_provider().is_some());
        // The base is untouched: each region gets its own config.
        assert_eq!(base.region(), Some(&Region::new("us-east-1")));
        assert_eq!(
            with_region(&eu, "ap-south-1").region(),
            Some(&Region::new("ap-south-1"))
        );
    }

    #[tokio::test]
    async fn without_a_base_the_region_is_the_one_asked_for() {
        // Whatever AWS_REGION says: the region is explicit.
        let config = region_config(None, "sa-east-1").await;
        assert_eq!(config.region(), Some(&Region::new("sa-east-1")));
    }
}
