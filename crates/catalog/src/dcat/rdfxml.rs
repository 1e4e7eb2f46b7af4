//! RDF/XML: one node element per subject, typed by its first class where that class
//! has a prefixed name, with `rdf:about`/`rdf:nodeID` for subjects,
//! `rdf:resource`/`rdf:nodeID` for objects, and `xml:lang`/`rdf:datatype` on literals.
//! Text and attributes are escaped for XML. XML 1.0 cannot carry most C0 control
//! characters at all, not even as character references, so those (which no
//! meaningful title or description holds) are written as U+FFFD; the Turtle and
//! JSON-LD documents keep them.

use std::fmt::Write as _;

use super::graph::{rdf, Graph, LiteralKind, Namespace, Node, Term};

pub(super) fn write(graph: &Graph) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rdf:RDF");
    let mut namespaces = graph.namespaces();
    if !namespaces.contains(&Namespace::Rdf) {
        namespaces.insert(0, Namespace::Rdf);
    }
    for ns in namespaces {
        let _ = write!(out, "\n    xmlns:{}=\"{}\"", ns.prefix(), ns.iri());
    }
    out.push_str(">\n");
    for description in graph.descriptions() {
        // The first class with a prefixed name names the element; the others stay
        // rdf:type properties.
        let element = description.types().find_map(|t| match t {
            Term::Node(Node::Iri(iri)) => Namespace::split(iri.as_str()).map(|s| (t, s)),
            _ => None,
        });
        let (element_type, element_name) = match element {
            Some((t, (ns, local))) => (Some(t), format!("{}:{local}", ns.prefix())),
            None => (None, "rdf:Description".to_owned()),
        };
        let _ = writeln!(
            out,
            "  <{element_name} {}>",
            node_attribute(description.subject, "about")
        );
        for (predicate, objects) in &description.properties {
            let name = predicate.prefixed();
            for object in objects {
                if *predicate == rdf::TYPE && Some(*object) == element_type {
                    continue;
                }
                match object {
                    Term::Node(n) => {
                        let _ = writeln!(out, "    <{name} {}/>", node_attribute(n, "resource"));
                    }
                    Term::Literal(literal) => {
                        let attribute = match &literal.kind {
                            LiteralKind::Plain => String::new(),
                            LiteralKind::Language(tag) => format!(" xml:lang=\"{tag}\""),
                            LiteralKind::Typed(datatype) => format!(
                                " rdf:datatype=\"{}\"",
                                escape_attribute(datatype.iri().as_str())
                            ),
                        };
                        let _ = writeln!(
                            out,
                            "    <{name}{attribute}>{}</{name}>",
                            escape_text(&literal.value)
                        );
                    }
                }
            }
        }
        let _ = writeln!(out, "  </{element_name}>");
    }
    out.push_str("</rdf:RDF>\n");
    out
}

/// `rdf:about="…"` (or `rdf:resource`) for an IRI, `rdf:nodeID="b1"` for a blank node.
fn node_attribute(node: &Node, iri_attribute: &str) -> String {
    match node {
        Node::Iri(iri) => format!("rdf:{iri_attribute}=\"{}\"", escape_attribute(iri.as_str())),
        Node::Blank(n) => format!("rdf:nodeID=\"b{n}\""),
    }
}

/// Whether XML 1.0 can carry the character at all.
fn allowed_in_xml(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // A bare CR would be read back as LF (XML end-of-line handling).
            '\r' => out.push_str("&#13;"),
            c if !allowed_in_xml(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn escape_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // Attribute values are whitespace-normalised unless written as references.
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if !allowed_in_xml(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}
