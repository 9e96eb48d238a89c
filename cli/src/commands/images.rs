//! What `detect`, `recognize` and `enroll` share: reading and decoding each
//! image, the per-image loop, and `--annotate`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use face_core::{DetectedFace, FacePipeline, RecognizedFace};
use facectl::annotate;
use facectl::files::read_image_file;
use facectl::outln;
use serde::Serialize;

use super::{progress, report_failure};

#[derive(Debug, Serialize)]
pub struct ImageFaces<F> {
    path: String,
    width: u32,
    height: u32,
    faces: Vec<F>,
}

pub fn read_and_decode(
    pipeline: &FacePipeline,
    path: &Path,
) -> Result<(Vec<u8>, face_core::RgbImage)> {
    let bytes = read_image_file(path, pipeline.config().decode_limits.max_encoded_bytes)?;
    let image = pipeline.decode(&bytes)?;
    Ok((bytes, image))
}

pub fn write_annotated(
    path: &Path,
    mut image: face_core::RgbImage,
    faces: &[DetectedFace],
    known: &[bool],
) -> Result<()> {
    annotate::draw_faces(&mut image, faces, known);
    image
        .save_with_format(path, image::ImageFormat::Png)
        .with_context(|| format!("writing {}", path.display()))
}

/// `--annotate` draws on one image: refused with several, before any work.
pub fn one_image_to_annotate(images: &[PathBuf], annotate_to: Option<&Path>) -> Result<()> {
    if annotate_to.is_some() && images.len() != 1 {
        bail!("--annotate takes exactly one image");
    }
    Ok(())
}

/// A face as `--annotate` draws it.
pub trait AnnotatedFace {
    fn detected(&self) -> &DetectedFace;
    /// Known or unknown, once matched against a collection.
    fn recognized(&self) -> Option<bool>;
}

impl AnnotatedFace for DetectedFace {
    fn detected(&self) -> &DetectedFace {
        self
    }
    fn recognized(&self) -> Option<bool> {
        None
    }
}

impl AnnotatedFace for RecognizedFace {
    fn detected(&self) -> &DetectedFace {
        &self.face
    }
    fn recognized(&self) -> Option<bool> {
        Some(self.face_match.identity.is_some())
    }
}

/// What `detect` and `recognize` share: each image read, decoded and
/// analyzed in turn, printed as text or gathered into one JSON array; an
/// unreadable image is reported on its own line and the others go on (the
/// exit code says some failed). A file over `max_bytes` is refused unread.
pub fn per_image<F: AnnotatedFace + Serialize>(
    images: &[PathBuf],
    max_bytes: u64,
    json: bool,
    annotate_to: Option<&Path>,
    analyze: impl Fn(&[u8]) -> Result<(Pixels, Vec<F>)>,
    print: fn(&Path, &[F]) -> Result<()>,
) -> Result<ExitCode> {
    let bar = progress(images.len());
    let mut failed = false;
    let mut results = Vec::new();
    for path in images {
        bar.set_message(path.display().to_string());
        let outcome = read_image_file(path, max_bytes)
            .and_then(|bytes| analyze(&bytes).map(|(pixels, faces)| (bytes, pixels, faces)));
        bar.inc(1);
        match outcome {
            Ok((bytes, pixels, faces)) => {
                let (width, height) = pixels.size();
                if let Some(out) = annotate_to {
                    let detected: Vec<DetectedFace> =
                        faces.iter().map(|f| f.detected().clone()).collect();
                    let known: Vec<bool> = faces.iter().filter_map(F::recognized).collect();
                    write_annotated(out, pixels.into_image(&bytes)?, &detected, &known)?;
                }
                if !json {
                    bar.suspend(|| print(path, &faces))?;
                }
                results.push(ImageFaces {
                    path: path.display().to_string(),
                    width,
                    height,
                    faces,
                });
            }
            Err(e) => {
                failed = true;
                bar.suspend(|| report_failure(path, &e));
            }
        }
    }
    bar.finish_and_clear();
    if json {
        outln!("{}", serde_json::to_string_pretty(&results)?)?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// An analyzed image: decoded here, or only its size (a remote answer).
pub enum Pixels {
    Decoded(face_core::RgbImage),
    #[cfg(feature = "cloud")]
    Size(u32, u32),
}

impl Pixels {
    fn size(&self) -> (u32, u32) {
        match self {
            Pixels::Decoded(image) => (image.width(), image.height()),
            #[cfg(feature = "cloud")]
            Pixels::Size(w, h) => (*w, *h),
        }
    }

    /// The pixels to draw on, decoding `bytes` here if the analysis ran
    /// elsewhere (only with the `cloud` feature).
    #[cfg_attr(not(feature = "cloud"), allow(unused_variables))]
    fn into_image(self, bytes: &[u8]) -> Result<face_core::RgbImage> {
        match self {
            Pixels::Decoded(image) => Ok(image),
            #[cfg(feature = "cloud")]
            Pixels::Size(..) => {
                Ok(face_core::decode_image(bytes, &face_core::DecodeLimits::default())?.rgb)
            }
        }
    }
}
