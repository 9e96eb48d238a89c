//! The DynamoDB tables' key attributes: what the stack declares as each
//! table's `KeySchema` (and TTL) and what the functions key their reads and
//! writes with. Each table's other attributes are its owner's
//! (`face-service::aws`; the keys table's are `face_api::keys::attr`).

/// `<stack>-people`: one item per enrolled person.
pub mod people {
    /// Partition key (S).
    pub const PARTITION_KEY: &str = "collection";
    /// Sort key (S).
    pub const SORT_KEY: &str = "person";
}

/// `<stack>-results`: one item per processed object version.
pub mod results {
    /// Partition key (S): `s3://<bucket>/<key>#<version id or etag>`.
    pub const PARTITION_KEY: &str = "result_id";
}

/// `<stack>-scan-jobs`: one item per video job.
pub mod scan_jobs {
    /// Partition key (S): 32 hex digits (`face_api::jobs::job_id_for`).
    pub const PARTITION_KEY: &str = "job_id";
}

/// `<stack>-api-keys`: hashed keys, names and usage counters.
pub mod api_keys {
    /// Partition key (S): `key#...`, `name#...`, `rate#...`, `quota#...`.
    pub const PARTITION_KEY: &str = "id";
    /// The TTL attribute (N, epoch seconds) of the usage counters.
    pub const TTL_ATTRIBUTE: &str = "expires_at";
}
