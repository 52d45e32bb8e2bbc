//! Where a node of a scenario file is written ([`Span`]), and how its place
//! in the document is named in messages ([`NodePath`], `steps[0].retry`).

use std::fmt;

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

    /// The path of the node that holds this one (the root holds itself).
    #[must_use]
    pub fn parent(&self) -> NodePath {
        let mut out = self.clone();
        out.0.pop();
        out
    }

    /// Whether this is the document itself.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

/// As serde_yaml showed paths: keys joined by dots, indexes in brackets.
impl fmt::Display for NodePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_reads_as_keys_and_indexes() {
        let path = NodePath::root().key("steps").index(0).key("retry");
        assert_eq!(path.to_string(), "steps[0].retry");
        assert_eq!(path.parent().to_string(), "steps[0]");
        assert!(NodePath::root().is_root());
    }
}
