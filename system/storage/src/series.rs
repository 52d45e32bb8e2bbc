//! The series of one target as the checker has seen them, interned once.
//!
//! A scrape repeats the same series text every time. Parsing labels into a map
//! and hashing the map for every sample cost two thirds of the checker's CPU, so
//! a scrape is resolved by looking its raw series text up here: a hit is one hash
//! of a borrowed `&str`, and only a miss parses labels and allocates. Storage
//! fills in each entry's database id the first time a batch holding it commits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use foldhash::fast::RandomState;
use metr_domain::Labels;

/// Index of a series in its [`SeriesTable`].
pub type SeriesIndex = u32;

/// One series: what storage needs to create it, and its id once created.
#[derive(Debug, Clone)]
pub struct SeriesEntry {
    pub name: String,
    pub labels: Labels,
    /// The database id, known after a batch holding the series committed.
    pub id: Option<i64>,
    /// Scrape number and timestamp of its last sample, to spot duplicates.
    last_seen: (u64, i64),
}

/// The interned series of one target, shared by the target's scrapes and storage.
#[derive(Debug, Default)]
pub struct SeriesTable {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_text: HashMap<Box<str>, SeriesIndex, RandomState>,
    by_key: HashMap<(String, Labels), SeriesIndex, RandomState>,
    entries: Vec<SeriesEntry>,
    scrapes: u64,
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

impl SeriesTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of distinct series interned.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts recording one scrape; the table is locked until the recorder is dropped.
    pub fn record(&self) -> Recorder<'_> {
        let mut inner = self.lock();
        inner.scrapes += 1;
        let scrape = inner.scrapes;
        Recorder {
            inner,
            scrape,
            samples: Vec::new(),
        }
    }

    /// Name, labels and id of the series at `index`.
    pub fn entry(&self, index: SeriesIndex) -> Option<SeriesEntry> {
        self.lock().entries.get(index as usize).cloned()
    }

    /// Database ids of `indexes`, `None` for series not stored yet.
    pub fn ids(&self, indexes: impl IntoIterator<Item = SeriesIndex>) -> Vec<Option<i64>> {
        let inner = self.lock();
        indexes
            .into_iter()
            .map(|i| inner.entries.get(i as usize).and_then(|e| e.id))
            .collect()
    }

    /// Remembers database ids after the batch that created them committed.
    pub fn set_ids(&self, ids: impl IntoIterator<Item = (SeriesIndex, i64)>) {
        let mut inner = self.lock();
        for (index, id) in ids {
            if let Some(entry) = inner.entries.get_mut(index as usize) {
                entry.id = Some(id);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the maps consistent (every write
        // is a single insert), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Records the samples of one scrape against a locked [`SeriesTable`].
pub struct Recorder<'a> {
    inner: MutexGuard<'a, Inner>,
    scrape: u64,
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
        let index = match self.inner.by_text.get(raw) {
            Some(&index) => index,
            None => {
                let (name, labels) = parse()?;
                let index = self.intern(name, labels);
                self.inner.by_text.insert(raw.into(), index);
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
        let key = (name.to_owned(), labels);
        let index = match self.inner.by_key.get(&key) {
            Some(&index) => index,
            None => self.intern(key.0, key.1),
        };
        self.push_index(index, value, ts_micros)
    }

    /// Samples recorded so far.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn finish(self) -> Vec<ScrapedSample> {
        self.samples
    }

    fn intern(&mut self, name: String, labels: Labels) -> SeriesIndex {
        let key = (name, labels);
        if let Some(&index) = self.inner.by_key.get(&key) {
            return index;
        }
        let index = SeriesIndex::try_from(self.inner.entries.len()).unwrap_or(SeriesIndex::MAX);
        self.inner.entries.push(SeriesEntry {
            name: key.0.clone(),
            labels: key.1.clone(),
            id: None,
            last_seen: (0, 0),
        });
        self.inner.by_key.insert(key, index);
        index
    }

    fn push_index(
        &mut self,
        index: SeriesIndex,
        value: f64,
        ts_micros: i64,
    ) -> Result<(), DuplicateSample> {
        let scrape = self.scrape;
        let entry = &mut self.inner.entries[index as usize];
        if entry.last_seen == (scrape, ts_micros) {
            return Err(DuplicateSample {
                series: describe(&entry.name, &entry.labels),
            });
        }
        entry.last_seen = (scrape, ts_micros);
        self.samples.push(ScrapedSample {
            series: index,
            ts_micros,
            value,
        });
        Ok(())
    }
}

fn describe(name: &str, labels: &Labels) -> String {
    if labels.is_empty() {
        return name.to_owned();
    }
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{name}{{{}}}", pairs.join(","))
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
        rec.inner.entries.len()
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
}
