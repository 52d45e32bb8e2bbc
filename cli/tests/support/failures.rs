//! The failure of each scenario as a run tells it on stderr, cut out of the
//! run's output with what varies from run to run replaced by a placeholder,
//! so it can be kept beside its scenario file and compared whole.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

/// Each failed scenario's block of stderr (`error: scenario "NAME" (FILE)
/// failed` up to the end of its service logs), by FILE (from the workspace
/// root), normalised by [`normalise`].
pub fn failure_blocks(stderr: &str, run_ids: &[&str]) -> BTreeMap<String, String> {
    let mut blocks = BTreeMap::new();
    let mut lines = stderr.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(file) = header_file(line) else {
            continue;
        };
        let mut block = vec![line.to_owned()];
        while let Some(next) = lines.peek() {
            if ends_block(next) {
                break;
            }
            block.push(lines.next().unwrap().to_owned());
        }
        let file = normalise(&file, &[]);
        blocks.insert(file, normalise(&keep_log_headers(&block), run_ids));
    }
    blocks
}

/// FILE of an `error: scenario "NAME" (FILE) failed` line.
fn header_file(line: &str) -> Option<String> {
    let rest = line.strip_prefix("error: scenario \"")?;
    let file = rest.rsplit_once(" (")?.1.strip_suffix(") failed")?;
    Some(file.to_owned())
}

/// A line that the terminal reporter writes next, not part of a failure.
fn ends_block(line: &str) -> bool {
    [
        "✗ ",
        "✓ ",
        "error: ",
        "warning: ",
        "scenario ",
        "stack ",
        "starting stack ",
        "interrupted",
        "JUnit report: ",
        "┌",
    ]
    .iter()
    .any(|start| line.starts_with(start))
}

/// The failure text, then one `----- SERVICE (last lines) -----` header per
/// service whose logs followed; the log lines themselves are not compared.
fn keep_log_headers(block: &[String]) -> String {
    let logs_at = block
        .iter()
        .position(|l| LOG_HEADER.is_match(l))
        .unwrap_or(block.len());
    let mut kept: Vec<&str> = block[..logs_at].iter().map(String::as_str).collect();
    kept.extend(
        block[logs_at..]
            .iter()
            .filter(|l| LOG_HEADER.is_match(l))
            .map(String::as_str),
    );
    kept.join("\n") + "\n"
}

static LOG_HEADER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^----- \S+ \(last lines\) -----$").unwrap());

/// What varies from run to run, each with what stands for it.
static VARYING: LazyLock<Vec<(Regex, &str)>> = LazyLock::new(|| {
    [
        // Host ports of the stack's services.
        (r"127\.0\.0\.1:\d+", "127.0.0.1:<port>"),
        // Responses and log lines carry times, latencies and cursors.
        (r"(?m)^(\s*)body: .*$", "${1}body: <body>"),
        // Log lines quoted in a body, one per line after `body:`.
        (r"(?m)^\s*\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d.*\n", ""),
        // How many tries a retry made: from one up, as timing has it; the
        // line is only printed after more than one.
        (r"(?m)^\s*\(last of \d+ attempts\)\n", ""),
        // Measured values (latencies, row counts, lines logged so far); the
        // response status, which does not vary, is on its own line.
        (r"actual \d+(\.\d+)?", "actual <number>"),
        (r"found none in \d+ lines", "found none in <n> lines"),
        // Which scenarios overlapped on the shared stack is timing's to say
        // (a fast failure may end before a slow neighbour starts, and then
        // none is named): the paragraph is left out; tests/isolation.rs
        // checks it.
        (
            r#"(?m)^it ran on shared stack .*\n(  - ".*" \(.*\)\n)*  \(one that changes .*\n"#,
            "",
        ),
    ]
    .into_iter()
    .map(|(pattern, with)| (Regex::new(pattern).unwrap(), with))
    .collect()
});

/// The workspace's root folder.
fn workspace() -> PathBuf {
    let cli = Path::new(env!("CARGO_MANIFEST_DIR"));
    cli.parent().unwrap_or(cli).to_path_buf()
}

/// `text` with the workspace root, the run ids and everything in [`VARYING`] replaced.
pub fn normalise(text: &str, run_ids: &[&str]) -> String {
    // Paths as given from the workspace root, wherever it is checked out.
    let mut text = text.replace(&format!("{}/", workspace().display()), "");
    for run in run_ids.iter().filter(|r| !r.is_empty()) {
        text = text.replace(run, "<run>");
    }
    for (pattern, with) in VARYING.iter() {
        text = pattern.replace_all(&text, *with).into_owned();
    }
    text
}
