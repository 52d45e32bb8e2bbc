//! The one parse of a scenario file: saphyr's event parser builds a tree in
//! which every key and value carries the span where it is written, so the
//! decoder ([`crate::decode`]) can place each problem at its own node.

use saphyr_parser::{Event, Parser, ScalarStyle};

use crate::error::{LoadError, Problem};
use crate::span::{NodePath, Span};

/// A key or value of the document, where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: Span,
    pub kind: Kind,
}

/// What a node holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A scalar as written; `plain` when unquoted (only a plain scalar can be
    /// a number, a boolean or null).
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    /// Entries in the file's order, repeated keys included (reported apart).
    Map(Vec<(Node, Node)>),
}

/// The most nodes aliases may add: far above any scenario, far below a
/// "billion laughs" (`&a [*b, *b, …]` nested) that would exhaust memory.
const MAX_ALIAS_NODES: usize = 100_000;

/// The deepest nesting read; deeper documents are refused, not overflowed.
pub const MAX_DEPTH: usize = 128;

/// A collection being built; a mapping holds its key until its value comes.
struct Open {
    span: Span,
    anchor: usize,
    kind: Kind,
    key: Option<Node>,
}

/// Builds the tree of the first document from parser events.
struct Builder {
    stack: Vec<Open>,
    anchors: Vec<(usize, Node)>,
    alias_nodes: usize,
    first_alias: Option<Span>,
    root: Option<Node>,
}

impl Node {
    /// The scalar's text, if this is a scalar.
    pub fn text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Whether this is a plain `~`, `null` or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, plain: true }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    fn size(&self) -> usize {
        match &self.kind {
            Kind::Scalar { .. } => 1,
            Kind::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            Kind::Map(entries) => {
                1 + entries
                    .iter()
                    .map(|(k, v)| k.size() + v.size())
                    .sum::<usize>()
            }
        }
    }
}

/// Parses the one document of `text` into a tree, or the problem that stops
/// the parse: a syntax error, a second document, too many aliases.
pub fn parse(text: &str) -> Result<Node, Problem> {
    let mut builder = Builder {
        stack: Vec::new(),
        anchors: Vec::new(),
        alias_nodes: 0,
        first_alias: None,
        root: None,
    };
    let mut documents = 0;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| syntax(text, &e))?;
        let at = Span::new(span.start.line(), span.start.col() + 1);
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(Problem::new(at, LoadError::SecondDocument));
                }
            }
            Event::StreamEnd => break,
            other => builder.event(other, at)?,
        }
    }
    Ok(builder.root.unwrap_or(Node {
        span: Span::new(1, 1),
        kind: Kind::Scalar {
            text: String::new(),
            plain: true,
        },
    }))
}

impl Builder {
    fn event(&mut self, event: Event<'_>, at: Span) -> Result<(), Problem> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                // A tag (`!!str 5`) says what the scalar is: read it as written.
                let plain = style == ScalarStyle::Plain && tag.is_none();
                let text = text.into_owned();
                self.add(
                    anchor,
                    Node {
                        span: at,
                        kind: Kind::Scalar { text, plain },
                    },
                )
            }
            Event::Alias(id) => self.alias(id, at),
            Event::SequenceStart(anchor, _) => self.open(anchor, at, Kind::Seq(Vec::new())),
            Event::MappingStart(anchor, _) => self.open(anchor, at, Kind::Map(Vec::new())),
            Event::SequenceEnd | Event::MappingEnd => {
                let open = self.stack.pop().expect("an open collection");
                let node = Node {
                    span: open.span,
                    kind: open.kind,
                };
                self.add(open.anchor, node)
            }
            _ => Ok(()),
        }
    }

    fn open(&mut self, anchor: usize, at: Span, kind: Kind) -> Result<(), Problem> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(Problem::new(at, LoadError::TooDeep { max: MAX_DEPTH }));
        }
        self.stack.push(Open {
            span: at,
            anchor,
            kind,
            key: None,
        });
        Ok(())
    }

    fn alias(&mut self, id: usize, at: Span) -> Result<(), Problem> {
        let first = *self.first_alias.get_or_insert(at);
        let node = self
            .anchors
            .iter()
            .rev()
            .find(|(a, _)| *a == id)
            .map(|(_, n)| n.clone())
            .ok_or_else(|| Problem::new(at, LoadError::UnknownAnchor))?;
        self.alias_nodes += node.size();
        if self.alias_nodes > MAX_ALIAS_NODES {
            return Err(Problem::new(first, LoadError::AliasBomb));
        }
        self.add(0, node)
    }

    /// Puts a finished node into the collection being built (a mapping
    /// alternates keys and values), or makes it the root.
    fn add(&mut self, anchor: usize, node: Node) -> Result<(), Problem> {
        if anchor != 0 {
            self.anchors.push((anchor, node.clone()));
        }
        let Some(open) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        match (&mut open.kind, open.key.take()) {
            (Kind::Seq(items), _) => items.push(node),
            (Kind::Map(entries), Some(key)) => entries.push((key, node)),
            (Kind::Map(_), None) => open.key = Some(node),
            (Kind::Scalar { .. }, _) => unreachable!("a scalar is never open"),
        }
        Ok(())
    }
}

