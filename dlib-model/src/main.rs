//! `dlib-model DAT [--nnef OUT.nnef.tar] [--onnx OUT.onnx] [--batch N]`:
//! converts dlib's `dlib_face_recognition_resnet_model_v1.dat`.

use std::process::ExitCode;

const USAGE: &str = "usage: dlib-model DAT [--nnef OUT.nnef.tar] [--onnx OUT.onnx] [--batch N]\n\
    Converts dlib_face_recognition_resnet_model_v1.dat into an NNEF tar and/or ONNX file\n\
    (input [N,3,150,150] RGB 0..255, output `descriptor` [N,128]). --batch fixes N in the NNEF.";

#[derive(Debug, Default)]
struct Args {
    dat: Option<String>,
    nnef: Option<String>,
    onnx: Option<String>,
    batch: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--nnef" => args.nnef = Some(value("--nnef")?),
            "--onnx" => args.onnx = Some(value("--onnx")?),
            "--batch" => {
                let v = value("--batch")?;
                args.batch = Some(v.parse().map_err(|_| format!("bad --batch {v:?}"))?);
            }
            "-h" | "--help" => return Err(String::new()),
            _ if args.dat.is_none() && !arg.starts_with('-') => args.dat = Some(arg),
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    Ok(args)
}

fn run(args: Args) -> Result<(), String> {
    let dat_path = args.dat.ok_or("missing DAT (see --help)")?;
    if args.nnef.is_none() && args.onnx.is_none() {
        return Err("nothing to write: give --nnef and/or --onnx".into());
    }
    let dat = std::fs::read(&dat_path).map_err(|e| format!("reading {dat_path}: {e}"))?;
    let model = dlib_model::convert(&dat).map_err(|e| format!("{dat_path}: {e}"))?;
    if let Some(path) = args.nnef {
        let bytes = match args.batch {
            Some(n) => model.to_nnef_tar_with_batch(n),
            None => model.to_nnef_tar(),
        }
        .map_err(|e| e.to_string())?;
        std::fs::write(&path, &bytes).map_err(|e| format!("writing {path}: {e}"))?;
        eprintln!("wrote {path} ({} bytes)", bytes.len());
    }
    if let Some(path) = args.onnx {
        let bytes = model.to_onnx_bytes();
        std::fs::write(&path, &bytes).map_err(|e| format!("writing {path}: {e}"))?;
        eprintln!("wrote {path} ({} bytes)", bytes.len());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
