//! The series of one target as the checker has seen them, interned once.
//!
//! A scrape repeats the same series text every time. Parsing labels into a map
//! and hashing the map for every sample cost two thirds of the checker's CPU, so
//! a scrape is resolved by looking its raw series text up here: a hit is one hash
//! of a borrowed `&str`, and only a miss parses labels and allocates. Storage
//! fills in each entry's database id the first time a batch holding it commits.
//!
//! Memory is what bounds how many series a checker can hold, so each series is
//! kept once, as its canonical text (`name{a="1",b="2"}`, labels sorted, the
//! target's own labels included): about 100 bytes for a typical series instead
//! of a name and a label map kept twice (2.5 KiB measured with `BTreeMap`
//! labels, whose first node alone is over 500 bytes). The lookup table holds
//! only indexes into the entries. A target that spells a series differently
//! from its canonical text (labels out of order, or the target's configured
//! labels added) costs an alias: not the text, but two independent 64-bit
//! hashes of it (a false match needs a 128-bit collision under random seeds
//! the target never sees), 24 bytes. Name and labels are parsed back from the
//! canonical text only when storage creates the series.

use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::num::NonZeroI64;
use std::sync::{Arc, Mutex, MutexGuard};

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use metr_domain::Labels;

/// Index of a series in its [`SeriesTable`].
pub type SeriesIndex = u32;

/// One series as storage needs it to create the series: name, labels, and its id once created.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesEntry {
    pub name: String,
    pub labels: Labels,
    /// The database id, known after a batch holding the series committed.
    pub id: Option<i64>,
}

/// The interned series of one target, shared by the target's scrapes and storage.
#[derive(Debug, Default)]
pub struct SeriesTable {
    inner: Mutex<Inner>,
}

/// One interned series.
#[derive(Debug)]
struct Slot {
    /// Canonical text: what identifies the series, and what it is rebuilt from.
    text: Box<str>,
    id: Option<NonZeroI64>,
    /// Scrape number and timestamp of its last sample, to spot duplicates.
    last_scrape: u32,
    last_ts: i64,
}

/// Another spelling of a series: two hashes of its text, and the series.
#[derive(Debug)]
struct Alias {
    hash: u64,
    check: u64,
    index: SeriesIndex,
}

#[derive(Debug, Default)]
struct Inner {
    hasher: RandomState,
    /// Indexes of `slots`, found by their canonical text.
    by_text: HashTable<SeriesIndex>,
    /// Other spellings of interned series, as targets wrote them.
    /// Found by one hash of the text, told apart by a second one.
    aliases: HashTable<Alias>,
    alias_hasher: RandomState,
    slots: Vec<Slot>,
    /// Bytes held by the texts of `slots` (heap only).
    text_bytes: usize,
    scrapes: u32,
}

/// One sample of a scrape, pointing at its series by index: 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScrapedSample {
    pub series: SeriesIndex,
    pub ts_micros: i64,
    pub value: f64,
}

/// What one scrape of one target produced, ready to store.
#[derive(Debug, Clone)]
pub struct ScrapeSamples {
    pub target: String,
    pub table: Arc<SeriesTable>,
    pub samples: Vec<ScrapedSample>,
}

/// A series exposed twice with the same timestamp in one scrape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("duplicate sample for series {series} at the same timestamp")]
pub struct DuplicateSample {
    pub series: String,
}

/// Heap bytes one allocation costs beyond its contents (glibc's header, rounded).
const ALLOCATION_OVERHEAD: usize = 16;

