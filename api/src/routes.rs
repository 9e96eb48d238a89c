//! The route table, as data: the server's router matches requests against
//! it and the OpenAPI generator documents it, so the two cannot drift.

use schemars::{JsonSchema, Schema, SchemaGenerator};

use crate::error::ErrorCode;
use crate::jobs::{ScanJobResponse, ScanRequest};
use crate::types::*;

/// Which route a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteId {
    Detect,
    Compare,
    ListCollections,
    DeleteCollection,
    Enroll,
    ListPeople,
    GetPerson,
    PatchPerson,
    ForgetPerson,
    DeleteFace,
    Search,
    CreateUpload,
    GetResult,
    CreateScan,
    GetScan,
}

/// The JSON Schema of a body type, registered in the generator's
/// definitions.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The schema of `T` (a `$ref` into the definitions).
pub fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// A query parameter of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryParam {
    pub name: &'static str,
    /// JSON Schema type: `integer`, `number` or `string`.
    pub json_type: &'static str,
    pub description: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub id: RouteId,
    /// Upper case: `GET`, `POST`, `PATCH`, `DELETE`.
    pub method: &'static str,
    /// `/v1/...` with `{name}` path parameters, each a whole segment.
    pub path: &'static str,
    /// OpenAPI's operationId.
    pub operation_id: &'static str,
    pub summary: &'static str,
    pub request: Option<SchemaFn>,
    /// Whether the body may instead be the raw image (`Content-Type: image/*`).
    pub raw_image_body: bool,
    pub query: &'static [QueryParam],
    pub response: SchemaFn,
    /// The errors the route answers with besides the ones every route may
    /// (`Unauthorized`, `Throttled`, `TooLarge`, `Internal`).
    pub errors: &'static [ErrorCode],
}

/// Errors any route may answer with.
pub const COMMON_ERRORS: &[ErrorCode] = &[
    ErrorCode::Unauthorized,
    ErrorCode::TooLarge,
    ErrorCode::Throttled,
    ErrorCode::Internal,
];

const SEARCH_QUERY: &[QueryParam] = &[
    QueryParam {
        name: "threshold",
        json_type: "number",
        description: "With a raw image body: L2 distance under which a face is a person",
    },
    QueryParam {
        name: "max_faces",
        json_type: "integer",
        description: "With a raw image body: faces to answer for, largest first",
    },
    QueryParam {
        name: "max_candidates",
        json_type: "integer",
        description: "With a raw image body: ranked candidates per face",
    },
];

const PEOPLE_QUERY: &[QueryParam] = &[
    QueryParam {
        name: "limit",
        json_type: "integer",
        description: "People per page (1-1000, default 50)",
    },
    QueryParam {
        name: "next",
        json_type: "string",
        description: "The previous page's `next`",
    },
];

use ErrorCode::{BadInput, NotFound};

