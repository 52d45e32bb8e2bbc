//! Where each node of a scenario file is written.
//!
//! serde_norway (like serde_yaml before it) reports positions only in errors,
//! so a second, event-level pass with saphyr's parser records the position of
//! every key and value by its path (`steps/2/expect/json/$.data`). The loader
//! uses it to place errors found after parsing and to give every step,
//! matcher and capture its span; the runner uses those spans to point a
//! failed expectation at its line.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};
use serde::Serialize;

/// A position in a scenario file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Span {
    pub line: usize,
    pub column: usize,
}

impl Span {
    pub fn new(line: usize, column: usize) -> Span {
        Span { line, column }
    }

    /// Whether the span points somewhere (a model built in code has none).
    pub fn is_known(self) -> bool {
        self.line > 0
    }
}

/// One step of a path from the document's root to a node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A path to a node, built with [`NodePath::key`] and [`NodePath::index`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct NodePath(Vec<Segment>);

impl NodePath {
    pub fn root() -> NodePath {
        NodePath::default()
    }

    pub fn key(&self, key: impl Into<String>) -> NodePath {
        let mut out = self.clone();
        out.0.push(Segment::Key(key.into()));
        out
    }

    pub fn index(&self, index: usize) -> NodePath {
        let mut out = self.clone();
        out.0.push(Segment::Index(index));
        out
    }

    fn parent(&self) -> Option<NodePath> {
        let mut out = self.clone();
        out.0.pop()?;
        Some(out)
    }
}

/// Positions of the keys and values of a document, by path.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    /// Where a mapping entry's key (or a sequence item) starts.
    keys: HashMap<NodePath, Span>,
    /// Where a node's value starts.
    values: HashMap<NodePath, Span>,
    /// The key positions of each mapping (item positions of each sequence), in order.
    entries: HashMap<NodePath, Vec<Span>>,
    /// The text of each scalar value, as written.
    scalars: HashMap<NodePath, String>,
}

enum Frame {
    Map { path: NodePath, key: Option<String> },
    Seq { path: NodePath, next: usize },
}

