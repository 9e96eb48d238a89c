//! `facectl --stack NAME` / `--endpoint URL`: the same commands against a
//! deployed stack's HTTPS API (`face-api`'s contract), so a collection in
//! the cloud is used exactly like a local one.
//!
//! Blocking HTTP (ureq): one request at a time is all a CLI needs, and it
//! keeps an async runtime out of the commands that do not scan video.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use face_api::ApiError;
use face_api::types::{
    CompareRequest, CompareResponse, DetectRequest, DetectResponse, EnrollRequest, EnrollResponse,
    ForgetResponse, Image, PeoplePage, SearchRequest, SearchResponse, UploadRequest,
    UploadResponse,
};
use face_core::{Candidate, FaceMatch, RecognizedFace};
use face_stacks::DeployRecord;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Where the API key comes from when `--api-key` is not given.
pub const API_KEY_ENV: &str = face_api::CLIENT_API_KEY_ENV;

/// The collection whose upload prefix takes images that are too large to
/// send inline to `detect` or `compare` (their recognition result is a
/// by-product nobody reads).
const DETECT_UPLOADS: &str = "facectl-uploads";

/// Why a remote call failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The API answered with its error body.
    #[error("{code} ({status}): {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("{url}: {message}")]
    Transport { url: String, message: String },
    #[error("{url}: unexpected response: {message}")]
    Decode { url: String, message: String },
    #[error("{0}")]
    Config(String),
}

/// A client of one deployment's API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    /// `https://.../live` or `http://127.0.0.1:8450/live`; routes are
    /// appended (`/v1/...`).
    base_url: String,
    api_key: String,
    agent: ureq::Agent,
}

/// What names the API: a deployment and region, or a URL.
#[derive(Debug, Clone, Default)]
pub struct RemoteTarget {
    pub stack: Option<String>,
    pub region: Option<String>,
    /// Where deploy wrote `<region>.json` [default: $FACE_DEPLOY_DIR/<stack name>, else target/deploy/<stack name>].
    pub outputs_dir: Option<PathBuf>,
    pub endpoint: Option<String>,
    pub api_key: Option<String>,
}

impl RemoteTarget {
    /// Whether the command goes to a deployed API rather than running here.
    pub fn is_remote(&self) -> bool {
        self.stack.is_some() || self.endpoint.is_some()
    }
}

/// The deploy record of `stack`'s region (the first of the deployment when
/// none is named).
pub fn deploy_record_of_stack(
    stack: &str,
    region: Option<&str>,
    outputs_dir: Option<&Path>,
) -> Result<DeployRecord, RemoteError> {
    let deployment = face_stacks::Deployment::load(stack)
        .map_err(|e| RemoteError::Config(format!("{:#}", anyhow::Error::new(e))))?;
    let region = match region {
        Some(r) => deployment
            .region(r)
            .ok_or_else(|| RemoteError::Config(format!("{} has no region {r}", deployment.name)))?,
        None => deployment
            .regions
            .first()
            .ok_or_else(|| RemoteError::Config(format!("{} has no region", deployment.name)))?,
    };
    let dir = outputs_dir.map_or_else(
        || scan_coordinator::deployment::default_outputs_dir(&deployment),
        Path::to_path_buf,
    );
    let path = dir.join(DeployRecord::file_name(&region.region));
    let bytes = std::fs::read(&path).map_err(|e| {
        RemoteError::Config(format!(
            "{}: {e} (deploy the stack first: `cargo xtask deploy --stack {stack}`)",
            path.display()
        ))
    })?;
    DeployRecord::from_json(&bytes)
        .map_err(|e| RemoteError::Config(format!("{}: {e}", path.display())))
}

/// The base URL recorded for `stack`'s region (the first of the deployment
/// when none is named).
pub fn api_url_of_stack(
    stack: &str,
    region: Option<&str>,
    outputs_dir: Option<&Path>,
) -> Result<String, RemoteError> {
    let record = deploy_record_of_stack(stack, region, outputs_dir)?;
    record.api_url.ok_or_else(|| {
        RemoteError::Config(format!(
            "the {stack} deploy record in {} has no api_url (redeploy; for the local stack run `cargo xtask serve`)",
            record.region
        ))
    })
}

