//! The functions' CloudWatch metrics: what `face_service::metrics` writes
//! (embedded metric format) and the stack's dashboard charts.
//!
//! Every metric is in namespace [`NAMESPACE`] with the one dimension
//! [`DIMENSION`] (the function's name): nothing per request, so the number
//! of metrics (what CloudWatch bills) stays fixed.

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "FaceRecognition";
/// The one dimension, valued with `AWS_LAMBDA_FUNCTION_NAME`.
pub const DIMENSION: &str = "Function";

/// CloudWatch's unit of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Milliseconds,
    Count,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Milliseconds => "Milliseconds",
            Unit::Count => "Count",
        }
    }
}

/// Every metric a function writes; each has one unit, always.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// 1 on the first invocation of a container (every function).
    ColdStart,
    /// The function's own init (`init_function`: config, models, SDK
    /// config), on the cold start's line.
    InitDuration,
    /// Pipeline stages of one image (`recognize`) or, for `DecodeTime` and
    /// `DetectTime`, of one chunk's frames (`scan-worker`).
    DecodeTime,
    DetectTime,
    AlignTime,
    EmbedTime,
    MatchTime,
    /// Faces detected in an image or a chunk's detected frames.
    FacesFound,
    /// Of those, the faces named (matched to an enrolled person).
    FacesMatched,
    /// One enroll call (`enroll`): photos indexed and refused, its time.
    PhotosIndexed,
    PhotosUnindexed,
    EnrollTime,
    /// One chunk (`scan-worker`): its frames, those the detector ran on,
    /// the recognizer's and the whole scan's time.
    ChunkFrames,
    FramesDetected,
    RecognizeTime,
    ChunkTime,
}

impl Metric {
    pub const ALL: [Metric; 16] = [
        Metric::ColdStart,
        Metric::InitDuration,
        Metric::DecodeTime,
        Metric::DetectTime,
        Metric::AlignTime,
        Metric::EmbedTime,
        Metric::MatchTime,
        Metric::FacesFound,
        Metric::FacesMatched,
        Metric::PhotosIndexed,
        Metric::PhotosUnindexed,
        Metric::EnrollTime,
        Metric::ChunkFrames,
        Metric::FramesDetected,
        Metric::RecognizeTime,
        Metric::ChunkTime,
    ];

    /// The metric's CloudWatch name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::ColdStart => "ColdStart",
            Metric::InitDuration => "InitDuration",
            Metric::DecodeTime => "DecodeTime",
            Metric::DetectTime => "DetectTime",
            Metric::AlignTime => "AlignTime",
            Metric::EmbedTime => "EmbedTime",
            Metric::MatchTime => "MatchTime",
            Metric::FacesFound => "FacesFound",
            Metric::FacesMatched => "FacesMatched",
            Metric::PhotosIndexed => "PhotosIndexed",
            Metric::PhotosUnindexed => "PhotosUnindexed",
            Metric::EnrollTime => "EnrollTime",
            Metric::ChunkFrames => "ChunkFrames",
            Metric::FramesDetected => "FramesDetected",
            Metric::RecognizeTime => "RecognizeTime",
            Metric::ChunkTime => "ChunkTime",
        }
    }

    pub fn unit(self) -> Unit {
        match self {
            Metric::ColdStart
            | Metric::FacesFound
            | Metric::FacesMatched
            | Metric::PhotosIndexed
            | Metric::PhotosUnindexed
            | Metric::ChunkFrames
            | Metric::FramesDetected => Unit::Count,
            _ => Unit::Milliseconds,
        }
    }
}
