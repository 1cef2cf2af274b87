//! Replays the fuzz seeds (`fuzz/corpus/<target>/`) and every input a fuzzer once failed on
//! (`fuzz/regressions/<target>/`) through `chatvault::fuzz_api`, on stable and without
//! cargo-fuzz: a parser that panics again on any of them fails this test.

use std::path::Path;

use chatvault::fuzz_api::TARGETS;

fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_seed_and_regression_input_is_handled() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let (mut missing, mut failed) = (Vec::new(), Vec::new());
    for (target, run) in TARGETS {
        let mut count = 0;
        for dir in ["corpus", "regressions"] {
            for path in inputs(&root.join(dir).join(target)) {
                let data = std::fs::read(&path).unwrap();
                if std::panic::catch_unwind(|| run(&data)).is_err() {
                    failed.push(format!("{target}: {}", path.display()));
                }
                count += 1;
            }
        }
        if count == 0 {
            missing.push(target);
        }
    }
    assert!(failed.is_empty(), "panicked on:\n{}", failed.join("\n"));
    assert!(missing.is_empty(), "no fuzz inputs for {missing:?}");
}

#[test]
fn every_fuzz_target_has_an_entry_point() {
    let targets = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    for (target, _) in TARGETS {
        let source = std::fs::read_to_string(targets.join(format!("{target}.rs")))
            .unwrap_or_else(|e| panic!("fuzz/fuzz_targets/{target}.rs: {e}"));
        assert!(
            source.contains(&format!("chatvault::fuzz_api::{target}(data)")),
            "fuzz/fuzz_targets/{target}.rs does not call fuzz_api::{target}"
        );
    }
}
