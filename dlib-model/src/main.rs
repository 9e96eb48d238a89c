//! `dlib-model DAT [--nnef OUT.nnef.tar] [--onnx OUT.onnx] [--batch N]`:
//! converts dlib's `dlib_face_recognition_resnet_model_v1.dat`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Converts dlib_face_recognition_resnet_model_v1.dat into an NNEF tar
/// and/or an ONNX file (input [N,3,150,150] RGB 0..255, output `descriptor`
/// [N,128])
#[derive(Debug, Parser)]
#[command(name = "dlib-model")]
#[command(group = clap::ArgGroup::new("out").required(true).multiple(true).args(["nnef", "onnx"]))]
struct Args {
    /// dlib's dlib_face_recognition_resnet_model_v1.dat
    dat: PathBuf,
    /// Write the model as an NNEF tar here
    #[arg(long)]
    nnef: Option<PathBuf>,
    /// Write the model as ONNX here
    #[arg(long)]
    onnx: Option<PathBuf>,
    /// Fix the batch size N in the NNEF tar [default: symbolic]
    #[arg(long, requires = "nnef")]
    batch: Option<usize>,
}

fn run(args: Args) -> Result<(), String> {
    let dat_path = args.dat.display();
    let dat = std::fs::read(&args.dat).map_err(|e| format!("reading {dat_path}: {e}"))?;
    let model = dlib_model::convert(&dat).map_err(|e| format!("{dat_path}: {e}"))?;
    if let Some(path) = &args.nnef {
        let bytes = match args.batch {
            Some(n) => model.to_nnef_tar_with_batch(n),
            None => model.to_nnef_tar(),
        }
        .map_err(|e| e.to_string())?;
        write(path, &bytes)?;
    }
    if let Some(path) = &args.onnx {
        write(path, &model.to_onnx_bytes())?;
    }
    Ok(())
}

fn write(path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))?;
    eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