impl ApiClient {
    pub fn new(base_url: &str, api_key: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key: api_key.to_string(),
            // Error replies are read as replies: their JSON body is the
            // API's error contract.
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(120)))
                .http_status_as_error(false)
                .build()
                .into(),
        }
    }

    /// The client `target` names; the key from `--api-key`, else
    /// `$FACE_API_KEY`.
    pub fn from_target(target: &RemoteTarget) -> Result<Self, RemoteError> {
        let base = match (&target.endpoint, &target.stack) {
            (Some(url), _) => url.clone(),
            (None, Some(stack)) => api_url_of_stack(
                stack,
                target.region.as_deref(),
                target.outputs_dir.as_deref(),
            )?,
            (None, None) => {
                return Err(RemoteError::Config(
                    "name the API with --stack or --endpoint".into(),
                ));
            }
        };
        let key = target
            .api_key
            .clone()
            .or_else(|| std::env::var(API_KEY_ENV).ok())
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| {
                RemoteError::Config(format!(
                    "an API key is needed: --api-key or ${API_KEY_ENV} (create one with `cargo xtask api-key create`)"
                ))
            })?;
        Ok(Self::new(&base, key.trim()))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `method` on `path` with the API key, and `body` when there is one;
    /// the reply's JSON, or the API's error.
    fn send<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<(&[u8], &str)>,
    ) -> Result<T, RemoteError> {
        let url = self.url(path);
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header(face_api::API_KEY_HEADER, &self.api_key);
        let request = match body {
            Some((bytes, content_type)) => request.header("content-type", content_type).body(bytes),
            None => request.body(&[][..]),
        }
        .map_err(|e| RemoteError::Config(format!("{url}: {e}")))?;
        let response = self
            .agent
            .run(request)
            .map_err(|e| RemoteError::Transport {
                url: url.clone(),
                message: e.to_string(),
            })?;
        let status = response.status().as_u16();
        let text = response
            .into_body()
            .read_to_string()
            .map_err(|e| RemoteError::Transport {
                url: url.clone(),
                message: e.to_string(),
            })?;
        if status >= 400 {
            return Err(match serde_json::from_str::<ApiError>(&text) {
                Ok(body) => RemoteError::Api {
                    status,
                    code: body.error.code.as_str().to_string(),
                    message: body.error.message,
                },
                Err(_) => RemoteError::Api {
                    status,
                    code: "Http".into(),
                    message: text.chars().take(300).collect(),
                },
            });
        }
        serde_json::from_str(&text).map_err(|e| RemoteError::Decode {
            url,
            message: e.to_string(),
        })
    }

    fn json<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, RemoteError> {
        match body {
            Some(b) => {
                let bytes =
                    serde_json::to_vec(b).map_err(|e| RemoteError::Config(e.to_string()))?;
                self.send(method, path, Some((&bytes, "application/json")))
            }
            None => self.send(method, path, None),
        }
    }

    /// Images for one JSON body: inline while the body stays within what a
    /// request carries, the rest uploaded through presigned URLs first and
    /// referred to by key.
    pub fn images(&self, collection: &str, images: &[&[u8]]) -> Result<Vec<Image>, RemoteError> {
        // Room for the JSON around the images.
        let mut budget = face_api::limits::MAX_INLINE_BODY_BYTES.saturating_sub(16 * 1024);
        images
            .iter()
            .map(|bytes| {
                // base64 is 4/3 of the bytes, plus the JSON around it.
                let inline = bytes.len().div_ceil(3) * 4 + 64;
                if inline <= budget {
                    budget -= inline;
                    Ok(Image::Base64(
                        base64::engine::general_purpose::STANDARD.encode(bytes),
                    ))
                } else {
                    Ok(Image::S3Key(self.upload(collection, bytes)?.key))
                }
            })
            .collect()
    }

    /// `POST /v1/uploads`, then the PUT to the presigned URL.
    pub fn upload(&self, collection: &str, bytes: &[u8]) -> Result<UploadResponse, RemoteError> {
        let content_type = sniff_content_type(bytes);
        let upload: UploadResponse = self.json(
            "POST",
            "/v1/uploads",
            Some(&UploadRequest {
                collection: collection.to_string(),
                content_type: content_type.to_string(),
                content_length: bytes.len() as u64,
            }),
        )?;
        // The URL is a credential: errors name it, never print it.
        let where_to = || "the presigned upload URL".to_string();
        let mut put = ureq::http::Request::builder()
            .method(upload.method.as_str())
            .uri(&upload.url);
        for (name, value) in &upload.headers {
            // ureq sets the length from the body itself.
            if !name.eq_ignore_ascii_case("content-length") {
                put = put.header(name, value);
            }
        }
        let put = put.body(bytes).map_err(|e| RemoteError::Transport {
            url: where_to(),
            message: e.to_string(),
        })?;
        let reply = self.agent.run(put).map_err(|e| RemoteError::Transport {
            url: where_to(),
            message: e.to_string(),
        })?;
        let status = reply.status().as_u16();
        if status >= 400 {
            // S3's XML error: its <Code> says why (expired, signature, size).
            let text = reply.into_body().read_to_string().unwrap_or_default();
            let code = text
                .split_once("<Code>")
                .and_then(|(_, rest)| rest.split_once("</Code>"))
                .map_or("Http", |(code, _)| code);
            return Err(RemoteError::Api {
                status,
                code: code.to_string(),
                message: format!("the upload to S3 was refused ({code})"),
            });
        }
        Ok(upload)
    }

    /// `POST /v1/detect`: the raw image when it is a known format that fits
    /// a request, else JSON naming it (uploaded first if too large; the
    /// server then says what it is).
    pub fn detect(&self, bytes: &[u8]) -> Result<DetectResponse, RemoteError> {
        let content_type = sniff_content_type(bytes);
        if content_type.starts_with("image/")
            && bytes.len() <= face_api::limits::MAX_INLINE_BODY_BYTES
        {
            return self.send("POST", "/v1/detect", Some((bytes, content_type)));
        }
        let image = self.images(DETECT_UPLOADS, &[bytes])?.remove(0);
        self.json("POST", "/v1/detect", Some(&DetectRequest { image }))
    }

    pub fn search(&self, collection: &str, bytes: &[u8]) -> Result<SearchResponse, RemoteError> {
        let request = SearchRequest {
            image: self.images(collection, &[bytes])?.remove(0),
            threshold: None,
            max_faces: None,
            max_candidates: None,
        };
        self.json(
            "POST",
            &format!("/v1/collections/{collection}/search"),
            Some(&request),
        )
    }

    pub fn compare(&self, source: &[u8], target: &[u8]) -> Result<CompareResponse, RemoteError> {
        let mut images = self.images(DETECT_UPLOADS, &[source, target])?.into_iter();
        let (Some(source), Some(target)) = (images.next(), images.next()) else {
            return Err(RemoteError::Config("two images expected".into()));
        };
        let request = CompareRequest { source, target };
        self.json("POST", "/v1/compare", Some(&request))
    }

    pub fn enroll(
        &self,
        collection: &str,
        person: &str,
        images: Vec<Image>,
        attributes: BTreeMap<String, String>,
    ) -> Result<EnrollResponse, RemoteError> {
        let request = EnrollRequest {
            images,
            attributes: (!attributes.is_empty()).then_some(attributes),
        };
        let path = format!(
            "/v1/collections/{}/people/{}/faces",
            segment(collection),
            segment(person)
        );
        self.json("POST", &path, Some(&request))
    }

    /// Every person of `collection`, all pages.
    pub fn people(
        &self,
        collection: &str,
    ) -> Result<Vec<face_api::types::PersonSummary>, RemoteError> {
        let mut people = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let mut path = format!(
                "/v1/collections/{collection}/people?limit={}",
                face_api::limits::MAX_PEOPLE_PAGE
            );
            if let Some(token) = &next {
                path.push_str("&next=");
                path.push_str(&percent_encode(token));
            }
            let page: PeoplePage = self.json("GET", &path, None::<&()>)?;
            people.extend(page.people);
            match page.next {
                Some(token) => next = Some(token),
                None => return Ok(people),
            }
        }
    }

    /// `GET /v1/scans/{job_id}`.
    pub fn scan_status(
        &self,
        job_id: &str,
    ) -> Result<face_api::jobs::ScanJobResponse, RemoteError> {
        self.json(
            "GET",
            &format!("/v1/scans/{}", segment(job_id)),
            None::<&()>,
        )
    }

    /// `POST /v1/scans`.
    pub fn start_scan(
        &self,
        request: &face_api::jobs::ScanRequest,
    ) -> Result<face_api::jobs::ScanJobResponse, RemoteError> {
        self.json("POST", "/v1/scans", Some(request))
    }

    pub fn forget(&self, collection: &str, person: &str) -> Result<ForgetResponse, RemoteError> {
        let path = format!(
            "/v1/collections/{}/people/{}",
            segment(collection),
            segment(person)
        );
        self.json("DELETE", &path, None::<&()>)
    }
}

