//! The book's own-project programs (`examples/own_project/`, chapters "Your
//! own project" and "Two programs, two processes"), built as a user would:
//! copied into a fresh directory outside this repository, the dependency on
//! aemp turned into a path dependency, built with cargo (offline, from the
//! crates this workspace has downloaded), and run. The README's code is the
//! first program, word for word.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The line of the programs' `Cargo.toml` that the test replaces.
const GIT_DEPENDENCY: &str = r#"aemp = { git = "https://github.com/aemp-rs/aemp" }"#;

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the examples live in the repository")
}

fn project_file(name: &str, file: &str) -> String {
    let path = repository().join("examples/own_project").join(name).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Copies project `name` into a fresh directory, points its dependency on
/// aemp at this repository, builds it, and returns the directory (kept for
/// as long as the caller holds it) and the program.
fn build(name: &str, package: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = project_file(name, "Cargo.toml");
    assert!(manifest.contains(GIT_DEPENDENCY), "the book's Cargo.toml names aemp by its repository");
    let path = repository().join("aemp");
    let manifest =
        manifest.replace(GIT_DEPENDENCY, &format!("aemp = {{ path = {:?} }}", path.display().to_string()));
    std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/main.rs"), project_file(name, "src/main.rs")).unwrap();
    // A target directory of its own (the workspace's is locked by the
    // cargo that runs this test), kept between runs.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("own-project");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(dir.path())
        .args(["build", "--offline"])
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo build of {name} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    (dir, target.join("debug").join(package))
}

fn stdout_of(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_first_program_builds_outside_the_repository_and_runs() {
    let (_dir, program) = build("hello", "hello-aemp");
    let out = Command::new(program).output().unwrap();
    assert_eq!(stdout_of(&out), "2 + 3 = 5\n");
}

#[test]
fn the_two_process_program_builds_outside_the_repository_and_its_processes_talk() {
    let (_dir, program) = build("counter", "counter");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = Command::new(&program)
        .args(["server", &addr])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), format!("counter server listening on {addr}"));
    let add = |n: &str| stdout_of(&Command::new(&program).args(["client", n, &addr]).output().unwrap());
    assert_eq!(add("5"), "added 5: the total is 5\n");
    assert_eq!(add("7"), "added 7: the total is 12\n");
    // Ctrl-C ends the server cleanly.
    let killed = Command::new("kill").args(["-INT", &server.id().to_string()]).status().unwrap();
    assert!(killed.success());
    assert!(server.wait().unwrap().success());
}

/// The code between the README's "Your own project" heading and the next
/// heading, by language.
fn readme_blocks(lang: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(repository().join("README.md")).unwrap();
    let section =
        readme.split("\n## ").find(|s| s.starts_with("Your own project")).expect("the README's section");
    section
        .split("```")
        .collect::<Vec<_>>()
        .chunks(2)
        .filter_map(|pair| pair.get(1))
        .filter_map(|block| block.strip_prefix(lang).and_then(|b| b.strip_prefix('\n')))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readme_shows_the_first_program_as_it_is_built() {
    assert_eq!(readme_blocks("rust"), [project_file("hello", "src/main.rs")]);
    let manifest = project_file("hello", "Cargo.toml");
    let dependencies = manifest.split("[dependencies]\n").nth(1).unwrap();
    assert_eq!(readme_blocks("toml"), [format!("[dependencies]\n{dependencies}")]);
}
