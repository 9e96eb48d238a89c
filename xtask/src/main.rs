mod bench;
use clap::Parser;
#[derive(Debug, Parser)]
enum Cli {
    Bench(bench::BenchArgs),
}
fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("root")
        .to_path_buf();
    let sh = xshell::Shell::new()?;
    match Cli::parse() {
        Cli::Bench(a) => bench::run(&sh, &root, a),
    }
}
