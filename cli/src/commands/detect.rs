//! `facectl detect`: boxes, landmarks and confidence of every face.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use face_core::DetectedFace;
use facectl::outln;
#[cfg(feature = "cloud")]
use facectl::remote;

use super::images::{Pixels, one_image_to_annotate, per_image};
use crate::{GlobalArgs, RemoteArgs, Target, load};

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Image files (JPEG, PNG, WebP)
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
    /// Write a copy of the (single) image with boxes and landmarks drawn
    #[arg(long, value_name = "OUT.png")]
    annotate: Option<PathBuf>,
    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn run(g: &GlobalArgs, args: DetectArgs) -> Result<ExitCode> {
    let DetectArgs {
        images,
        json,
        annotate,
        remote,
    } = args;
    match remote.target()? {
        #[cfg(feature = "cloud")]
        Target::Api(client) => remote_detect(&client, &images, json, annotate.as_deref()),
        Target::Here => detect(g, &images, json, annotate.as_deref()),
    }
}

fn detect(
    g: &GlobalArgs,
    images: &[PathBuf],
    json: bool,
    annotate_to: Option<&Path>,
) -> Result<ExitCode> {
    one_image_to_annotate(images, annotate_to)?;
    let pipeline = load(g)?;
    per_image(
        images,
        pipeline.config().decode_limits.max_encoded_bytes,
        json,
        annotate_to,
        |bytes| {
            let image = pipeline.decode(bytes)?;
            let mut faces = pipeline.detect(&image)?;
            DetectedFace::largest_first(&mut faces);
            Ok((Pixels::Decoded(image), faces))
        },
        print_detections,
    )
}

#[cfg(feature = "cloud")]
fn remote_detect(
    client: &remote::ApiClient,
    images: &[PathBuf],
    json: bool,
    annotate_to: Option<&Path>,
) -> Result<ExitCode> {
    one_image_to_annotate(images, annotate_to)?;
    per_image(
        images,
        face_api::limits::MAX_UPLOAD_BYTES,
        json,
        annotate_to,
        |bytes| {
            let r = client.detect(bytes)?;
            Ok((Pixels::Size(r.image_width, r.image_height), r.faces))
        },
        print_detections,
    )
}

fn print_detections(path: &Path, faces: &[DetectedFace]) -> Result<()> {
    outln!("{}: {} face(s)", path.display(), faces.len())?;
    for (i, f) in faces.iter().enumerate() {
        outln!(
            "  #{i} box x={:.0} y={:.0} w={:.0} h={:.0} confidence {:.3}",
            f.bbox.x,
            f.bbox.y,
            f.bbox.width,
            f.bbox.height,
            f.confidence
        )?;
    }
    Ok(())
}
