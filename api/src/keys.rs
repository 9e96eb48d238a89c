//! API keys: their format, how they are stored (hashed) in the keys table,
//! the per-key limits and what the authorizer hands the api function.
//!
//! The keys table (`FACE_API_KEYS_TABLE`) has one partition key, `id` (S),
//! and TTL on `expires_at` (N, epoch seconds). Its items:
//!
//! | `id` | attributes |
//! |---|---|
//! | `key#<sha256 hex of the key>` | `name` (S), `created_at` (S, RFC 3339), `rate_per_minute` (N), `quota_per_day` (N), `revoked_at` (S, once revoked) |
//! | `name#<name>` | `key_id` (S, the sha256 hex), `created_at` (S) |
//! | `rate#<name>#<unix minute>` | `count` (N), `expires_at` (N) |
//! | `quota#<name>#<YYYY-MM-DD>` (UTC) | `count` (N), `expires_at` (N) |
//!
//! The key itself is never stored or logged: only its hash.

use base64::Engine;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Attribute names of the keys table.
pub mod attr {
    /// The partition key (S) and the TTL attribute (N, epoch seconds) of
    /// the counters: the table's key schema, which the stack declares.
    pub use face_contracts::tables::api_keys::{PARTITION_KEY as ID, TTL_ATTRIBUTE as EXPIRES_AT};
    pub const NAME: &str = "name";
    pub const CREATED_AT: &str = "created_at";
    pub const RATE_PER_MINUTE: &str = "rate_per_minute";
    pub const QUOTA_PER_DAY: &str = "quota_per_day";
    pub const REVOKED_AT: &str = "revoked_at";
    /// On a name item: the sha256 hex of its key.
    pub const KEY_ID: &str = "key_id";
    /// On a counter item.
    pub const COUNT: &str = "count";
}

pub const KEY_ITEM_PREFIX: &str = "key#";
pub const NAME_ITEM_PREFIX: &str = "name#";
pub const RATE_ITEM_PREFIX: &str = "rate#";
pub const QUOTA_ITEM_PREFIX: &str = "quota#";

/// Requests per minute a new key may make, unless created with another limit.
pub const DEFAULT_RATE_PER_MINUTE: u32 = 120;
/// Requests per UTC day a new key may make, unless created with another limit.
pub const DEFAULT_QUOTA_PER_DAY: u32 = 10_000;

/// Every key starts with this.
pub const API_KEY_PREFIX: &str = "fk_";
/// Random bytes in a key (base64url without padding: 40 characters).
pub const API_KEY_RANDOM_BYTES: usize = 30;

/// The keys of the authorizer's context (and the `principalId` is the key's
/// name), as the api function reads them from
/// `requestContext.authorizer`.
pub mod context {
    pub const KEY_NAME: &str = "key_name";
    pub const RATE_PER_MINUTE: &str = "rate_per_minute";
    pub const QUOTA_PER_DAY: &str = "quota_per_day";
}

/// `fk_` + base64url (no padding) of 30 random bytes (the caller's source
/// of randomness, e.g. the OS's).
pub fn format_api_key(random: &[u8; API_KEY_RANDOM_BYTES]) -> String {
    format!(
        "{API_KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    )
}

/// Whether a string has the shape of a key (checked before hashing, so
/// garbage never reaches the table).
pub fn looks_like_api_key(key: &str) -> bool {
    key.strip_prefix(API_KEY_PREFIX).is_some_and(|rest| {
        rest.len() == API_KEY_RANDOM_BYTES.div_ceil(3) * 4
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// The sha256 of the key, lowercase hex: how a key is stored.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// `key#<sha256 hex>`: the item of a key.
pub fn key_item_id(key: &str) -> String {
    key_item_id_for_hash(&hash_api_key(key))
}

pub fn key_item_id_for_hash(key_hash: &str) -> String {
    format!("{KEY_ITEM_PREFIX}{key_hash}")
}

/// `name#<name>`: the item that maps a name to its key's hash.
pub fn name_item_id(name: &str) -> String {
    format!("{NAME_ITEM_PREFIX}{name}")
}

/// `rate#<name>#<unix minute>`: the counter of one minute.
pub fn rate_counter_id(name: &str, unix_s: u64) -> String {
    format!("{RATE_ITEM_PREFIX}{name}#{}", unix_s / 60)
}

/// When a minute's counter may be dropped: the end of the next minute.
pub fn rate_counter_expires_at(unix_s: u64) -> u64 {
    (unix_s / 60 + 2) * 60
}

/// `quota#<name>#<YYYY-MM-DD>` (UTC): the counter of one day.
pub fn quota_counter_id(name: &str, unix_s: u64) -> String {
    format!("{QUOTA_ITEM_PREFIX}{name}#{}", utc_date(unix_s))
}

/// When a day's counter may be dropped: the end of the next day.
pub fn quota_counter_expires_at(unix_s: u64) -> u64 {
    (unix_s / 86_400 + 2) * 86_400
}

/// `YYYY-MM-DD` of a Unix time, UTC (Howard Hinnant's civil-from-days).
pub fn utc_date(unix_s: u64) -> String {
    let z = (unix_s / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("invalid key name {0:?}: use 1-64 of A-Z a-z 0-9 _ . -")]
pub struct KeyNameError(pub String);

/// 1-64 of `A-Z a-z 0-9 _ . -` (no `#`, which separates the parts of the
/// table's ids).
pub fn validate_key_name(name: &str) -> Result<(), KeyNameError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(KeyNameError(name.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_format() {
        let key = format_api_key(&[0xfb; API_KEY_RANDOM_BYTES]);
        assert!(key.starts_with("fk_"));
        assert_eq!(key.len(), 3 + 40);
        assert!(looks_like_api_key(&key), "{key}");
        assert!(
            key[3..].contains('-') || key[3..].contains('_'),
            "url-safe alphabet: {key}"
        );
        let other = format_api_key(&[7; API_KEY_RANDOM_BYTES]);
        assert_ne!(key, other);
        assert!(looks_like_api_key(&other));
        for bad in [
            "",
            "fk_",
            "fk_short",
            &key[1..],
            &format!("{key}x"),
            &key.replace("fk_", "xx_"),
        ] {
            assert!(!looks_like_api_key(bad), "{bad}");
        }
    }

    #[test]
    fn hashing_is_sha256_hex() {
        // sha256("abc"), the FIPS 180-2 test vector.
        assert_eq!(
            hash_api_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(key_item_id("abc"), format!("key#{}", hash_api_key("abc")));
        assert_eq!(name_item_id("pi-cam"), "name#pi-cam");
    }

    #[test]
    fn counters_are_keyed_by_minute_and_utc_day() {
        // 2024-02-29T23:59:30Z
        let t = 1_709_251_170;
        assert_eq!(utc_date(t), "2024-02-29");
        assert_eq!(utc_date(t + 30), "2024-03-01");
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(rate_counter_id("k", t), format!("rate#k#{}", t / 60));
        assert_eq!(quota_counter_id("k", t), "quota#k#2024-02-29");
        assert!(rate_counter_expires_at(t) > t + 60);
        assert!(quota_counter_expires_at(t) > t + 86_400 - 30);
    }

    #[test]
    fn key_names() {
        for ok in ["a", "pi-cam.1_x", &"n".repeat(64)] {
            assert!(validate_key_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a#b", "a b", "é", &"n".repeat(65)] {
            assert!(validate_key_name(bad).is_err(), "{bad}");
        }
    }
}