pub const ROUTES: &[Route] = &[
    Route {
        id: RouteId::Detect,
        method: "POST",
        path: "/v1/detect",
        operation_id: "detect",
        summary: "Faces of an image: Rekognition-shaped boxes (ratios), landmarks, confidence",
        request: Some(schema_of::<DetectRequest>),
        raw_image_body: true,
        query: &[],
        response: schema_of::<DetectResponse>,
        errors: &[BadInput, NotFound],
    },
    Route {
        id: RouteId::Compare,
        method: "POST",
        path: "/v1/compare",
        operation_id: "compare",
        summary: "The largest face of each image: distance, similarity (0-100), same_person",
        request: Some(schema_of::<CompareRequest>),
        raw_image_body: false,
        query: &[],
        response: schema_of::<CompareResponse>,
        errors: &[BadInput, NotFound],
    },
    Route {
        id: RouteId::ListCollections,
        method: "GET",
        path: "/v1/collections",
        operation_id: "listCollections",
        summary: "Every collection with its number of people",
        request: None,
        raw_image_body: false,
        query: &[],
        response: schema_of::<CollectionsResponse>,
        errors: &[],
    },
    Route {
        id: RouteId::DeleteCollection,
        method: "DELETE",
        path: "/v1/collections/{collection}",
        operation_id: "deleteCollection",
        summary: "Delete a collection and everything in it",
        request: None,
        raw_image_body: false,
        query: &[],
        response: schema_of::<DeleteCollectionResponse>,
        errors: &[BadInput, NotFound],
    },
    Route {
        id: RouteId::Enroll,
        method: "POST",
        path: "/v1/collections/{collection}/people/{person}/faces",
        operation_id: "enroll",
        summary: "Enroll a person from photos: indexed faces with ids, unindexed photos with reasons",
        request: Some(schema_of::<EnrollRequest>),
        raw_image_body: false,
        query: &[],
        response: schema_of::<EnrollResponse>,
        errors: &[BadInput],
    },
    Route {
        id: RouteId::ListPeople,
        method: "GET",
        path: "/v1/collections/{collection}/people",
        operation_id: "listPeople",
        summary: "The people of a collection, by name, a page at a time",
        request: None,
        raw_image_body: false,
        query: PEOPLE_QUERY,
        response: schema_of::<PeoplePage>,
        errors: &[BadInput, NotFound],
    },
    Route {
        id: RouteId::GetPerson,
        method: "GET",
        path: "/v1/collections/{collection}/people/{person}",
        operation_id: "getPerson",
        summary: "One person's attributes and faces",
        request: None,
        raw_image_body: false,
        query: &[],
        response: schema_of::<PersonDetail>,
        errors: &[BadInput, NotFound],
    },
    Route {
        id: RouteId::PatchPerson,
        method: "PATCH",
        path: "/v1/collections/{collection}/people/{person}",
        operation_id: "patchPerson",
        summary: "Set (string) or remove (null) attributes of a person",
        request: Some(schema_of::<PatchPersonRequest>),
        raw_image_body: false,
        query: &[],
        response: schema_of::<PersonDetail>,
        errors: &[BadInput, NotFound],
    },
    Route {
        id: RouteId::ForgetPerson,
        method: "DELETE",
        path: "/v1/collections/{collection}/people/{person}",
        operation_id: "forgetPerson",
        summary: "Forget a person: their faces and record",
        request: None,
        raw_image_body: false,
        query: &[],
        response: schema_of::<ForgetResponse>,
        errors: &[BadInput, NotFound],
    },
    Route {
        id: RouteId::DeleteFace,
        method: "DELETE",
        path: "/v1/collections/{collection}/faces/{face_id}",
        operation_id: "deleteFace",
        summary: "Remove one face",
        request: None,
        raw_image_body: false,
        query: &[],
        response: schema_of::<DeleteFaceResponse>,
        errors: &[BadInput, NotFound],
    },
    Route {
        id: RouteId::Search,
        method: "POST",
        path: "/v1/collections/{collection}/search",
        operation_id: "search",
        summary: "Every face of an image, largest first: match (person, distance, similarity, attributes) or null, and ranked candidates",
        request: Some(schema_of::<SearchRequest>),
        raw_image_body: true,
        query: SEARCH_QUERY,
        response: schema_of::<SearchResponse>,
        errors: &[BadInput, NotFound],
    },
    Route {
        id: RouteId::CreateUpload,
        method: "POST",
        path: "/v1/uploads",
        operation_id: "createUpload",
        summary: "A presigned S3 PUT URL for uploads/<collection>/... (length and type signed) and the result_id its recognition will have",
        request: Some(schema_of::<UploadRequest>),
        raw_image_body: false,
        query: &[],
        response: schema_of::<UploadResponse>,
        errors: &[BadInput],
    },
    Route {
        id: RouteId::GetResult,
        method: "GET",
        path: "/v1/results/{result_id}",
        operation_id: "getResult",
        summary: "An upload's recognition once written (404 until then)",
        request: None,
        raw_image_body: false,
        query: &[],
        response: schema_of::<ResultResponse>,
        errors: &[BadInput, NotFound],
    },
    Route {
        id: RouteId::CreateScan,
        method: "POST",
        path: "/v1/scans",
        operation_id: "createScan",
        summary: "Starts (or finds) the scan job of an MP4 in the bucket; answers 200 with the job",
        request: Some(schema_of::<ScanRequest>),
        raw_image_body: false,
        query: &[],
        response: schema_of::<ScanJobResponse>,
        errors: &[BadInput, NotFound],
    },
    Route {
        id: RouteId::GetScan,
        method: "GET",
        path: "/v1/scans/{job_id}",
        operation_id: "getScan",
        summary: "A scan job: status, progress (chunks done / total) and, when done, the timeline and the montage's key",
        request: None,
        raw_image_body: false,
        query: &[],
        response: schema_of::<ScanJobResponse>,
        errors: &[BadInput, NotFound],
    },
];