/// A name as one path segment: `/`, `?`, `#`, `%` and the like escaped, so
/// a person named `a?b` is never person `a`.
fn segment(name: &str) -> String {
    percent_encode(name)
}

/// Everything but RFC 3986's unreserved characters, escaped.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `image/*` type of the bytes (what the server sniffs too), so the
/// gateway passes them as binary.
pub fn sniff_content_type(bytes: &[u8]) -> &'static str {
    match bytes {
        [0xff, 0xd8, 0xff, ..] => "image/jpeg",
        [0x89, b'P', b'N', b'G', ..] => "image/png",
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => "image/webp",
        _ => "application/octet-stream",
    }
}

/// A search answer as the local `recognize` prints it.
pub fn recognized_faces(response: &SearchResponse) -> Vec<RecognizedFace> {
    response
        .faces
        .iter()
        .map(|f| RecognizedFace {
            face: f.face.clone(),
            face_match: FaceMatch {
                identity: f.face_match.as_ref().map(|m| Candidate {
                    person: m.person.clone(),
                    distance: m.distance,
                    similarity: m.similarity,
                }),
                candidates: f.candidates.clone(),
                unknown_reason: f.unknown_reason,
            },
            quality: face_core::quality::measure_detection(&f.face),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_sniffed_from_bytes() {
        assert_eq!(sniff_content_type(&[0xff, 0xd8, 0xff, 0xe0]), "image/jpeg");
        assert_eq!(sniff_content_type(b"\x89PNG\r\n"), "image/png");
        assert_eq!(sniff_content_type(b"RIFF\0\0\0\0WEBPVP8 "), "image/webp");
        assert_eq!(sniff_content_type(b"GIF89a"), "application/octet-stream");
    }

    #[test]
    fn tokens_are_percent_encoded() {
        assert_eq!(percent_encode("a b/c~"), "a%20b%2Fc~");
        assert_eq!(segment("a?b#c%"), "a%3Fb%23c%25");
    }

    #[test]
    fn a_key_is_required() {
        let target = RemoteTarget {
            endpoint: Some("http://127.0.0.1:1/live".into()),
            ..Default::default()
        };
        // Only when the environment holds none either.
        if std::env::var(API_KEY_ENV).is_err() {
            let err = ApiClient::from_target(&target).unwrap_err().to_string();
            assert!(err.contains("--api-key"), "{err}");
        }
        let err = ApiClient::from_target(&RemoteTarget::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("--stack or --endpoint"), "{err}");
    }
}
