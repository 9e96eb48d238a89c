//! `facectl people`: who is enrolled in a collection.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use facectl::outln;
use facectl::store;
use serde::Serialize;

use crate::{RemoteArgs, Target};

#[derive(Debug, Args)]
pub struct PeopleArgs {
    /// The collection
    #[arg(long)]
    collection: String,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn run(store: &store::Store, args: PeopleArgs) -> Result<ExitCode> {
    let PeopleArgs {
        collection,
        json,
        remote,
    } = args;
    match remote.target()? {
        #[cfg(feature = "cloud")]
        Target::Api(client) => {
            let people = client.people(&collection)?;
            let summary: Vec<PersonSummary<'_>> = people
                .iter()
                .map(|p| PersonSummary {
                    person: &p.person,
                    faces: p.face_count as usize,
                    attributes: &p.attributes,
                })
                .collect();
            print_people(&summary, json)
        }
        Target::Here => people(store, &collection, json),
    }
}

#[derive(Debug, Serialize)]
struct PersonSummary<'a> {
    person: &'a str,
    faces: usize,
    attributes: &'a BTreeMap<String, String>,
}

fn people(store: &store::Store, collection_name: &str, json: bool) -> Result<ExitCode> {
    let collection = store.load_existing(collection_name)?;
    let summary: Vec<PersonSummary<'_>> = collection
        .people
        .iter()
        .map(|(name, p)| PersonSummary {
            person: name,
            faces: p.faces.len(),
            attributes: &p.attributes,
        })
        .collect();
    print_people(&summary, json)
}

fn print_people(summary: &[PersonSummary<'_>], json: bool) -> Result<ExitCode> {
    if json {
        outln!("{}", serde_json::to_string_pretty(&summary)?)?;
    } else {
        for p in summary {
            let attrs: Vec<String> = p
                .attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            outln!("{}\t{} face(s)\t{}", p.person, p.faces, attrs.join(" "))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
