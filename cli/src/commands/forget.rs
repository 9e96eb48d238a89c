//! `facectl forget`: a person and every stored embedding of theirs.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
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
    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn run(store: &store::Store, args: ForgetArgs) -> Result<ExitCode> {
    let ForgetArgs {
        collection,
        person,
        remote,
    } = args;
    match remote.target()? {
        #[cfg(feature = "cloud")]
        Target::Api(client) => {
            let forgotten = client.forget(&collection, &person)?;
            println!(
                "forgot {person}: {} embeddings removed",
                forgotten.removed_faces
            );
            return Ok(ExitCode::SUCCESS);
        }
        Target::Here => {}
    }
    let mut c = store.load_existing(&collection)?;
    let removed = c.forget(&person)?;
    store.save(&collection, &c)?;
    println!(
        "forgot {person}: {} embeddings removed",
        removed.faces.len()
    );
    Ok(ExitCode::SUCCESS)
}
