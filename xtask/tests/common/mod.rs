//! What the local-stack tests share: running the real `cargo xtask` binary
//! against their moto server.

use std::process::{Command, Output};

use local_aws::MotoServer;

/// `cargo xtask ARGS` against `moto`, its output echoed to the test log.
pub fn xtask(moto: &MotoServer, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("FACE_LOCAL_AWS_ENDPOINT", moto.endpoint_url())
        .output()
        .expect("running xtask");
    eprintln!(
        "$ xtask {}\n{}{}",
        args.join(" "),
        // Never echo a created key into the test log.
        if args.contains(&"create") {
            "(stdout withheld: it holds a key)\n".into()
        } else {
            String::from_utf8_lossy(&out.stdout)
        },
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The stdout of a command that must have succeeded.
pub fn ok(out: &Output) -> String {
    assert!(out.status.success(), "xtask failed: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}