impl SeriesTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of distinct series interned.
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of memory the table holds, its allocations' capacity included.
    pub fn memory_bytes(&self) -> usize {
        let inner = self.lock();
        let slots = inner.slots.capacity() * std::mem::size_of::<Slot>();
        // hashbrown keeps one control byte per bucket beside each value.
        let by_text = inner.by_text.capacity() * (std::mem::size_of::<SeriesIndex>() + 1);
        let aliases = inner.aliases.capacity() * (std::mem::size_of::<Alias>() + 1);
        let texts = inner.text_bytes + inner.slots.len() * ALLOCATION_OVERHEAD;
        slots + by_text + aliases + texts
    }

    /// Starts recording one scrape; the table is locked until the recorder is dropped.
    pub fn record(&self) -> Recorder<'_> {
        let mut inner = self.lock();
        inner.scrapes = inner.scrapes.wrapping_add(1);
        let scrape = inner.scrapes;
        Recorder {
            inner,
            scrape,
            samples: Vec::new(),
        }
    }

    /// Name, labels and id of the series at `index`.
    pub fn entry(&self, index: SeriesIndex) -> Option<SeriesEntry> {
        let inner = self.lock();
        let slot = inner.slots.get(index as usize)?;
        let (name, labels) = decode(&slot.text)?;
        Some(SeriesEntry {
            name,
            labels,
            id: slot.id.map(NonZeroI64::get),
        })
    }

    /// Database ids of `indexes`, `None` for series not stored yet.
    pub fn ids(&self, indexes: impl IntoIterator<Item = SeriesIndex>) -> Vec<Option<i64>> {
        let inner = self.lock();
        indexes
            .into_iter()
            .map(|i| {
                inner
                    .slots
                    .get(i as usize)
                    .and_then(|s| s.id)
                    .map(NonZeroI64::get)
            })
            .collect()
    }

    /// Remembers database ids after the batch that created them committed.
    pub fn set_ids(&self, ids: impl IntoIterator<Item = (SeriesIndex, i64)>) {
        let mut inner = self.lock();
        for (index, id) in ids {
            if let Some(slot) = inner.slots.get_mut(index as usize) {
                slot.id = NonZeroI64::new(id);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the maps consistent (every write
        // is a single insert), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn find(&self, text: &str) -> Option<SeriesIndex> {
        let hash = self.hasher.hash_one(text);
        let slots = &self.slots;
        self.by_text
            .find(hash, |&i| &*slots[i as usize].text == text)
            .copied()
            .or_else(|| {
                if self.aliases.is_empty() {
                    return None;
                }
                let check = self.alias_hasher.hash_one(text);
                self.aliases
                    .find(hash, |a| a.check == check)
                    .map(|a| a.index)
            })
    }

    /// The index of the series with this canonical text, interning it if new.
    fn intern(&mut self, canonical: String) -> SeriesIndex {
        let hash = self.hasher.hash_one(canonical.as_str());
        let slots = &self.slots;
        if let Some(&index) = self
            .by_text
            .find(hash, |&i| *slots[i as usize].text == *canonical)
        {
            return index;
        }
        let index = SeriesIndex::try_from(self.slots.len()).unwrap_or(SeriesIndex::MAX);
        self.text_bytes += canonical.len();
        self.slots.push(Slot {
            text: canonical.into_boxed_str(),
            id: None,
            last_scrape: 0,
            last_ts: 0,
        });
        let (hasher, slots) = (&self.hasher, &self.slots);
        self.by_text
            .insert_unique(hash, index, |&i| hasher.hash_one(&*slots[i as usize].text));
        index
    }

    fn alias(&mut self, raw: &str, index: SeriesIndex) {
        let alias = Alias {
            hash: self.hasher.hash_one(raw),
            check: self.alias_hasher.hash_one(raw),
            index,
        };
        self.aliases.insert_unique(alias.hash, alias, |a| a.hash);
    }
}

/// Records the samples of one scrape against a locked [`SeriesTable`].
pub struct Recorder<'a> {
    inner: MutexGuard<'a, Inner>,
    scrape: u32,
    samples: Vec<ScrapedSample>,
}

impl Recorder<'_> {
    /// Records a sample by its raw series text (`name{labels}` exactly as
    /// exposed). `parse` turns the text into a name and labels, and is called
    /// only the first time the text is seen.
    pub fn push_raw<E>(
        &mut self,
        raw: &str,
        value: f64,
        ts_micros: i64,
        parse: impl FnOnce() -> Result<(String, Labels), E>,
    ) -> Result<(), E>
    where
        E: From<DuplicateSample>,
    {
        let index = match self.inner.find(raw) {
            Some(index) => index,
            None => {
                let (name, labels) = parse()?;
                let canonical = canonical(&name, &labels);
                let is_canonical = canonical == raw;
                let index = self.inner.intern(canonical);
                if !is_canonical {
                    self.inner.alias(raw, index);
                }
                index
            }
        };
        self.push_index(index, value, ts_micros)?;
        Ok(())
    }

    /// Records a sample of a series given by name and labels (synthetic series).
    pub fn push(
        &mut self,
        name: &str,
        labels: Labels,
        value: f64,
        ts_micros: i64,
    ) -> Result<(), DuplicateSample> {
        let index = self.inner.intern(canonical(name, &labels));
        self.push_index(index, value, ts_micros)
    }

    /// Samples recorded so far.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Series of the table, this scrape's new ones included.
    pub fn series(&self) -> usize {
        self.inner.slots.len()
    }

    pub fn finish(self) -> Vec<ScrapedSample> {
        self.samples
    }

    fn push_index(
        &mut self,
        index: SeriesIndex,
        value: f64,
        ts_micros: i64,
    ) -> Result<(), DuplicateSample> {
        let scrape = self.scrape;
        let slot = &mut self.inner.slots[index as usize];
        if (slot.last_scrape, slot.last_ts) == (scrape, ts_micros) {
            return Err(DuplicateSample {
                series: slot.text.to_string(),
            });
        }
        (slot.last_scrape, slot.last_ts) = (scrape, ts_micros);
        self.samples.push(ScrapedSample {
            series: index,
            ts_micros,
            value,
        });
        Ok(())
    }
}

