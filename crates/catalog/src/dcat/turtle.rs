//! Turtle (RDF 1.1): the graph's prefixes declared once, then one block per subject
//! with its properties, strings escaped so that quotes, backslashes and line breaks in
//! titles and descriptions can never end a literal early.

use std::fmt::Write as _;

use super::graph::{rdf, Graph, Iri, Literal, LiteralKind, Namespace, Node, Term};

pub(super) fn write(graph: &Graph) -> String {
    let mut out = String::new();
    for ns in graph.namespaces() {
        let _ = writeln!(out, "@prefix {}: <{}> .", ns.prefix(), ns.iri());
    }
    for description in graph.descriptions() {
        out.push('\n');
        out.push_str(&node(description.subject));
        for (index, (predicate, objects)) in description.properties.iter().enumerate() {
            out.push_str(if index == 0 { " " } else { " ;\n    " });
            if *predicate == rdf::TYPE {
                out.push('a');
            } else {
                out.push_str(&predicate.prefixed());
            }
            for (n, object) in objects.iter().enumerate() {
                out.push_str(if n == 0 { " " } else { ", " });
                out.push_str(&term(object));
            }
        }
        out.push_str(" .\n");
    }
    out
}

fn node(node: &Node) -> String {
    match node {
        Node::Iri(iri) => iri_ref(iri),
        Node::Blank(n) => format!("_:b{n}"),
    }
}

/// A prefixed name where the IRI has one, else `<…>`. [`Iri`] never holds a
/// character that would need escaping inside `<…>`.
fn iri_ref(iri: &Iri) -> String {
    match Namespace::split(iri.as_str()) {
        Some((ns, local)) => format!("{}:{local}", ns.prefix()),
        None => format!("<{iri}>"),
    }
}

fn term(term: &Term) -> String {
    match term {
        Term::Node(n) => node(n),
        Term::Literal(literal) => self::literal(literal),
    }
}

fn literal(literal: &Literal) -> String {
    let mut out = String::with_capacity(literal.value.len() + 8);
    out.push('"');
    for c in literal.value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    match &literal.kind {
        LiteralKind::Plain => {}
        LiteralKind::Language(tag) => {
            out.push('@');
            out.push_str(tag);
        }
        LiteralKind::Typed(datatype) => {
            out.push_str("^^");
            out.push_str(&datatype.prefixed());
        }
    }
    out
}
