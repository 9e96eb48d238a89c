//! `facectl forget`: a person and every stored embedding of theirs.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use face_api::types::ForgetResponse;
use facectl::outln;
use facectl::store;

use crate::{RemoteArgs, Target};

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// The collection
    #[arg(long)]
    collection: String,
    /// The person to remove
    #[arg(long)]
    person: String,
    /// Print JSON (the API's answer: collection, person, removed_faces) instead of text
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn run(store: &store::Store, args: ForgetArgs) -> Result<ExitCode> {
    let ForgetArgs {
        collection,
        person,
        json,
        remote,
    } = args;
    let forgotten = match remote.target()? {
        #[cfg(feature = "cloud")]
        Target::Api(client) => client.forget(&collection, &person)?,
        Target::Here => {
            // Checked first, so a mistyped name leaves no lock file behind.
            store.load_existing(&collection)?;
            // Under the collection's lock, so a concurrent enroll's save
            // cannot bring the person back.
            let removed = store.update(&collection, |stored| {
                let mut c = stored.ok_or_else(|| store.missing(&collection))?;
                let removed = c.forget(&person)?;
                Ok((c, removed))
            })?;
            ForgetResponse {
                collection,
                person: person.clone(),
                removed_faces: u32::try_from(removed.faces.len()).unwrap_or(u32::MAX),
            }
        }
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&forgotten)?)?;
    } else {
        outln!(
            "forgot {person}: {} embeddings removed",
            forgotten.removed_faces
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
