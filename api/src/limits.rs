//! Limits of the API, shared by the gateway and the server.

/// Lambda's limit on a synchronous invocation's request event.
pub const MAX_REQUEST_EVENT_BYTES: usize = 6 * 1024 * 1024;

/// The largest request body (as the client sends it: JSON text or raw
/// image bytes) the API takes inline. Chosen so that the body still fits
/// the 6 MiB Lambda event when the gateway base64-encodes it (4/3), with
/// room for the headers. Larger images go through `POST /v1/uploads`.
pub const MAX_INLINE_BODY_BYTES: usize = 4 * 1024 * 1024;

/// How long a presigned upload URL is valid.
pub const UPLOAD_URL_EXPIRES_IN_S: u64 = 300;

/// The largest upload a presigned URL is issued for: what the recognize
/// function decodes at most (face-core's default encoded-size limit).
pub const MAX_UPLOAD_BYTES: u64 = 15 * 1024 * 1024;

/// The largest video a presigned URL is issued for: S3's single-PUT limit.
pub const MAX_VIDEO_UPLOAD_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// Photos per enroll call (more would risk the function's timeout).
pub const MAX_IMAGES_PER_ENROLL: usize = 20;

/// Faces a search answers for at most (and by default), largest first: a
/// crowd's answer still fits a Lambda response.
pub const MAX_SEARCH_FACES: u32 = 100;

/// `?limit` of `GET /v1/collections/{c}/people`: default and maximum.
pub const DEFAULT_PEOPLE_PAGE: u32 = 50;
pub const MAX_PEOPLE_PAGE: u32 = 1000;

/// The 413 message for a body of `size` bytes.
pub fn too_large_message(size: usize) -> String {
    format!(
        "the request body is {size} bytes, over the {MAX_INLINE_BODY_BYTES} bytes a request can carry: \
         upload the image with POST /v1/uploads (a presigned S3 PUT) and send {{\"s3_key\": ...}} instead"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inline_body_fits_the_event_base64_encoded() {
        assert!(MAX_INLINE_BODY_BYTES.div_ceil(3) * 4 + 64 * 1024 < MAX_REQUEST_EVENT_BYTES);
        assert!(too_large_message(5_000_000).contains("POST /v1/uploads"));
    }
}
