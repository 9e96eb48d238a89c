//! `facectl enroll`: a person's photos into a collection.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use face_core::{Collection, EnrollOutcome, FacePipeline};
#[cfg(feature = "cloud")]
use facectl::files::read_image_file;
use facectl::outln;
#[cfg(feature = "cloud")]
use facectl::remote;
use facectl::store;
use serde::Serialize;
use sha2::Digest;

use super::images::read_and_decode;
use super::{progress, report_failure};
use crate::{GlobalArgs, RemoteArgs, Target, load};

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// Collection to enroll into (created if missing)
    #[arg(long)]
    collection: String,
    /// The person's name
    #[arg(long)]
    person: String,
    /// Free-form attribute stored with the person, KEY=VALUE (repeatable)
    #[arg(long = "attr", value_name = "KEY=VALUE")]
    attributes: Vec<String>,
    /// Photos of the person, one main face each
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn run(g: &GlobalArgs, store: &store::Store, args: EnrollArgs) -> Result<ExitCode> {
    let EnrollArgs {
        collection,
        person,
        attributes,
        images,
        json,
        remote,
    } = args;
    match remote.target()? {
        #[cfg(feature = "cloud")]
        Target::Api(client) => {
            remote_enroll(&client, &collection, &person, &attributes, &images, json)
        }
        Target::Here => enroll(g, store, &collection, &person, &attributes, &images, json),
    }
}

#[cfg(feature = "cloud")]
fn remote_enroll(
    client: &remote::ApiClient,
    collection: &str,
    person: &str,
    attributes: &[String],
    images: &[PathBuf],
    json: bool,
) -> Result<ExitCode> {
    let attributes = parse_attributes(attributes)?;
    let mut results = Vec::new();
    let mut readable: Vec<(String, Vec<u8>)> = Vec::new();
    for path in images {
        let name = path.display().to_string();
        match read_image_file(path, face_api::limits::MAX_UPLOAD_BYTES) {
            Ok(bytes) => readable.push((name, bytes)),
            Err(e) => {
                report_failure(path, &e);
                results.push(EnrollResult::Error {
                    path: name,
                    error: format!("{e:#}"),
                });
            }
        }
    }
    let mut total = None;
    // One call per batch the API takes; attributes ride on the first.
    let mut attributes = Some(attributes);
    for batch in readable.chunks(face_api::limits::MAX_IMAGES_PER_ENROLL) {
        let bytes: Vec<&[u8]> = batch.iter().map(|(_, b)| b.as_slice()).collect();
        let sent = client.images(collection, &bytes)?;
        // The server names a photo `base64[i]` (its position) or by its key.
        let path_of = |source: &str| -> String {
            let by_position = source
                .strip_prefix("base64[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|i| i.parse::<usize>().ok());
            let by_key = sent.iter().position(|image| {
                matches!(image, face_api::types::Image::S3Key(key) if source.ends_with(key.as_str()))
            });
            by_position
                .or(by_key)
                .and_then(|i| batch.get(i))
                .map_or_else(|| source.to_string(), |(path, _)| path.clone())
        };
        let response = client.enroll(
            collection,
            person,
            sent.clone(),
            attributes.take().unwrap_or_default(),
        )?;
        for f in &response.indexed {
            results.push(EnrollResult::Indexed {
                path: path_of(&f.source),
                face_id: f.face_id.clone(),
                confidence: f.confidence / 100.0,
            });
        }
        for u in &response.unindexed {
            results.push(EnrollResult::Unindexed {
                path: path_of(&u.source),
                reason: u.reason.clone(),
                message: u.message.clone(),
            });
        }
        total = Some(response.face_count);
    }
    print_enrollment(
        &results,
        json,
        person,
        collection,
        total.unwrap_or(0) as usize,
    )
}

#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum EnrollResult {
    Indexed {
        path: String,
        face_id: String,
        confidence: f32,
    },
    /// Refused, with Rekognition's reason code (`NO_FACE`, ...).
    Unindexed {
        path: String,
        reason: String,
        message: String,
    },
    Error {
        path: String,
        error: String,
    },
}

