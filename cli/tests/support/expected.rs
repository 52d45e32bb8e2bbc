//! Output kept as a file beside the input it comes from (`x.yaml` → `x.stderr`),
//! compared whole, as Hurl keeps `x.err` beside `x.hurl`. `METRTEST_BLESS=1`
//! rewrites the files from the output instead of comparing.

use std::path::Path;

/// Whether this run rewrites the expected files (`METRTEST_BLESS=1`).
pub fn blessing() -> bool {
    std::env::var_os("METRTEST_BLESS").is_some()
}

/// Compares `actual` with the file at `path` (or rewrites the file when
/// blessing); a description of the difference when they differ.
pub fn differs(path: &Path, actual: &str) -> Option<String> {
    if blessing() {
        std::fs::write(path, actual).unwrap();
        return None;
    }
    let expected = std::fs::read_to_string(path)
        .unwrap_or_else(|_| panic!("{} is missing; METRTEST_BLESS=1 writes it", path.display()));
    (expected != actual).then(|| {
        format!(
            "{}:\n--- expected\n{expected}--- actual\n{actual}",
            path.display()
        )
    })
}
