//! A corpus of tricky exposition files in tests/corpus/. Each file's first line
//! says what it must yield: `# expect: samples=N` or `# expect: error line=L`.

use std::path::Path;

use metr_domain::exposition::parse;

#[test]
fn every_corpus_file_yields_what_it_declares() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the corpus is there");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let expect = text
            .lines()
            .find_map(|l| l.trim_end_matches('\r').strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: no '# expect:' line", file.display()));
        let result = parse(&text);
        let name = file.file_name().unwrap().to_string_lossy();
        if let Some(n) = expect.strip_prefix("samples=") {
            let samples = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                samples.len(),
                n.parse::<usize>().unwrap(),
                "{name}: {samples:#?}"
            );
        } else if let Some(line) = expect.strip_prefix("error line=") {
            let err = result.expect_err(&name);
            assert_eq!(err.line, line.parse::<usize>().unwrap(), "{name}: {err}");
        } else {
            panic!("{name}: unknown expectation {expect:?}");
        }
    }
}

#[test]
fn corpus_values_come_out_exactly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let escapes = parse(&std::fs::read_to_string(dir.join("escapes.prom")).unwrap()).unwrap();
    assert_eq!(escapes[0].labels["path"], "/a,b");
    assert_eq!(escapes[0].labels["q"], "x=y");
    assert_eq!(escapes[1].labels["msg"], "say \"hi\"");
    assert_eq!(escapes[1].labels["slash"], "back\\slash");
    assert_eq!(escapes[2].labels["nl"], "line1\nline2");
    assert_eq!(escapes[2].labels["brace"], "}{");
    assert_eq!(escapes[3].labels["unicode"], "héllo ✓");
    assert_eq!(escapes[5].labels["spaced"], "out");
    let special =
        parse(&std::fs::read_to_string(dir.join("special_values.prom")).unwrap()).unwrap();
    assert_eq!(special[1].name, "job:http_requests:rate5m");
    assert_eq!(special[2].timestamp_ms, Some(1_700_000_000_123));
    assert_eq!(special[3].value, f64::NEG_INFINITY);
    assert!(special[5].value.is_nan());
    assert_eq!(special[6].value, 1e6);
    let om = parse(&std::fs::read_to_string(dir.join("openmetrics.prom")).unwrap()).unwrap();
    assert_eq!(om[0].value, 10.0, "the exemplar is not the value");
}
