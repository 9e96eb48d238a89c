//! `facectl compare`: whether the largest faces of two photos are the same
//! person.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use facectl::files::read_image_file;
use facectl::outln;

use crate::{GlobalArgs, RemoteArgs, Target, load, pipeline_config};

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The first photo
    source: PathBuf,
    /// The second photo
    target: PathBuf,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn run(g: &GlobalArgs, args: CompareArgs) -> Result<ExitCode> {
    let CompareArgs {
        source,
        target,
        json,
        remote,
    } = args;
    compare(g, &remote.target()?, &source, &target, json)
}

fn compare(
    g: &GlobalArgs,
    on: &Target,
    source: &Path,
    target: &Path,
    json: bool,
) -> Result<ExitCode> {
    // Here the pipeline's decode limit, remotely the API's upload limit
    // (the same 15 MiB by default).
    let max_bytes = match on {
        #[cfg(feature = "cloud")]
        Target::Api(_) => face_api::limits::MAX_UPLOAD_BYTES,
        Target::Here => pipeline_config(g).decode_limits.max_encoded_bytes,
    };
    let read = |p: &Path| read_image_file(p, max_bytes).with_context(|| p.display().to_string());
    let (a, b) = (read(source)?, read(target)?);
    let comparison = match on {
        #[cfg(feature = "cloud")]
        Target::Api(client) => {
            let r = client.compare(&a, &b)?;
            face_core::FaceComparison {
                distance: r.distance,
                similarity: r.similarity,
                same_person: r.same_person,
                source_face: r.source_face,
                target_face: r.target_face,
            }
        }
        Target::Here => {
            let pipeline = load(g)?;
            let face_of = |bytes: &[u8], path: &Path| -> Result<face_core::AnalyzedFace> {
                let image = pipeline
                    .decode(bytes)
                    .with_context(|| path.display().to_string())?;
                pipeline
                    .largest_face(&image)?
                    .with_context(|| format!("{}: no face found", path.display()))
            };
            let (s, t) = (face_of(&a, source)?, face_of(&b, target)?);
            pipeline.compare_faces(&s, &t)
        }
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&comparison)?)?;
    } else {
        outln!(
            "{}: distance {:.3}, similarity {:.1}",
            if comparison.same_person {
                "same person"
            } else {
                "different people"
            },
            comparison.distance,
            comparison.similarity
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
