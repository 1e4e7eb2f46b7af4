"""Parses DCAT documents with rdflib and validates them with pySHACL against the
DCAT-AP 3 shapes; run through scripts/check-dcat, which provides the virtualenv.

Each file is read in the syntax its extension names (.jsonld, .ttl, .xml or .rdf).
A file fails when it does not parse, holds no dcat:Catalog or dcat:Dataset, or has a
result of severity sh:Violation; warnings and informational results are printed only.
With --isomorphic, the files must moreover all hold the same graph (blank nodes
matched up), which is how the three serialisations of one graph are checked to say
the same thing.

Before validation every IRI and blank node in the data is typed rdfs:Resource: that
is RDFS entailment rule rdfs4, true of any RDF graph. It is needed because the
DCAT-AP 3.0.0 shapes range dcat:accessURL, dcat:downloadURL, dct:relation and
dct:isReferencedBy over rdfs:Resource with sh:class (SEMICeu/DCAT-AP issue 412, fixed
in 3.0.1). No other inference is applied: every other class a shape asks for must be
stated in the document itself.
"""

import argparse
import pathlib
import sys

import pyshacl
import rdflib
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, RDF, RDFS, SH

SYNTAXES = {".jsonld": "json-ld", ".ttl": "turtle", ".xml": "xml", ".rdf": "xml"}


def parse(path):
    syntax = SYNTAXES.get(path.suffix.lower())
    if syntax is None:
        raise ValueError(f"unknown extension {path.suffix!r} (use .jsonld, .ttl, .xml or .rdf)")
    graph = rdflib.Graph()
    graph.parse(path, format=syntax)
    return graph


def with_rdfs4(graph):
    entailed = rdflib.Graph()
    for triple in graph:
        entailed.add(triple)
    nodes = set(graph.subjects()) | {o for o in graph.objects() if not isinstance(o, rdflib.Literal)}
    for node in nodes:
        entailed.add((node, RDF.type, RDFS.Resource))
    return entailed


def validate(path, graph, shapes):
    conforms, results, text = pyshacl.validate(
        with_rdfs4(graph),
        shacl_graph=shapes,
        inference="none",
        abort_on_first=False,
        allow_warnings=True,
        meta_shacl=False,
    )
    violations = 0
    others = 0
    for result in results.subjects(RDF.type, SH.ValidationResult):
        if results.value(result, SH.resultSeverity) == SH.Violation:
            violations += 1
        else:
            others += 1
    if violations or others:
        print(f"--- {path}: {violations} violation(s), {others} other result(s)")
        print(text)
    return violations


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", required=True, action="append", type=pathlib.Path)
    parser.add_argument("--isomorphic", action="store_true")
    parser.add_argument("files", nargs="+", type=pathlib.Path)
    args = parser.parse_args()

    shapes = rdflib.Graph()
    for path in args.shapes:
        shapes.parse(path, format="turtle")

    failed = False
    graphs = []
    for path in args.files:
        try:
            graph = parse(path)
        except Exception as error:  # any parser error is a failed file, reported
            print(f"FAIL {path}: does not parse: {error}")
            failed = True
            continue
        graphs.append((path, graph))
        described = set(graph.subjects(RDF.type, DCAT.Catalog)) | set(graph.subjects(RDF.type, DCAT.Dataset))
        if not described:
            print(f"FAIL {path}: holds no dcat:Catalog and no dcat:Dataset")
            failed = True
            continue
        violations = validate(path, graph, shapes)
        if violations:
            print(f"FAIL {path}: {violations} SHACL violation(s)")
            failed = True
        else:
            print(f"ok   {path}: {len(graph)} triples, conforms to DCAT-AP 3")

    if args.isomorphic and len(graphs) > 1:
        first_path, first = graphs[0]
        for path, graph in graphs[1:]:
            if isomorphic(first, graph):
                print(f"ok   {path} holds the same graph as {first_path}")
            else:
                only_first = len(set(first) - set(graph))
                print(f"FAIL {path} differs from {first_path} ({len(first)} vs {len(graph)} triples, {only_first} not shared)")
                failed = True

    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
