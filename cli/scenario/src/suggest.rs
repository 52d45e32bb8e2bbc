//! "Did you mean": the known name nearest to a misspelt one, by edit
//! distance, as rustc and Hurl suggest.

/// Edit distance between two strings, in characters: insertions, deletions,
/// substitutions and swaps of two neighbours (`stauts` is one edit from
/// `status`), each counting one.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut last: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (last[j - 1] + cost).min(last[j] + 1).min(row[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut last, row);
    }
    last[b.len()]
}

/// The candidate nearest to `word`, if near enough to be a typo of it: at
/// most a third of its length away (one edit for short words), as rustc
/// allows; a difference of case alone always is.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| {
            let d = if c.eq_ignore_ascii_case(word) {
                0
            } else {
                distance(word, c)
            };
            (d, c)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `did you mean `name`?` for the nearest candidate, quoted as `quote` says.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    quote: fn(&str) -> String,
) -> Option<String> {
    closest(word, candidates).map(|c| format!("did you mean {}?", quote(c)))
}

/// `name` in backticks, as serde names fields.
pub fn backticks(name: &str) -> String {
    format!("`{name}`")
}

/// `"name"`, as messages quote values.
pub fn quoted(name: &str) -> String {
    format!("{name:?}")
}

/// `'name'`, as links are quoted (a `>` unquoted is a shell redirect).
pub fn single(name: &str) -> String {
    format!("'{name}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_finds_its_word_and_a_stranger_finds_none() {
        let keys = ["status", "headers", "json", "body"];
        assert_eq!(closest("stauts", keys), Some("status"));
        assert_eq!(closest("JSON", keys), Some("json"));
        assert_eq!(closest("boyd", keys), Some("body"));
        assert_eq!(closest("latency", keys), None);
        assert_eq!(closest("is", ["gt", "lt"]), None);
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("same", "same"), 0);
        assert_eq!(distance("stauts", "status"), 1);
    }
}