impl SourceMap {
    /// Records the positions in the first document of `text`. A syntax error
    /// ends the walk: what was read so far is kept (the YAML error itself is
    /// reported by the deserializer).
    pub fn of(text: &str) -> SourceMap {
        let mut map = SourceMap::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut started = false;
        for event in Parser::new_from_str(text) {
            let Ok((event, span)) = event else { break };
            let at = Span::new(span.start.line(), span.start.col() + 1);
            match event {
                Event::DocumentStart(_) if started => break,
                Event::DocumentStart(_) => started = true,
                Event::Scalar(text, ..) => {
                    map.node(&mut stack, at, Some(text.into_owned()));
                }
                Event::Alias(_) => {
                    map.node(&mut stack, at, None);
                }
                Event::MappingStart(..) => {
                    let path = map.node(&mut stack, at, None);
                    stack.push(Frame::Map { path, key: None });
                }
                Event::SequenceStart(..) => {
                    let path = map.node(&mut stack, at, None);
                    stack.push(Frame::Seq { path, next: 0 });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                _ => {}
            }
        }
        map
    }

    /// Records a node starting at `at` and returns its path. In a mapping, a
    /// node is alternately a key (`text` names it) and that key's value.
    fn node(&mut self, stack: &mut [Frame], at: Span, text: Option<String>) -> NodePath {
        match stack.last_mut() {
            None => {
                self.values.entry(NodePath::root()).or_insert(at);
                NodePath::root()
            }
            Some(Frame::Seq { path, next }) => {
                let item = path.index(*next);
                *next += 1;
                self.entries.entry(path.clone()).or_default().push(at);
                self.keys.insert(item.clone(), at);
                self.values.insert(item.clone(), at);
                if let Some(text) = text {
                    self.scalars.insert(item.clone(), text);
                }
                item
            }
            Some(Frame::Map { path, key }) => match key.take() {
                None => {
                    // A key; a complex key (a mapping as key) is not addressable.
                    let name = text.unwrap_or_else(|| "\u{0}complex".to_owned());
                    let entry = path.key(name.clone());
                    self.keys.insert(entry.clone(), at);
                    self.entries.entry(path.clone()).or_default().push(at);
                    *key = Some(name);
                    entry
                }
                Some(name) => {
                    let entry = path.key(name);
                    self.values.insert(entry.clone(), at);
                    if let Some(text) = text {
                        self.scalars.insert(entry.clone(), text);
                    }
                    entry
                }
            },
        }
    }

    /// Where the key of `path` is written, or the nearest enclosing node's.
    pub fn key(&self, path: &NodePath) -> Span {
        self.find(path, &self.keys)
    }

    /// Where the value of `path` is written, or the nearest enclosing node's.
    pub fn value(&self, path: &NodePath) -> Span {
        self.find(path, &self.values)
    }

    /// Where the `index`-th key of the mapping (item of the sequence) at
    /// `path` is written, or the mapping's own key when there is no such entry.
    pub fn entry(&self, path: &NodePath, index: usize) -> Span {
        self.entries
            .get(path)
            .and_then(|e| e.get(index).copied())
            .unwrap_or_else(|| self.key(path))
    }

    /// Where `text` is first written at or below `under`, as a key or as a
    /// scalar value: what a message about a whole node (a step, a retry, an
    /// expectation) quotes as the culprit.
    pub fn quoted(&self, under: &NodePath, text: &str) -> Option<Span> {
        let below = |path: &NodePath| path.0.starts_with(&under.0);
        let keys = self.keys.iter().filter(|(path, _)| {
            below(path) && matches!(path.0.last(), Some(Segment::Key(k)) if k == text)
        });
        let values = self
            .scalars
            .iter()
            .filter(|(path, scalar)| below(path) && scalar.as_str() == text)
            .filter_map(|(path, _)| self.values.get_key_value(path));
        keys.chain(values)
            .map(|(_, span)| *span)
            .min_by_key(|span| (span.line, span.column))
    }

    /// Whether `path` names a node of the document.
    pub fn has(&self, path: &NodePath) -> bool {
        self.keys.contains_key(path) || self.values.contains_key(path)
    }

    fn find(&self, path: &NodePath, first: &HashMap<NodePath, Span>) -> Span {
        let mut at = Some(path.clone());
        while let Some(p) = at {
            if let Some(span) = first.get(&p).or_else(|| self.keys.get(&p)) {
                return *span;
            }
            at = p.parent();
        }
        self.values
            .get(&NodePath::root())
            .copied()
            .unwrap_or(Span::new(1, 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name: x\nsteps:\n  - name: a\n    http: { path: /a }\n    expect:\n      status: 200\n      json:\n        \"$.data\": { length: 1 }\n  - sleep: 1s\n";

    #[test]
    fn a_quoted_key_or_value_is_found_below_the_node_only() {
        let map = SourceMap::of(TEXT);
        let steps = NodePath::root().key("steps");
        assert_eq!(map.quoted(&steps.index(0), "status"), Some(Span::new(6, 7)));
        assert_eq!(map.quoted(&steps.index(0), "/a"), Some(Span::new(4, 19)));
        assert_eq!(map.quoted(&steps.index(1), "1s"), Some(Span::new(9, 12)));
        assert_eq!(map.quoted(&steps.index(1), "status"), None);
        assert_eq!(map.quoted(&steps.index(0), "nowhere"), None);
    }

    #[test]
    fn keys_and_values_are_found_by_path() {
        let map = SourceMap::of(TEXT);
        let steps = NodePath::root().key("steps");
        assert_eq!(map.key(&steps.index(0)), Span::new(3, 5));
        assert_eq!(map.key(&steps.index(1)), Span::new(9, 5));
        let expect = steps.index(0).key("expect");
        assert_eq!(map.key(&expect.key("status")), Span::new(6, 7));
        assert_eq!(map.value(&expect.key("status")), Span::new(6, 15));
        assert_eq!(map.key(&expect.key("json").key("$.data")), Span::new(8, 9));
        assert_eq!(
            map.value(&steps.index(0).key("http").key("path")),
            Span::new(4, 19)
        );
        assert_eq!(map.entry(&expect, 1), Span::new(7, 7));
        assert_eq!(map.entry(&expect.key("json"), 0), Span::new(8, 9));
        assert_eq!(map.entry(&steps, 1), Span::new(9, 5));
    }

    #[test]
    fn an_unknown_path_falls_back_to_its_nearest_ancestor() {
        let map = SourceMap::of(TEXT);
        let missing = NodePath::root()
            .key("steps")
            .index(0)
            .key("capture")
            .key("x");
        assert_eq!(map.key(&missing), Span::new(3, 5));
        assert!(!map.has(&missing));
    }

    #[test]
    fn a_broken_document_keeps_what_was_read() {
        let map = SourceMap::of("name: x\nsteps: [\n");
        assert_eq!(map.key(&NodePath::root().key("name")), Span::new(1, 1));
    }
}
