//! `cargo xtask synth`: the CloudFormation template of every region of a
//! deployment, printed or written to files. Touches no AWS.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use face_stacks::{Assets, Deployment};

use crate::deploy::artifacts;

#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Deployment: `local`, `dev`, `prod` (stacks/<NAME>.yaml) or a YAML path
    #[arg(long, default_value = "local")]
    pub stack: String,
    /// Write `<DIR>/<region>.template.json` instead of printing
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(root: &Path, args: &SynthArgs) -> Result<()> {
    let deployment = Deployment::load(&args.stack)?;
    let assets = placeholder_or_built_assets(root, &deployment);
    for stack in deployment.synth(&assets)? {
        let text = serde_json::to_string_pretty(&stack.template.to_json())?;
        match &args.out {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let path = dir.join(format!("{}.template.json", stack.region));
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("{}", path.display());
            }
            None => println!("{text}"),
        }
    }
    Ok(())
}

/// The built artifacts' content-hash keys where the zips exist, else a
/// visible placeholder key (synth must work before any build).
fn placeholder_or_built_assets(root: &Path, deployment: &Deployment) -> Assets {
    let mut assets = Assets::default();
    for region in &deployment.regions {
        for (function, arch) in Assets::needed(region) {
            let key = artifacts::hash_key(root, function, arch)
                .unwrap_or_else(|_| Assets::key_for(function, arch, "NOT-BUILT"));
            assets.keys.insert((function, arch), key);
        }
    }
    assets
}