impl Route {
    pub fn get(id: RouteId) -> &'static Route {
        // Every id has one entry (checked by a test).
        ROUTES.iter().find(|r| r.id == id).unwrap_or(&ROUTES[0])
    }

    /// The names of the path's `{parameters}`, in order.
    pub fn path_params(&self) -> impl Iterator<Item = &'static str> {
        self.path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    }
}

/// A request matched to its route, with the path's parameters
/// (percent-decoded), in the template's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub route: &'static Route,
    pub params: Vec<(&'static str, String)>,
}

impl RouteMatch {
    /// A path parameter by name ("" if the route has none of that name).
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Route {}

/// Why no route matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRoute {
    /// No route has this path.
    Path,
    /// The path exists with other methods (listed).
    Method(Vec<&'static str>),
}

/// Decodes `%XX` escapes; None for a malformed escape or invalid UTF-8.
pub fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Matches a method and path (`/v1/...`; a leading `/live` stage is
/// ignored, as is a trailing `/`). Path parameters are percent-decoded.
pub fn match_route(method: &str, path: &str) -> Result<RouteMatch, NoRoute> {
    let path = path.split('?').next().unwrap_or_default();
    let path = path
        .strip_prefix(&format!("/{}", face_contracts::api::STAGE))
        .filter(|p| p.starts_with('/'))
        .unwrap_or(path);
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    let mut methods = Vec::new();
    for route in ROUTES {
        let template: Vec<&str> = route.path.split('/').collect();
        if template.len() != segments.len() {
            continue;
        }
        let mut params = Vec::new();
        let matched = template.iter().zip(&segments).all(|(t, s)| {
            match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                Some(name) => match percent_decode(s) {
                    Some(value) if !value.is_empty() => {
                        params.push((name, value));
                        true
                    }
                    _ => false,
                },
                None => t == s,
            }
        });
        if !matched {
            continue;
        }
        if route.method.eq_ignore_ascii_case(method) {
            return Ok(RouteMatch { route, params });
        }
        methods.push(route.method);
    }
    if methods.is_empty() {
        Err(NoRoute::Path)
    } else {
        Err(NoRoute::Method(methods))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_id_has_one_entry() {
        use std::collections::HashSet;
        let ids: HashSet<_> = ROUTES.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), ROUTES.len());
        let keys: HashSet<_> = ROUTES.iter().map(|r| (r.method, r.path)).collect();
        assert_eq!(keys.len(), ROUTES.len());
        for route in ROUTES {
            assert_eq!(Route::get(route.id).path, route.path);
            assert!(route.path.starts_with(crate::API_VERSION_PREFIX));
        }
    }

    #[test]
    fn paths_match_with_their_parameters() {
        let m = match_route("DELETE", "/v1/collections/got/people/jon%20snow").unwrap();
        assert_eq!(m.route.id, RouteId::ForgetPerson);
        assert_eq!(m.param("collection"), "got");
        assert_eq!(m.param("person"), "jon snow");
        let m = match_route("post", "/live/v1/collections/got/people/a/faces/").unwrap();
        assert_eq!(m.route.id, RouteId::Enroll);
        let m = match_route("GET", "/v1/results/got~0123").unwrap();
        assert_eq!(
            (m.route.id, m.param("result_id")),
            (RouteId::GetResult, "got~0123")
        );
        assert_eq!(
            match_route("GET", "/v1/collections").unwrap().route.id,
            RouteId::ListCollections
        );
        assert_eq!(
            match_route("GET", "/v1/collections/c/people")
                .unwrap()
                .route
                .id,
            RouteId::ListPeople
        );
    }

    #[test]
    fn unknown_paths_and_methods() {
        assert_eq!(match_route("GET", "/v2/detect"), Err(NoRoute::Path));
        assert_eq!(
            match_route("GET", "/v1/collections//people"),
            Err(NoRoute::Path)
        );
        assert_eq!(
            match_route("GET", "/v1/collections/%zz/people"),
            Err(NoRoute::Path)
        );
        assert_eq!(
            match_route("GET", "/v1/detect"),
            Err(NoRoute::Method(vec!["POST"]))
        );
        let Err(NoRoute::Method(methods)) = match_route("PUT", "/v1/collections/c/people/p") else {
            panic!("expected a method mismatch");
        };
        assert_eq!(methods, ["GET", "PATCH", "DELETE"]);
    }
}
