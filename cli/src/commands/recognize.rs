//! `facectl recognize`: who is in each photo, or "unknown".

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use face_core::{RecognizedFace, StageTimings};
use facectl::outln;
#[cfg(feature = "cloud")]
use facectl::remote;
use facectl::store;

use super::images::{Pixels, one_image_to_annotate, per_image};
use crate::{GlobalArgs, RemoteArgs, Target, load};

#[derive(Debug, Args)]
pub struct RecognizeArgs {
    /// The collection to match against
    #[arg(long)]
    collection: String,
    /// Image files (JPEG, PNG, WebP)
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
    /// Write a copy of the (single) image with boxes drawn
    #[arg(long, value_name = "OUT.png")]
    annotate: Option<PathBuf>,
    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn run(g: &GlobalArgs, store: &store::Store, args: RecognizeArgs) -> Result<ExitCode> {
    let RecognizeArgs {
        collection,
        images,
        json,
        annotate,
        remote,
    } = args;
    match remote.target()? {
        #[cfg(feature = "cloud")]
        Target::Api(client) => {
            remote_recognize(&client, &collection, &images, json, annotate.as_deref())
        }
        Target::Here => recognize(g, store, &collection, &images, json, annotate.as_deref()),
    }
}

fn recognize(
    g: &GlobalArgs,
    store: &store::Store,
    collection_name: &str,
    images: &[PathBuf],
    json: bool,
    annotate_to: Option<&Path>,
) -> Result<ExitCode> {
    one_image_to_annotate(images, annotate_to)?;
    let collection = store.load_existing(collection_name)?;
    let pipeline = load(g)?;
    collection.check_compatible(pipeline.face_model_version())?;
    per_image(
        images,
        pipeline.config().decode_limits.max_encoded_bytes,
        json,
        annotate_to,
        |bytes| {
            let image = pipeline.decode(bytes)?;
            let mut timings = StageTimings::default();
            let faces = pipeline.recognize_image(&image, &collection, &mut timings)?;
            Ok((Pixels::Decoded(image), faces))
        },
        print_recognitions,
    )
}

#[cfg(feature = "cloud")]
fn remote_recognize(
    client: &remote::ApiClient,
    collection: &str,
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
            let r = client.search(collection, bytes)?;
            Ok((
                Pixels::Size(r.image_width, r.image_height),
                remote::recognized_faces(&r),
            ))
        },
        print_recognitions,
    )
}

fn print_recognitions(path: &Path, faces: &[RecognizedFace]) -> Result<()> {
    outln!("{}: {} face(s)", path.display(), faces.len())?;
    for (i, f) in faces.iter().enumerate() {
        let b = f.face.bbox;
        match &f.face_match.identity {
            Some(c) => outln!(
                "  #{i} {} (similarity {:.1}, distance {:.3}) at x={:.0} y={:.0} w={:.0} h={:.0}",
                c.person,
                c.similarity,
                c.distance,
                b.x,
                b.y,
                b.width,
                b.height
            )?,
            None => outln!(
                "  #{i} unknown ({}; nearest {}) at x={:.0} y={:.0} w={:.0} h={:.0}",
                f.face_match
                    .unknown_reason
                    .map_or("below_threshold", |r| r.as_str()),
                f.face_match
                    .candidates
                    .first()
                    .map_or("-".to_string(), |c| format!(
                        "{} at {:.3}",
                        c.person, c.distance
                    )),
                b.x,
                b.y,
                b.width,
                b.height
            )?,
        }
    }
    Ok(())
}