/// saphyr says "while parsing X, did not find Y"; libyaml, whose words the
/// diagnostics have always used, says "did not find Y, while parsing X".
fn syntax(text: &str, e: &saphyr_parser::ScanError) -> Problem {
    let info = e.info();
    let message = match info.strip_prefix("while ").and_then(|r| r.split_once(", ")) {
        Some((context, problem)) => format!("{problem}, while {context}"),
        None => info.to_owned(),
    };
    let mark = e.marker();
    let at = end_of_text(text, Span::new(mark.line(), mark.col() + 1));
    Problem::new(at, LoadError::Syntax(message))
}

/// A position past the last line (the parser reached the end) is shown at
/// the end of the last line that has text.
fn end_of_text(text: &str, at: Span) -> Span {
    let lines: Vec<&str> = text.lines().collect();
    if at.line <= lines.len() && !lines[at.line - 1].trim().is_empty() {
        return at;
    }
    match lines.iter().rposition(|l| !l.trim().is_empty()) {
        Some(i) if i + 1 < at.line => Span::new(i + 1, lines[i].chars().count() + 1),
        _ => at,
    }
}

/// Every key written twice in one mapping, at its second writing.
pub fn duplicates(node: &Node, path: &NodePath, out: &mut Vec<Problem>) {
    match &node.kind {
        Kind::Scalar { .. } => {}
        Kind::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                duplicates(item, &path.index(i), out);
            }
        }
        Kind::Map(entries) => {
            for (i, (key, value)) in entries.iter().enumerate() {
                let name = key.text().unwrap_or_default();
                let repeated = entries[..i].iter().any(|(k, _)| k.kind == key.kind);
                if repeated && key.text().is_some() {
                    let error = LoadError::DuplicateKey(name.to_owned());
                    out.push(Problem::new(key.span, error).under(path));
                }
                duplicates(value, &path.key(name), out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_and_value_has_its_span() {
        let root = parse("name: x\nsteps:\n  - sleep: 1s\n    expect: { a: [1, b] }\n").unwrap();
        let Kind::Map(entries) = &root.kind else {
            panic!("a mapping")
        };
        assert_eq!(entries[1].0.span, Span::new(2, 1));
        let Kind::Seq(steps) = &entries[1].1.kind else {
            panic!("a sequence")
        };
        let Kind::Map(step) = &steps[0].kind else {
            panic!("a mapping")
        };
        assert_eq!(step[0].1.span, Span::new(3, 12));
        assert_eq!(step[1].0.span, Span::new(4, 5));
        let Kind::Map(expect) = &step[1].1.kind else {
            panic!("a mapping")
        };
        assert_eq!(expect[0].1.span, Span::new(4, 18));
    }

    #[test]
    fn a_syntax_error_reads_as_libyaml_said_it() {
        let e = parse("name: x\nsteps:\n  - http: { path: /a\n").unwrap_err();
        assert_eq!(
            e.error.to_string(),
            "did not find expected ',' or '}', while parsing a flow mapping"
        );
        assert_eq!(e.span.line, 3);
    }

    #[test]
    fn aliases_are_expanded_within_a_limit() {
        let root = parse("a: &x [1, 2]\nb: *x\n").unwrap();
        let Kind::Map(entries) = &root.kind else {
            panic!("a mapping")
        };
        assert_eq!(entries[0].1.kind, entries[1].1.kind);
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (name, prev) in [("b", "a"), ("c", "b"), ("d", "c"), ("e", "d"), ("f", "e")] {
            let items = vec![format!("*{prev}"); 10].join(", ");
            bomb.push_str(&format!("{name}: &{name} [{items}]\n"));
        }
        let e = parse(&bomb).unwrap_err();
        assert_eq!(e.span, Span::new(2, 8));
    }

    #[test]
    fn a_second_document_is_refused_where_it_starts() {
        let e = parse("a: 1\n---\na: 2\n").unwrap_err();
        assert_eq!(e.span, Span::new(2, 1));
    }

    #[test]
    fn a_repeated_key_is_found_at_its_second_writing() {
        let root = parse("a: { b: 1, c: 2, b: 3 }\n").unwrap();
        let mut out = Vec::new();
        duplicates(&root, &NodePath::root(), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].span, Span::new(1, 18));
        assert_eq!(
            out[0].to_string(),
            "a: duplicate key \"b\": each key may appear once in a mapping"
        );
    }
}
