//! Tidy tests (as rust-analyzer's): rules of ARCHITECTURE.md that the
//! compiler does not check, checked over the whole workspace's files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use toml::Table;

/// The crates allowed to depend on an AWS SDK crate (`aws-*`: `aws-config`,
/// `aws-sdk-*`, `aws-smithy-*`, ...), each with why. ARCHITECTURE.md lists
/// the same names; [`aws_sdk_list_matches_the_architecture`] checks it.
const AWS_SDK_ALLOWED: [(&str, &str); 7] = [
    ("face-service", "the storage traits on S3/DynamoDB/SQS/SNS"),
    ("face-sdk-config", "builds every SDK config"),
    (
        "scan-coordinator",
        "Lambda invokes, staging, account settings",
    ),
    ("facectl", "`results` reads the results queue (SQS)"),
    ("xtask", "deploy, teardown, smoke test, local stack"),
    ("local-aws", "its tests talk to moto"),
    ("e2e", "sets up and inspects moto"),
];

fn root() -> PathBuf {
    e2e::workspace()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn manifest(path: &Path) -> Table {
    read(path)
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every workspace member: its package name and folder.
fn members() -> Vec<(String, PathBuf)> {
    let workspace = manifest(&root().join("Cargo.toml"));
    let members = workspace["workspace"]["members"]
        .as_array()
        .expect("workspace.members");
    members
        .iter()
        .map(|m| {
            let dir = m.as_str().expect("a member is a path");
            assert!(!dir.contains('*'), "expand the glob {dir:?} here");
            let dir = root().join(dir);
            let package = manifest(&dir.join("Cargo.toml"));
            let name = package["package"]["name"].as_str().expect("package.name");
            (name.to_string(), dir)
        })
        .collect()
}

/// The crates a manifest depends on, of every kind and target, by their
/// real name (`package = "..."` when renamed).
fn dependencies(manifest: &Table) -> BTreeSet<String> {
    const KINDS: [&str; 3] = ["dependencies", "dev-dependencies", "build-dependencies"];
    let mut tables: Vec<&Table> = KINDS
        .iter()
        .filter_map(|k| manifest.get(*k)?.as_table())
        .collect();
    if let Some(targets) = manifest.get("target").and_then(|t| t.as_table()) {
        for target in targets.values().filter_map(|t| t.as_table()) {
            tables.extend(KINDS.iter().filter_map(|k| target.get(*k)?.as_table()));
        }
    }
    tables
        .into_iter()
        .flat_map(|t| t.iter())
        .map(|(key, spec)| {
            spec.get("package")
                .and_then(|p| p.as_str())
                .unwrap_or(key)
                .to_string()
        })
        .collect()
}

fn is_aws_sdk(dependency: &str) -> bool {
    dependency.starts_with("aws-")
}

#[test]
fn only_the_allowed_crates_depend_on_an_aws_sdk() {
    let allowed: BTreeSet<&str> = AWS_SDK_ALLOWED.iter().map(|(name, _)| *name).collect();
    let mut users = BTreeSet::new();
    let mut offenders = Vec::new();
    for (name, dir) in members() {
        let sdk: Vec<String> = dependencies(&manifest(&dir.join("Cargo.toml")))
            .into_iter()
            .filter(|d| is_aws_sdk(d))
            .collect();
        if sdk.is_empty() {
            continue;
        }
        users.insert(name.clone());
        if !allowed.contains(name.as_str()) {
            offenders.push(format!("{name} depends on {}", sdk.join(", ")));
        }
    }
    assert!(
        offenders.is_empty(),
        "only infrastructure code talks to AWS (ARCHITECTURE.md): {offenders:#?}; \
         go through face-service::aws or face-sdk-config, or argue for the crate in both lists"
    );
    // A crate that no longer needs the SDK leaves the list.
    let stale: Vec<&&str> = allowed.iter().filter(|a| !users.contains(**a)).collect();
    assert!(
        stale.is_empty(),
        "allowed but no AWS SDK dependency: {stale:?}"
    );
}

#[test]
fn aws_sdk_list_matches_the_architecture() {
    // Lines wrap anywhere: compare on single spaces.
    let doc = read(&root().join("ARCHITECTURE.md"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let marker = "allowed an AWS SDK dependency";
    let start = doc
        .find(marker)
        .expect("ARCHITECTURE.md names the allowed crates")
        + marker.len();
    let sentence = &doc[start..];
    let sentence = &sentence[..sentence.find('.').expect("the sentence ends")];
    let listed: BTreeSet<&str> = sentence.split('`').skip(1).step_by(2).collect();
    let allowed: BTreeSet<&str> = AWS_SDK_ALLOWED.iter().map(|(name, _)| *name).collect();
    assert_eq!(listed, allowed, "ARCHITECTURE.md: {sentence:?}");
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every file name of the labelled data set: its label files and photos
/// and videos, however deep.
fn data_file_names(dir: &Path, out: &mut BTreeSet<String>) {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e} (set FACE_DATA_DIR)", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            data_file_names(&path, out);
        } else if path.extension().is_some_and(|e| e != "md") {
            out.insert(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
}

#[test]
fn only_devset_and_tests_name_files_of_the_data_set() {
    let mut names = BTreeSet::new();
    data_file_names(&e2e::data_dir(), &mut names);
    assert!(names.len() > 10, "the data set looks empty: {names:?}");
    let mut files = Vec::new();
    for (name, dir) in members() {
        // The layout's home; integration tests pin photos on purpose.
        if name == "devset" || name == "e2e" {
            continue;
        }
        for code in ["src", "examples", "benches"] {
            rust_files(&dir.join(code), &mut files);
        }
    }
    assert!(files.len() > 50, "found only {} source files", files.len());
    let mut offenders = Vec::new();
    for file in &files {
        let text = read(file);
        for name in names.iter().filter(|n| text.contains(n.as_str())) {
            offenders.push(format!("{}: {name}", file.display()));
        }
    }
    assert!(
        offenders.is_empty(),
        "name files of the data set through devset (ARCHITECTURE.md): {offenders:#?}"
    );
}

#[test]
fn face_core_does_no_io() {
    // ARCHITECTURE.md's first invariant: bytes in, values out. Its library
    // code names no file, socket, process or environment API (its examples
    // and tests may).
    let mut files = Vec::new();
    rust_files(&root().join("core/src"), &mut files);
    assert!(
        files.len() > 10,
        "found only {} files in core/src",
        files.len()
    );
    let mut offenders = Vec::new();
    for file in &files {
        for (n, line) in read(file).lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for api in ["std::fs", "std::net", "std::env", "std::process", "tokio"] {
                if code.contains(api) {
                    offenders.push(format!("{}:{}: {api}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "I/O in face-core: {offenders:#?}");
}

/// The subcommands of the first `enum Command` in `crate_dir/src`, in
/// kebab case as clap names them.
fn subcommands(crate_dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&crate_dir.join("src"), &mut files);
    files.sort();
    let text = files
        .iter()
        .map(|f| read(f))
        .find(|t| t.contains("enum Command {"))
        .unwrap_or_else(|| panic!("no enum Command in {}", crate_dir.display()));
    let body = &text[text.find("enum Command {").unwrap()..];
    let body = &body[..body.find("\n}").expect("the enum ends")];
    body.lines()
        .filter_map(|l| l.strip_prefix("    "))
        .filter(|l| l.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(|l| {
            let name: String = l.chars().take_while(char::is_ascii_alphanumeric).collect();
            let mut kebab = String::new();
            for (i, c) in name.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    kebab.push('-');
                }
                kebab.push(c.to_ascii_lowercase());
            }
            kebab
        })
        .collect()
}

#[test]
fn the_code_map_names_every_command() {
    let doc = read(&root().join("ARCHITECTURE.md"));
    for (dir, row_start) in [
        ("xtask-entry", "| `xtask-entry/` |"),
        ("xtask", "| `xtask/` |"),
        ("cli", "| `cli/` (`facectl`) |"),
    ] {
        let row = doc
            .lines()
            .find(|l| l.starts_with(row_start))
            .unwrap_or_else(|| panic!("ARCHITECTURE.md has no {row_start} row"));
        let words: BTreeSet<&str> = row
            .split(|c: char| !(c.is_ascii_lowercase() || c == '-'))
            .collect();
        let commands = subcommands(&root().join(dir));
        assert!(commands.len() >= 5, "{dir}: {commands:?}");
        let missing: Vec<&String> = commands
            .iter()
            .filter(|c| !words.contains(c.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "the {dir} row of ARCHITECTURE.md misses {missing:?}"
        );
    }
}

/// The `FACE_*` names written inside string literals on `line` (comments
/// have none; a string is taken to end on its line).
fn face_names_in_strings(line: &str) -> Vec<String> {
    if line.trim_start().starts_with("//") {
        return Vec::new();
    }
    let bytes = line.as_bytes();
    let (mut in_string, mut escaped) = (false, false);
    let mut names = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' => in_string = !in_string,
            // A trailing comment.
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => break,
            // Not inside a longer identifier, nor a format string's
            // `{NAME}` (a constant, not a name written out).
            b'F' if in_string
                && line[i..].starts_with("FACE_")
                && bytes.get(i + 5).is_some_and(u8::is_ascii_uppercase)
                && !bytes[..i]
                    .last()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'{') =>
            {
                let name: String = line[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                names.push(name);
            }
            _ => {}
        }
    }
    names
}

#[test]
fn environment_variable_names_are_written_once() {
    assert_eq!(
        face_names_in_strings(r#"let a = get("FACE_BUCKET"); // "FACE_X""#),
        ["FACE_BUCKET"]
    );
    assert_eq!(
        face_names_in_strings(r#"format!("x: \"$FACE_API_KEY\" {FACE_MODELS:?}")"#),
        ["FACE_API_KEY"]
    );
    assert!(face_names_in_strings("const FACE_MODELS: &[&str] = &[];").is_empty());
    assert!(face_names_in_strings(r#"    /// `"FACE_BUCKET"`"#).is_empty());

    let mut files = Vec::new();
    for (name, dir) in members() {
        // Their home, and the end-to-end tests (which set variables on
        // purpose, as a person would).
        if name == "face-contracts" || name == "e2e" {
            continue;
        }
        for code in ["src", "examples", "benches"] {
            rust_files(&dir.join(code), &mut files);
        }
        if dir.join("build.rs").is_file() {
            files.push(dir.join("build.rs"));
        }
    }
    assert!(files.len() > 50, "found only {} source files", files.len());
    let mut offenders = Vec::new();
    for file in &files {
        for (n, line) in read(file).lines().enumerate() {
            for name in face_names_in_strings(line) {
                offenders.push(format!("{}:{}: {name}", file.display(), n + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "environment variable names are face_contracts::env's (ARCHITECTURE.md: \
         contracts defined once); use its constants: {offenders:#?}"
    );
}

#[test]
fn the_lambdas_readme_lists_every_variable_the_stack_sets() {
    let doc = read(&root().join("lambdas/README.md"));
    let section = &doc[doc
        .find("### Environment (set by the stack)")
        .expect("lambdas/README.md has the Environment section")..];
    let table: BTreeSet<&str> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
        .filter(|name| name.starts_with("FACE_"))
        .collect();
    let mut expected: BTreeSet<&str> = face_contracts::env::SET_BY_STACK.into_iter().collect();
    expected.insert(face_contracts::env::MODELS_DIR);
    assert_eq!(table, expected, "lambdas/README.md's Environment table");
}

#[test]
fn every_schema_is_committed_and_named_in_the_readme() {
    let readme = read(&root().join("README.md"));
    let listed: BTreeSet<String> = face_contracts::schema::FILES
        .iter()
        .map(|f| f.file.to_string())
        .collect();
    let committed: BTreeSet<String> = std::fs::read_dir(root().join("schemas"))
        .expect("schemas/")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        committed, listed,
        "schemas/ holds exactly face_contracts::schema::FILES"
    );
    for file in &listed {
        assert!(
            readme.contains(&format!("schemas/{file}")),
            "README.md's Schemas section does not name schemas/{file}"
        );
    }
}

/// `cargo tree`'s lines for `args`, each as `name version [features]`.
fn cargo_tree(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(root())
        .args([
            "tree",
            "--locked",
            "--prefix",
            "none",
            "--format",
            "{p} [{f}]",
        ])
        .args(args)
        .output()
        .expect("running cargo tree");
    assert!(
        out.status.success(),
        "cargo tree {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The packages `cargo tree` resolves for `args`, one line per distinct
/// build of each; the workspace's own members are left out.
fn resolved_builds(args: &[&str]) -> BTreeSet<String> {
    cargo_tree(args)
        .lines()
        .filter(|l| !l.contains("(/") && !l.trim().is_empty())
        .map(|l| l.trim_end_matches(" (*)").to_string())
        .collect()
}

/// Builds that run before the workspace's own, each its own cargo
/// invocation: `cargo xtask` builds xtask-entry (the alias), then xtask
/// (`cargo run`), then the workspace's tests; `cargo xtask demo` builds
/// `facectl` alone first (and `fetch-blobs` dlib-model, when it converts).
/// A dependency one of them resolves with other
/// features is compiled twice, with everything above it (tract, the AWS
/// SDK). workspace-hack/Cargo.toml and xtask's Cargo.toml pin what unifies
/// them.
#[test]
fn the_builds_before_the_workspaces_resolve_every_dependency_as_it_does() {
    let workspace = resolved_builds(&[
        "--workspace",
        "--features",
        "facectl/cloud",
        "-e",
        "normal,build,dev",
    ]);
    let hack = "workspace-hack/Cargo.toml";
    for (build, packages, pins) in [
        ("xtask", &["-p", "xtask"][..], "xtask/Cargo.toml"),
        ("xtask-entry", &["-p", "xtask-entry"][..], hack),
        (
            "the demo's first facectl",
            &["-p", "facectl", "-p", "workspace-hack"][..],
            hack,
        ),
        (
            "fetch-blobs' dlib-model converter",
            &["-p", "facectl", "-p", "workspace-hack", "-p", "dlib-model"][..],
            hack,
        ),
    ] {
        let resolved = resolved_builds(&[packages, &["-e", "normal,build"][..]].concat());
        assert!(resolved.len() > 90, "{build}: {resolved:?}");
        let differing: Vec<&String> = resolved.difference(&workspace).collect();
        assert!(
            differing.is_empty(),
            "{build} builds these with features the workspace's tests do not (add them to {pins}): {differing:#?}"
        );
    }
}

/// `cargo xtask` compiles xtask-entry before it runs any command, and the
/// demo's first result waits on that build: it must not pull in what the
/// `xtask` package needs (tract, the AWS SDK, tokio).
#[test]
fn xtask_entry_compiles_no_model_runtime_aws_sdk_or_async_runtime() {
    let resolved = resolved_builds(&["-p", "xtask-entry", "-e", "normal,build"]);
    let heavy: Vec<&String> = resolved
        .iter()
        .filter(|line| {
            ["tract-", "aws-", "tokio ", "image "]
                .iter()
                .any(|prefix| line.starts_with(prefix))
        })
        .collect();
    assert!(heavy.is_empty(), "xtask-entry depends on {heavy:#?}");
}

/// The gate lints facectl without `cloud` by building the workspace but e2e
/// (xtask/src/test.rs): e2e must be the only member that turns `cloud` on,
/// and leaving it out must change no dependency's features, or that build
/// compiles the dependency tree a second time.
#[test]
fn the_gates_build_without_e2e_is_facectl_without_cloud_on_the_same_dependencies() {
    let args = |exclude: bool| {
        let mut args = vec!["--workspace", "-e", "normal,build,dev"];
        if exclude {
            args.extend(["--exclude", "e2e"]);
        } else {
            args.extend(["--features", "facectl/cloud"]);
        }
        args
    };
    let without_e2e = resolved_builds(&args(true));
    let full = resolved_builds(&args(false));
    assert!(without_e2e.len() > 100, "{without_e2e:?}");
    let differing: Vec<&String> = without_e2e.difference(&full).collect();
    assert!(
        differing.is_empty(),
        "without e2e these resolve with other features than in the full build: {differing:#?}"
    );
    let tree = cargo_tree(&[&["-i", "facectl"][..], &args(true)].concat());
    let facectl = tree.lines().next().unwrap_or_default();
    assert!(
        facectl.starts_with("facectl ") && !facectl.contains("cloud"),
        "without e2e, facectl must build without `cloud`: {facectl}"
    );
}
