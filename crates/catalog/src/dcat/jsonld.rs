//! JSON-LD 1.1 in compacted form: a `@context` that declares the graph's prefixes and
//! a `@graph` of node objects, with prefixed names for properties and classes so the
//! document reads like the Turtle one. serde_json does the string escaping.

use serde_json::{json, Map, Value};

use super::graph::{rdf, Graph, Iri, LiteralKind, Namespace, Node, Term};

pub(super) fn write(graph: &Graph) -> Value {
    let mut context = Map::new();
    for ns in graph.namespaces() {
        context.insert(ns.prefix().to_owned(), json!(ns.iri()));
    }
    let mut nodes = Vec::new();
    for description in graph.descriptions() {
        let mut object = Map::new();
        object.insert("@id".to_owned(), json!(node_id(description.subject)));
        let types: Vec<Value> = description
            .types()
            .map(|t| match t {
                Term::Node(Node::Iri(iri)) => json!(compact(iri)),
                Term::Node(blank) => json!(node_id(blank)),
                // rdf:type with a literal object is never built; kept readable anyway.
                Term::Literal(l) => json!(l.value),
            })
            .collect();
        if !types.is_empty() {
            object.insert("@type".to_owned(), one_or_many(types));
        }
        for (predicate, objects) in &description.properties {
            if *predicate == rdf::TYPE {
                continue;
            }
            let values: Vec<Value> = objects.iter().map(|o| value(o)).collect();
            object.insert(predicate.prefixed(), one_or_many(values));
        }
        nodes.push(Value::Object(object));
    }
    json!({ "@context": context, "@graph": nodes })
}

fn one_or_many(mut values: Vec<Value>) -> Value {
    if values.len() == 1 {
        values.remove(0)
    } else {
        Value::Array(values)
    }
}

/// The IRI as a prefixed name where it has one. [`Iri`] only allows schemes that no
/// declared prefix shares, so a full IRI is never mistaken for a prefixed name.
fn compact(iri: &Iri) -> String {
    match Namespace::split(iri.as_str()) {
        Some((ns, local)) => format!("{}:{local}", ns.prefix()),
        None => iri.as_str().to_owned(),
    }
}

fn node_id(node: &Node) -> String {
    match node {
        Node::Iri(iri) => compact(iri),
        Node::Blank(n) => format!("_:b{n}"),
    }
}

fn value(term: &Term) -> Value {
    match term {
        Term::Node(node) => json!({ "@id": node_id(node) }),
        Term::Literal(literal) => match &literal.kind {
            LiteralKind::Plain => json!(literal.value),
            LiteralKind::Language(tag) => json!({ "@value": literal.value, "@language": tag }),
            LiteralKind::Typed(datatype) => {
                json!({ "@value": literal.value, "@type": datatype.prefixed() })
            }
        },
    }
}
