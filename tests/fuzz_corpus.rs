//! Every input of the fuzz targets' seed corpus (`fuzz/corpus/`) and every
//! crash they found (`fuzz/regressions/`), run through the same bodies as
//! `cargo fuzz` does (`fuzz/src/lib.rs`), on stable, in the normal suite.

use std::path::{Path, PathBuf};

#[path = "../fuzz/src/lib.rs"]
mod bodies;

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        for e in entries {
            let p = e.expect("a directory entry").path();
            if p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(!files.is_empty(), "no corpus for {target}");
    files
}

fn run(target: &str, body: fn(&[u8])) {
    for f in inputs(target) {
        let data = std::fs::read(&f).expect("readable");
        let r = std::panic::catch_unwind(|| body(&data));
        assert!(r.is_ok(), "{target} fails on {}", f.display());
    }
}

#[test]
fn fuzz_corpus_greeting() {
    run("greeting", bodies::greeting);
}

#[test]
fn fuzz_corpus_auth_line() {
    run("auth_line", bodies::auth_line);
}

#[test]
fn fuzz_corpus_json_stream() {
    run("json_stream", bodies::json_stream);
}

#[test]
fn fuzz_corpus_msgpack_frames() {
    run("msgpack_frames", bodies::msgpack_frames);
}

#[test]
fn fuzz_corpus_node_port() {
    run("node_port", bodies::node_port);
}
