//! Compile-time diagnostics of `#[derive(AempMessage)]`, pinned by
//! trybuild: every `tests/ui/*.rs` must fail to compile with the errors in
//! its `.stderr`, except `pass*.rs`, which must compile and run.
//!
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite`, then read them.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    let mut files: Vec<_> = std::fs::read_dir("tests/ui")
        .expect("tests/ui exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    for path in files {
        let is_pass = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("pass"));
        if is_pass {
            t.pass(&path);
        } else {
            t.compile_fail(&path);
        }
    }
}