fn parse_attributes(attributes: &[String]) -> Result<BTreeMap<String, String>> {
    attributes
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("--attr {kv:?} is not KEY=VALUE"),
        })
        .collect()
}

fn enroll(
    g: &GlobalArgs,
    store: &store::Store,
    collection_name: &str,
    person: &str,
    attributes: &[String],
    images: &[PathBuf],
    json: bool,
) -> Result<ExitCode> {
    store::Store::validate_name(collection_name)?;
    Collection::validate_name(person)?;
    let attributes = parse_attributes(attributes)?;
    let pipeline = load(g)?;
    let model_version = pipeline.face_model_version();
    // Refuse an incompatible collection before the slow part; the faces are
    // merged into the collection as stored at the end, under its lock.
    if let Some(existing) = store.load(collection_name)? {
        existing.check_compatible(model_version)?;
    }
    tracing::debug!(
        collection = collection_name,
        images = images.len(),
        "indexing photos"
    );

    let bar = progress(images.len());
    let mut results = Vec::new();
    let mut indexed = Vec::new();
    for path in images {
        bar.set_message(path.display().to_string());
        let name = path.display().to_string();
        let outcome = read_and_decode(&pipeline, path).and_then(|(bytes, image)| {
            Ok((
                hex::encode(&sha2::Sha256::digest(&bytes)[..8]),
                pipeline.enroll_image(&image)?,
            ))
        });
        bar.inc(1);
        let result = match outcome {
            Ok((
                face_id,
                EnrollOutcome::Indexed {
                    face,
                    embedding,
                    augmentations,
                },
            )) => {
                indexed.push(FacePipeline::enrolled_face(
                    &name,
                    &face_id,
                    embedding,
                    augmentations,
                ));
                EnrollResult::Indexed {
                    path: name,
                    face_id,
                    confidence: face.confidence,
                }
            }
            Ok((_, EnrollOutcome::Unindexed(reason))) => EnrollResult::Unindexed {
                path: name,
                reason: reason.code().to_string(),
                message: reason.to_string(),
            },
            Err(e) => {
                bar.suspend(|| report_failure(path, &e));
                EnrollResult::Error {
                    path: name,
                    error: format!("{e:#}"),
                }
            }
        };
        results.push(result);
    }
    bar.finish_and_clear();
    let total = if indexed.is_empty() {
        store
            .load(collection_name)?
            .and_then(|c| c.people.get(person).map(|p| p.faces.len()))
            .unwrap_or(0)
    } else {
        // Reloaded under the lock: what others enrolled or forgot while
        // the photos were processed stays as they left it.
        store.update(collection_name, |stored| {
            let mut collection = stored.unwrap_or_else(|| Collection::new(model_version));
            collection.check_compatible(model_version)?;
            collection.add_faces(person, indexed)?;
            let faces = match collection.people.get_mut(person) {
                Some(p) => {
                    p.attributes.extend(attributes);
                    p.faces.len()
                }
                None => 0,
            };
            Ok((collection, faces))
        })?
    };
    print_enrollment(&results, json, person, collection_name, total)
}

/// Prints what enrolling did; fails when a photo could not be read or none
/// was indexed.
fn print_enrollment(
    results: &[EnrollResult],
    json: bool,
    person: &str,
    collection_name: &str,
    total_faces: usize,
) -> Result<ExitCode> {
    if json {
        outln!("{}", serde_json::to_string_pretty(results)?)?;
    } else {
        for r in results {
            match r {
                EnrollResult::Indexed {
                    path,
                    face_id,
                    confidence,
                } => outln!("indexed {path} as face {face_id} (confidence {confidence:.3})")?,
                EnrollResult::Unindexed { path, message, .. } => {
                    outln!("not indexed {path}: {message}")?
                }
                EnrollResult::Error { .. } => {}
            }
        }
        outln!("{person}: {total_faces} face(s) in collection {collection_name}")?;
    }
    let errors = results
        .iter()
        .any(|r| matches!(r, EnrollResult::Error { .. }));
    let any_indexed = results
        .iter()
        .any(|r| matches!(r, EnrollResult::Indexed { .. }));
    Ok(if errors || !any_indexed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
