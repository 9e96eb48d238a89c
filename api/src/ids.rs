//! Ids the API hands out: the `result_id` of a presigned upload, and the
//! S3 key it names.
//!
//! A result id is `<collection>~<token>` with `token` 32 lowercase hex
//! digits (16 random bytes). `~` never appears in a collection name and is
//! unreserved in URLs, so the id is safe in a path as is. The upload's key
//! is `<upload_prefix><collection>/<token>`, which the recognize function
//! matches against `<collection>`.

use thiserror::Error;

/// Between the collection and the token of a result id.
pub const RESULT_ID_SEPARATOR: char = '~';
/// Hex digits of an upload token.
pub const UPLOAD_TOKEN_HEX_LEN: usize = 32;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IdError {
    #[error(
        "invalid result id {0:?}: expected <collection>~<32 lowercase hex digits>, as POST /v1/uploads returns it"
    )]
    ResultId(String),
    #[error("invalid collection name {0:?}: use 1-64 of A-Z a-z 0-9 _ . -")]
    Collection(String),
    #[error("invalid upload token {0:?}: expected 32 lowercase hex digits")]
    Token(String),
}

/// The longest collection name, in bytes (all ASCII).
pub const COLLECTION_NAME_MAX_LEN: usize = 64;

/// The one collection name rule, for the API, the functions and `facectl`'s
/// local store alike: 1-64 of `A-Z a-z 0-9 _ . -`, not `.` or `..`. Safe in
/// S3 keys, DynamoDB keys, URL paths and file names, and never holds the
/// result id's `~`.
pub fn validate_collection_name(name: &str) -> Result<(), IdError> {
    let ok = (1..=COLLECTION_NAME_MAX_LEN).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(IdError::Collection(name.into()))
    }
}

/// [`validate_collection_name`] as a yes or no.
pub fn is_valid_collection_name(name: &str) -> bool {
    validate_collection_name(name).is_ok()
}

fn is_token(token: &str) -> bool {
    token.len() == UPLOAD_TOKEN_HEX_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A presigned upload: its collection and random token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRef {
    pub collection: String,
    pub token: String,
}

impl UploadRef {
    /// From 16 random bytes (the caller's source of randomness).
    pub fn new(collection: &str, random: [u8; 16]) -> Result<Self, IdError> {
        Self::from_parts(collection, &hex::encode(random))
    }

    pub fn from_parts(collection: &str, token: &str) -> Result<Self, IdError> {
        validate_collection_name(collection)?;
        if !is_token(token) {
            return Err(IdError::Token(token.into()));
        }
        Ok(Self {
            collection: collection.into(),
            token: token.into(),
        })
    }

    /// `<collection>~<token>`.
    pub fn result_id(&self) -> String {
        format!("{}{RESULT_ID_SEPARATOR}{}", self.collection, self.token)
    }

    /// Parses a result id as [`Self::result_id`] writes it.
    pub fn parse_result_id(id: &str) -> Result<Self, IdError> {
        let (collection, token) = id
            .split_once(RESULT_ID_SEPARATOR)
            .ok_or_else(|| IdError::ResultId(id.into()))?;
        Self::from_parts(collection, token).map_err(|_| IdError::ResultId(id.into()))
    }

    /// `<upload_prefix><collection>/<token>` (`upload_prefix` ends with `/`,
    /// e.g. `uploads/`).
    pub fn upload_key(&self, upload_prefix: &str) -> String {
        let slash = if upload_prefix.is_empty() || upload_prefix.ends_with('/') {
            ""
        } else {
            "/"
        };
        format!("{upload_prefix}{slash}{}/{}", self.collection, self.token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_ids_round_trip() {
        let upload = UploadRef::new("class-2024", [0xab; 16]).unwrap();
        let id = upload.result_id();
        assert_eq!(id, format!("class-2024~{}", "ab".repeat(16)));
        assert_eq!(UploadRef::parse_result_id(&id).unwrap(), upload);
        assert_eq!(
            upload.upload_key("uploads/"),
            format!("uploads/class-2024/{}", "ab".repeat(16))
        );
        assert_eq!(upload.upload_key("in"), upload.upload_key("in/"));
    }

    #[test]
    fn collection_names_follow_one_rule() {
        for good in [
            "a",
            "class-2024",
            "A_b.c-9",
            ".hidden",
            "...",
            &"x".repeat(64),
        ] {
            assert_eq!(validate_collection_name(good), Ok(()), "{good:?}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../etc",
            "a b",
            "a~b",
            "caf\u{e9}",
            "tab\t",
            &"x".repeat(65),
        ] {
            assert_eq!(
                validate_collection_name(bad),
                Err(IdError::Collection(bad.into())),
                "{bad:?}"
            );
            assert!(!is_valid_collection_name(bad));
        }
        let message = validate_collection_name("a/b").unwrap_err().to_string();
        assert_eq!(
            message,
            "invalid collection name \"a/b\": use 1-64 of A-Z a-z 0-9 _ . -"
        );
    }

    #[test]
    fn malformed_result_ids_are_refused() {
        let token = "0123456789abcdef0123456789abcdef";
        for bad in [
            String::new(),
            "nosep".into(),
            format!("~{token}"),
            format!("a b~{token}"),
            format!("c~{}", &token[1..]),
            format!("c~{}", token.to_uppercase()),
            format!("../x~{token}"),
            format!("c~{token}~{token}"),
        ] {
            let err = UploadRef::parse_result_id(&bad).unwrap_err();
            assert!(matches!(err, IdError::ResultId(_)), "{bad}: {err}");
        }
        assert!(UploadRef::parse_result_id(&format!("c.1_-~{token}")).is_ok());
        assert!(matches!(
            UploadRef::from_parts("a/b", token),
            Err(IdError::Collection(_))
        ));
    }
}