/// `name{a="1",b="2"}`: labels in key order, values escaped as in the text
/// exposition format; the name alone when there are no labels.
fn canonical(name: &str, labels: &Labels) -> String {
    let len = name.len()
        + labels
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum::<usize>()
        + 2;
    let mut text = String::with_capacity(len);
    text.push_str(name);
    if labels.is_empty() {
        return text;
    }
    text.push('{');
    for (i, (key, value)) in labels.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        let _ = write!(text, "{key}=\"");
        for c in value.chars() {
            match c {
                '\\' => text.push_str("\\\\"),
                '"' => text.push_str("\\\""),
                '\n' => text.push_str("\\n"),
                c => text.push(c),
            }
        }
        text.push('"');
    }
    text.push('}');
    text
}

/// Name and labels back from [`canonical`]'s text; `None` for any other text.
fn decode(text: &str) -> Option<(String, Labels)> {
    let Some((name, mut rest)) = text.split_once('{') else {
        return Some((text.to_owned(), Labels::new()));
    };
    let mut labels = Labels::new();
    loop {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.to_owned(), value);
        rest = &after[end + 1..];
        match rest.as_bytes().first()? {
            b',' => rest = &rest[1..],
            b'}' if rest.len() == 1 => return Some((name.to_owned(), labels)),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parsed(
        name: &str,
        pairs: &[(&str, &str)],
    ) -> impl FnOnce() -> Result<(String, Labels), DuplicateSample> {
        let out = (name.to_owned(), labels(pairs));
        move || Ok(out)
    }

    #[test]
    fn a_known_series_text_is_not_parsed_again() {
        let table = SeriesTable::new();
        let mut first = table.record();
        first
            .push_raw("m{a=\"1\"}", 1.0, 10, parsed("m", &[("a", "1")]))
            .unwrap();
        drop(first);
        let mut second = table.record();
        second
            .push_raw("m{a=\"1\"}", 2.0, 20, || -> Result<_, DuplicateSample> {
                panic!("parsed twice")
            })
            .unwrap();
        assert_eq!(second.finish()[0].series, 0);
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn two_spellings_of_one_series_share_an_entry() {
        let table = SeriesTable::new();
        let mut rec = table.record();
        rec.push_raw(
            "m{a=\"1\",b=\"2\"}",
            1.0,
            10,
            parsed("m", &[("a", "1"), ("b", "2")]),
        )
        .unwrap();
        let err = rec
            .push_raw(
                "m{b=\"2\",a=\"1\"}",
                1.0,
                10,
                parsed("m", &[("a", "1"), ("b", "2")]),
            )
            .unwrap_err();
        assert!(err.series.contains("a=\"1\""), "{err}");
        assert_eq!(table_len_while_locked(&rec), 1);
    }

    fn table_len_while_locked(rec: &Recorder<'_>) -> usize {
        rec.series()
    }

    #[test]
    fn the_same_series_twice_in_one_scrape_is_a_duplicate_but_not_across_scrapes() {
        let table = SeriesTable::new();
        let mut rec = table.record();
        rec.push("up", Labels::new(), 1.0, 5).unwrap();
        assert!(rec.push("up", Labels::new(), 1.0, 5).is_err());
        rec.push("up", Labels::new(), 1.0, 6)
            .expect("another timestamp is another sample");
        drop(rec);
        let mut rec = table.record();
        rec.push("up", Labels::new(), 1.0, 5)
            .expect("a new scrape starts afresh");
    }

    #[test]
    fn ids_are_remembered_once_set() {
        let table = SeriesTable::new();
        let mut rec = table.record();
        rec.push("a", Labels::new(), 1.0, 1).unwrap();
        rec.push("b", Labels::new(), 1.0, 1).unwrap();
        drop(rec);
        assert_eq!(table.ids([0, 1]), vec![None, None]);
        table.set_ids([(1, 42)]);
        assert_eq!(table.ids([0, 1, 7]), vec![None, Some(42), None]);
        assert_eq!(table.entry(1).unwrap().name, "b");
    }

    #[test]
    fn a_canonical_text_decodes_to_its_name_and_labels_whatever_they_hold() {
        for pairs in [
            &[][..],
            &[("a", "1")][..],
            &[("b", "x\\y"), ("a", "say \"hi\"\n"), ("c", "")][..],
            &[("le", "+Inf"), ("path", "/a{b}=c,d")][..],
        ] {
            let labels = labels(pairs);
            let text = canonical("m:x_total", &labels);
            assert_eq!(
                decode(&text),
                Some(("m:x_total".to_owned(), labels.clone())),
                "{text}"
            );
        }
        assert_eq!(
            canonical("m", &labels(&[("b", "2"), ("a", "1")])),
            "m{a=\"1\",b=\"2\"}"
        );
    }

    #[test]
    fn a_series_spelt_canonically_is_kept_once() {
        let table = SeriesTable::new();
        let mut rec = table.record();
        for i in 0..1000 {
            let raw = format!("m{{i=\"{i}\"}}");
            let value = i.to_string();
            rec.push_raw(&raw, 1.0, 1, || {
                Ok::<_, DuplicateSample>(("m".into(), labels(&[("i", &value)])))
            })
            .unwrap();
        }
        drop(rec);
        let inner = table.lock();
        assert_eq!(inner.slots.len(), 1000);
        assert!(
            inner.aliases.is_empty(),
            "canonical spellings need no alias"
        );
        drop(inner);
        let per_series = table.memory_bytes() / 1000;
        assert!(per_series < 150, "{per_series} bytes per series");
    }

    #[test]
    fn another_spelling_finds_the_series_without_parsing_again() {
        let table = SeriesTable::new();
        let mut rec = table.record();
        rec.push_raw(
            "m{b=\"2\",a=\"1\"}",
            1.0,
            1,
            parsed("m", &[("a", "1"), ("b", "2")]),
        )
        .unwrap();
        drop(rec);
        let mut rec = table.record();
        rec.push_raw(
            "m{b=\"2\",a=\"1\"}",
            1.0,
            2,
            || -> Result<_, DuplicateSample> { panic!("parsed twice") },
        )
        .unwrap();
        rec.push_raw(
            "m{a=\"1\",b=\"2\"}",
            1.0,
            3,
            || -> Result<_, DuplicateSample> {
                panic!("the canonical spelling is known without parsing")
            },
        )
        .unwrap();
        assert_eq!(rec.series(), 1);
    }

    #[test]
    fn two_hundred_thousand_series_fit_in_the_bytes_per_series_the_checker_budgets() {
        // gometr's synthetic series, once spelt canonically and once not.
        for (spelling, bound) in [("canonical", 160), ("aliased", 192)] {
            let table = SeriesTable::new();
            let mut rec = table.record();
            for i in 0..200_000 {
                let raw = match spelling {
                    "canonical" => format!("gometr_synthetic_series{{index=\"{i}\"}}"),
                    _ => format!("gometr_synthetic_series{{index=\"{i}\",a=\"b\"}}"),
                };
                let value = i.to_string();
                rec.push_raw(&raw, 1.0, 1, || {
                    let mut l = labels(&[("index", &value)]);
                    if spelling != "canonical" {
                        l.insert("a".into(), "b".into());
                    }
                    Ok::<_, DuplicateSample>(("gometr_synthetic_series".into(), l))
                })
                .unwrap();
            }
            drop(rec);
            let per_series = table.memory_bytes() / table.len();
            assert!(
                per_series <= bound,
                "{spelling}: {per_series} bytes per series, over {bound}"
            );
        }
    }
}
