//! `checker check-exposition`: either exposition parser over files, from the
//! shell, like `promtool check metrics`. Part of the binary, not the library:
//! it is only reading files and printing what the domain's parsers say.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use metr_domain::format::Format;

/// The files to check and the parser to use (the subcommand's help, in
/// `main.rs`, says what it prints and how it exits).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Parser to use: openmetrics (strict OpenMetrics 1.0) or text (lenient
    /// Prometheus text 0.0.4). Default: openmetrics for a file whose last
    /// line is "# EOF", text for any other.
    #[arg(long, value_name = "openmetrics|text")]
    format: Option<Format>,
    /// Files to check; "-" reads standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// Checks every file, reporting on standard error; the exit code says
/// whether all of them parse.
pub fn run(args: &Args) -> ExitCode {
    let mut failed = false;
    for file in &args.files {
        let name = file.display().to_string();
        let outcome = read(file)
            .map_err(|e| format!("{name}: cannot read: {e}"))
            .and_then(|text| check(&name, &text, args.format));
        if let Err(message) = outcome {
            eprintln!("{message}");
            failed = true;
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn read(file: &PathBuf) -> std::io::Result<String> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        return Ok(text);
    }
    std::fs::read_to_string(file)
}

/// The first error of `text`, as `NAME:LINE:COLUMN: REASON`.
fn check(name: &str, text: &str, format: Option<Format>) -> Result<(), String> {
    let format = format.unwrap_or_else(|| Format::detect(text));
    format
        .parse(text)
        .map(drop)
        .map_err(|e| format!("{name}:{}:{}: {}", e.line, e.column, e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_follows_the_file_unless_given() {
        let text = "# a comment\na 1\n";
        assert_eq!(check("f", text, None), Ok(()));
        let strict = check("f", text, Some(Format::OpenMetrics)).unwrap_err();
        assert!(strict.starts_with("f:1:3: "), "{strict}");
        let detected = check("f", "# a comment\na 1\n# EOF\n", None).unwrap_err();
        assert!(detected.starts_with("f:1:3: "), "{detected}");
    }
}
