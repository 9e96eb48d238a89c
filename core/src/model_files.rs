//! The model files the pipeline runs, by name. Only names: reading them is
//! the caller's job (a folder for the CLI, the Lambda artifact's `models/`).

/// YuNet-s with a dynamic input, so the letterbox keeps the photo's aspect
/// ratio.
pub const DEFAULT_DETECTOR: &str = "yunet_s_dynamic.onnx";
/// dlib's ResNet, converted to ONNX (see `dlib-model`).
pub const RECOGNIZER: &str = "dlib_face_recognition_resnet_model_v1.onnx";

/// The collection tag for a detector file: embeddings depend on the
/// landmarks, so the detector is part of the model version.
pub fn face_model_version(detector_file: &str) -> String {
    let detector = detector_file.trim_end_matches(".onnx");
    format!("{detector}+dlib_resnet_v1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_detector_and_recognizer() {
        assert_eq!(
            face_model_version(DEFAULT_DETECTOR),
            "yunet_s_dynamic+dlib_resnet_v1"
        );
    }
}
