//! Parser of the NGSI-LD `q` language (ETSI GS CIM 009 clause 4.9), and the small
//! cursor and boolean-expression machinery that the `scopeQ` and type-expression
//! parsers share with it.
//!
//! A `q` expression is a list of terms joined by `;` (and) and `|` (or), `;` binding
//! tighter than `|`, with parentheses for grouping. A term is an attribute path alone
//! (the attribute exists) or `path OP value` with `OP` one of `==`, `!=`, `>`, `>=`,
//! `<`, `<=`, `~=`, `!~=`. Trees come out flattened: `a;b;c` is one `And` of three
//! terms and a lone term is a bare [`QExpr::Term`].
//!
//! Paths are `attr`, `attr.sub.sub` (sub-attributes or meta-data members) and
//! `attr[key][key]` (keys into the attribute's JSON value), or both. An attribute
//! name that starts with `http://` or `https://` is a full IRI and runs up to the
//! operator, a `[`, or the end of the term: dots inside it belong to the IRI, so such
//! an attribute cannot be followed by `.sub` (use the short name or the IRI of the
//! sub-attribute in a separate term instead).
//!
//! Values follow Orion-LD's leniency: `"quoted"` is text (with `\"` and `\\`
//! escapes), numbers are numbers, `true`/`false` are booleans, unquoted ISO 8601
//! date-times, dates and times are [`QValue::DateTime`], other unquoted tokens with a
//! `:` are URIs and the rest are text. `a,b,c` (lists) and `low..high` (ranges) are
//! only allowed with `==` and `!=`; the value of `~=` and `!~=` is a regular
//! expression, checked to compile. An unquoted regular expression runs to the next
//! `;`, `|` or `)` outside its own parentheses and brackets; quote it if it has to
//! contain them at the top level.
//!
//! The spec allows no whitespace between tokens, and neither does this parser: every
//! error says `invalid q at position N: <what>`, with `N` the 0-based character
//! offset into the (percent-decoded) text.
use std::fmt;

use super::{AttrPath, QExpr, QOp, QTerm, QValue};
use crate::NgsiError;

/// Parses a `q` expression as given in the query string (already percent-decoded).
pub fn parse(text: &str) -> Result<QExpr, NgsiError> {
    let mut cursor = Cursor::new(text, "q");
    parse_logical(&mut cursor, |c| c == '|', &mut parse_term)
}

/// How deep parentheses may nest; deeper input is refused rather than risking the
/// stack on hostile query strings.
pub(crate) const MAX_NESTING: usize = 64;

/// A position in the text being parsed, with errors that name the language and the
/// character offset.
pub(crate) struct Cursor<'a> {
    text: &'a str,
    /// Byte offset; always on a character boundary.
    pos: usize,
    language: &'static str,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(text: &'a str, language: &'static str) -> Self {
        Cursor {
            text,
            pos: 0,
            language,
        }
    }

    /// The unparsed remainder.
    pub(crate) fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or("")
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The text from byte offset `start` (an earlier position) up to here.
    pub(crate) fn text_since(&self, start: usize) -> &'a str {
        self.text.get(start..self.pos).unwrap_or("")
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub(crate) fn starts_with(&self, s: &str) -> bool {
        self.rest().starts_with(s)
    }

    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Consumes `c` if it comes next.
    pub(crate) fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// Consumes `s` if it comes next.
    pub(crate) fn eat_str(&mut self, s: &str) -> bool {
        if self.starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// Consumes characters while `keep` holds and returns them.
    pub(crate) fn take_while(&mut self, mut keep: impl FnMut(char) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !keep(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        self.text.get(start..self.pos).unwrap_or("")
    }

    /// An error at byte offset `at`, reported as a character offset because that is
    /// what a client counting along its query string sees.
    pub(crate) fn error_at(&self, at: usize, what: impl fmt::Display) -> NgsiError {
        let chars = self.text.get(..at).map_or(0, |s| s.chars().count());
        NgsiError::bad_request_data(format!(
            "invalid {} at position {}: {}",
            self.language, chars, what
        ))
    }

    pub(crate) fn error(&self, what: impl fmt::Display) -> NgsiError {
        self.error_at(self.pos, what)
    }

    /// The error for whatever unexpected character comes next (or the end).
    pub(crate) fn unexpected(&self, expected: &str) -> NgsiError {
        match self.peek() {
            None => self.error(format!("unexpected end, expected {expected}")),
            Some(c) if c.is_whitespace() => self.error("whitespace is not allowed"),
            Some(c) => self.error(format!("unexpected {c:?}, expected {expected}")),
        }
    }
}

/// A syntax tree with n-ary `And` and `Or` nodes, so the shared parser can build and
/// flatten it.
pub(crate) trait BoolTree: Sized {
    fn and(parts: Vec<Self>) -> Self;
    fn or(parts: Vec<Self>) -> Self;
    /// The children if this is an `And`, else the tree itself.
    fn into_and_parts(self) -> Result<Vec<Self>, Self>;
    /// The children if this is an `Or`, else the tree itself.
    fn into_or_parts(self) -> Result<Vec<Self>, Self>;
}

impl BoolTree for QExpr {
    fn and(parts: Vec<Self>) -> Self {
        QExpr::And(parts)
    }
    fn or(parts: Vec<Self>) -> Self {
        QExpr::Or(parts)
    }
    fn into_and_parts(self) -> Result<Vec<Self>, Self> {
        match self {
            QExpr::And(parts) => Ok(parts),
            other => Err(other),
        }
    }
    fn into_or_parts(self) -> Result<Vec<Self>, Self> {
        match self {
            QExpr::Or(parts) => Ok(parts),
            other => Err(other),
        }
    }
}

/// Property-test trees of a [`BoolTree`], for the parsers built on it.
#[cfg(test)]
pub(crate) mod tree_strategies {
    use super::BoolTree;
    use proptest::prelude::*;

    /// Trees of `leaf`s in the shape the parser produces: `And` and `Or` nodes of two
    /// or more parts, flattened (no `And` directly inside an `And`, nor `Or` in `Or`).
    pub(crate) fn flattened<T>(leaf: impl Strategy<Value = T> + 'static) -> impl Strategy<Value = T>
    where
        T: BoolTree + Clone + std::fmt::Debug + 'static,
    {
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..4).prop_map(|parts| joined(
                    parts,
                    T::and,
                    T::into_and_parts
                )),
                prop::collection::vec(inner, 2..4).prop_map(|parts| joined(
                    parts,
                    T::or,
                    T::into_or_parts
                )),
            ]
        })
    }

    /// `make` of `parts`, the parts that are themselves such a node spliced in.
    fn joined<T>(parts: Vec<T>, make: fn(Vec<T>) -> T, split: fn(T) -> Result<Vec<T>, T>) -> T {
        let mut flat = Vec::new();
        for part in parts {
            match split(part) {
                Ok(inner) => flat.extend(inner),
                Err(single) => flat.push(single),
            }
        }
        make(flat)
    }
}

/// Parses the whole of the cursor's text as terms joined by `;` (and) and the
/// characters for which `is_or` holds (or), with parentheses. `term` is called at
/// the start of each term and must stop before `;`, an or-character, `)` or the end.
pub(crate) fn parse_logical<T: BoolTree>(
    cursor: &mut Cursor<'_>,
    is_or: fn(char) -> bool,
    term: &mut dyn FnMut(&mut Cursor<'_>) -> Result<T, NgsiError>,
) -> Result<T, NgsiError> {
    if cursor.rest().is_empty() {
        return Err(cursor.error("the expression is empty"));
    }
    let tree = parse_or(cursor, is_or, term, 0)?;
    match cursor.peek() {
        None => Ok(tree),
        Some(')') => Err(cursor.error("unbalanced ')'")),
        Some(_) => Err(cursor.unexpected("';', '|' or the end")),
    }
}

fn parse_or<T: BoolTree>(
    cursor: &mut Cursor<'_>,
    is_or: fn(char) -> bool,
    term: &mut dyn FnMut(&mut Cursor<'_>) -> Result<T, NgsiError>,
    depth: usize,
) -> Result<T, NgsiError> {
    let mut parts = Vec::new();
    loop {
        let part = parse_and(cursor, is_or, term, depth)?;
        match part.into_or_parts() {
            Ok(inner) => parts.extend(inner),
            Err(single) => parts.push(single),
        }
        match cursor.peek() {
            Some(c) if is_or(c) => {
                cursor.bump();
            }
            _ => break,
        }
    }
    Ok(single_or(parts, T::or))
}

fn parse_and<T: BoolTree>(
    cursor: &mut Cursor<'_>,
    is_or: fn(char) -> bool,
    term: &mut dyn FnMut(&mut Cursor<'_>) -> Result<T, NgsiError>,
    depth: usize,
) -> Result<T, NgsiError> {
    let mut parts = Vec::new();
    loop {
        let part = parse_operand(cursor, is_or, term, depth)?;
        match part.into_and_parts() {
            Ok(inner) => parts.extend(inner),
            Err(single) => parts.push(single),
        }
        if !cursor.eat(';') {
            break;
        }
    }
    Ok(single_or(parts, T::and))
}

/// A parenthesised group or a single term.
fn parse_operand<T: BoolTree>(
    cursor: &mut Cursor<'_>,
    is_or: fn(char) -> bool,
    term: &mut dyn FnMut(&mut Cursor<'_>) -> Result<T, NgsiError>,
    depth: usize,
) -> Result<T, NgsiError> {
    let open = cursor.pos();
    if cursor.eat('(') {
        if depth >= MAX_NESTING {
            return Err(cursor.error_at(
                open,
                format!("parentheses nest deeper than {MAX_NESTING} levels"),
            ));
        }
        let inner = parse_or(cursor, is_or, term, depth + 1)?;
        return match cursor.peek() {
            Some(')') => {
                cursor.bump();
                Ok(inner)
            }
            None => Err(cursor.error_at(open, "'(' is never closed")),
            Some(_) => Err(cursor.unexpected("';', '|' or ')'")),
        };
    }
    match cursor.peek() {
        None => Err(cursor.error("missing term at the end")),
        Some(c) if c == ';' || c == ')' || is_or(c) => {
            Err(cursor.error(format!("missing term before {c:?}")))
        }
        Some(c) if c.is_whitespace() => Err(cursor.error("whitespace is not allowed")),
        Some(_) => term(cursor),
    }
}

/// `parts` as one node, or the lone part itself.
fn single_or<T>(mut parts: Vec<T>, combine: fn(Vec<T>) -> T) -> T {
    if parts.len() == 1 {
        if let Some(only) = parts.pop() {
            return only;
        }
    }
    combine(parts)
}

/// Whether `c` may appear in a short attribute or sub-attribute name. The spec allows
/// letters, digits and `_`; `-` and `:` (compact IRIs such as `schema:name`) and
/// non-ASCII letters are accepted as Orion-LD does.
fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-' || c == ':'
}

/// Characters that start an operator and so end an attribute path.
fn is_operator_start(c: char) -> bool {
    matches!(c, '=' | '!' | '<' | '>' | '~')
}

/// Whether an attribute name is written as a full IRI (see the module docs).
fn is_iri_name(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

fn parse_term(cursor: &mut Cursor<'_>) -> Result<QExpr, NgsiError> {
    let path = parse_path(cursor)?;
    let comparison = match cursor.peek() {
        Some(c) if is_operator_start(c) => {
            let op = parse_op(cursor)?;
            Some((op, parse_value(cursor, op)?))
        }
        None | Some(';' | '|' | ')') => None,
        Some(_) => return Err(cursor.unexpected("an operator, ';', '|' or ')'")),
    };
    Ok(QExpr::Term(QTerm { path, comparison }))
}

fn parse_path(cursor: &mut Cursor<'_>) -> Result<AttrPath, NgsiError> {
    let start = cursor.pos();
    let attr = if is_iri_name(cursor.rest()) {
        cursor.take_while(|c| {
            !(is_operator_start(c)
                || matches!(c, '[' | ';' | '|' | '(' | ')' | '"')
                || c.is_whitespace())
        })
    } else {
        cursor.take_while(is_name_char)
    };
    if attr.is_empty() {
        return Err(cursor.unexpected("an attribute name"));
    }
    let mut sub_attrs = Vec::new();
    if !is_iri_name(attr) {
        while cursor.eat('.') {
            let sub = cursor.take_while(is_name_char);
            if sub.is_empty() {
                return Err(cursor.unexpected("a sub-attribute name after '.'"));
            }
            sub_attrs.push(sub.to_string());
        }
    }
    let mut trailing = Vec::new();
    while cursor.peek() == Some('[') {
        let open = cursor.pos();
        cursor.bump();
        let key = cursor.take_while(|c| c != '[' && c != ']' && !c.is_whitespace());
        if key.is_empty() {
            return Err(cursor.unexpected("a key inside '[...]'"));
        }
        if !cursor.eat(']') {
            return match cursor.peek() {
                None => Err(cursor.error_at(open, "'[' is never closed")),
                Some(_) => Err(cursor.unexpected("']'")),
            };
        }
        trailing.push(key.to_string());
    }
    debug_assert!(cursor.pos() > start);
    Ok(AttrPath {
        attr: attr.to_string(),
        sub_attrs,
        trailing,
    })
}

fn parse_op(cursor: &mut Cursor<'_>) -> Result<QOp, NgsiError> {
    let start = cursor.pos();
    // Longest operators first, so `<=` is not read as `<` followed by `=`.
    const OPS: &[(&str, QOp)] = &[
        ("!~=", QOp::NotMatches),
        ("==", QOp::Eq),
        ("!=", QOp::Ne),
        (">=", QOp::Ge),
        ("<=", QOp::Le),
        ("~=", QOp::Matches),
        (">", QOp::Gt),
        ("<", QOp::Lt),
    ];
    for (text, op) in OPS {
        if cursor.eat_str(text) {
            return Ok(*op);
        }
    }
    let written = cursor.take_while(is_operator_start);
    Err(cursor.error_at(
        start,
        format!("unknown operator {written:?}; expected one of ==, !=, >, >=, <, <=, ~=, !~="),
    ))
}

fn parse_value(cursor: &mut Cursor<'_>, op: QOp) -> Result<QValue, NgsiError> {
    if matches!(op, QOp::Matches | QOp::NotMatches) {
        return parse_regex(cursor);
    }
    let start = cursor.pos();
    if let Some(c) = cursor.peek() {
        if is_operator_start(c) {
            let written = cursor.take_while(is_operator_start);
            return Err(cursor.error_at(start, format!("unknown operator ending in {written:?}")));
        }
    }
    let first = parse_atom(cursor)?;
    let list_or_range = matches!(op, QOp::Eq | QOp::Ne);
    if cursor.starts_with("..") {
        if !list_or_range {
            return Err(cursor.error("a range is only allowed with == and !="));
        }
        cursor.eat_str("..");
        let high_at = cursor.pos();
        let high = parse_atom(cursor)?;
        for (value, at) in [(&first, start), (&high, high_at)] {
            if matches!(value, QValue::Bool(_)) {
                return Err(cursor.error_at(at, "a range needs numbers, text or date-times"));
            }
        }
        return Ok(QValue::Range(Box::new(first), Box::new(high)));
    }
    if cursor.peek() == Some(',') {
        if !list_or_range {
            return Err(cursor.error("a list of values is only allowed with == and !="));
        }
        let mut items = vec![first];
        while cursor.eat(',') {
            items.push(parse_atom(cursor)?);
        }
        return Ok(QValue::List(items));
    }
    Ok(first)
}

/// Characters that end an unquoted value.
fn ends_unquoted(c: char) -> bool {
    matches!(c, ';' | '|' | '(' | ')' | '"' | ',') || c.is_whitespace()
}

/// One single value: a quoted string or an unquoted token, classified.
fn parse_atom(cursor: &mut Cursor<'_>) -> Result<QValue, NgsiError> {
    if cursor.peek() == Some('"') {
        return parse_quoted(cursor).map(QValue::Text);
    }
    let start = cursor.pos();
    let rest = cursor.rest();
    // `..` separates the ends of a range, so it ends a token too.
    let mut len = 0;
    for (i, c) in rest.char_indices() {
        if ends_unquoted(c) || (c == '.' && rest.get(i + 1..).is_some_and(|r| r.starts_with('.'))) {
            break;
        }
        len = i + c.len_utf8();
    }
    let token = rest.get(..len).unwrap_or("");
    if token.is_empty() {
        return Err(cursor.unexpected("a value"));
    }
    cursor.eat_str(token);
    debug_assert!(cursor.pos() > start);
    Ok(classify(token))
}

/// The value an unquoted token stands for (see the module docs for the order).
fn classify(token: &str) -> QValue {
    match token {
        "true" => return QValue::Bool(true),
        "false" => return QValue::Bool(false),
        _ => {}
    }
    if let Some(n) = parse_number(token) {
        return QValue::Number(n);
    }
    if is_date_time(token) {
        return QValue::DateTime(token.to_string());
    }
    if token.contains(':') {
        return QValue::Uri(token.to_string());
    }
    QValue::Text(token.to_string())
}

/// A JSON-style number: `-?digits(.digits)?([eE][+-]?digits)?`. Rust's own float
/// parser alone would also take `inf`, `NaN` and `+1`, which are not numbers here.
fn parse_number(token: &str) -> Option<f64> {
    let bytes = token.as_bytes();
    let mut i = usize::from(bytes.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let from = *i;
        while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > from
    };
    if !digits(&mut i) {
        return None;
    }
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return None;
        }
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return None;
        }
    }
    if i != bytes.len() {
        return None;
    }
    token.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Whether `token` is an ISO 8601 date-time, date or time as NGSI-LD writes them.
fn is_date_time(token: &str) -> bool {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
    if DateTime::parse_from_rfc3339(token).is_ok()
        || NaiveDateTime::parse_from_str(token, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
        || NaiveDateTime::parse_from_str(token, "%Y-%m-%dT%H:%M").is_ok()
        || NaiveDate::parse_from_str(token, "%Y-%m-%d").is_ok()
    {
        return true;
    }
    let time = token
        .strip_suffix('Z')
        .or_else(|| strip_offset(token))
        .unwrap_or(token);
    NaiveTime::parse_from_str(time, "%H:%M:%S%.f").is_ok()
        || NaiveTime::parse_from_str(time, "%H:%M").is_ok()
}

/// The time without a trailing `+hh:mm` / `-hh:mm` offset, if it has one.
fn strip_offset(time: &str) -> Option<&str> {
    let split = time.len().checked_sub(6)?;
    let (clock, offset) = (time.get(..split)?, time.get(split..)?);
    let offset_ok = chrono::NaiveTime::parse_from_str(offset.get(1..)?, "%H:%M").is_ok()
        && matches!(offset.as_bytes().first(), Some(b'+' | b'-'));
    offset_ok.then_some(clock)
}

/// A `"..."` string; `\"` and `\\` are unescaped, any other backslash is kept so
/// regular expressions such as `"\d+"` survive.
fn parse_quoted(cursor: &mut Cursor<'_>) -> Result<String, NgsiError> {
    let open = cursor.pos();
    cursor.bump();
    let mut text = String::new();
    loop {
        match cursor.bump() {
            None => return Err(cursor.error_at(open, "the quoted string is never closed")),
            Some('"') => return Ok(text),
            Some('\\') => match cursor.peek() {
                Some(c @ ('"' | '\\')) => {
                    cursor.bump();
                    text.push(c);
                }
                _ => text.push('\\'),
            },
            Some(c) => text.push(c),
        }
    }
}

/// The pattern of `~=` / `!~=`, quoted or not (see the module docs), checked to
/// compile.
fn parse_regex(cursor: &mut Cursor<'_>) -> Result<QValue, NgsiError> {
    let start = cursor.pos();
    let pattern = if cursor.peek() == Some('"') {
        parse_quoted(cursor)?
    } else {
        scan_unquoted_regex(cursor).to_string()
    };
    if pattern.is_empty() {
        return Err(cursor.error_at(start, "missing regular expression"));
    }
    match regex::Regex::new(&pattern) {
        Ok(_) => Ok(QValue::Regex(pattern)),
        Err(e) => Err(cursor.error_at(
            start,
            format!("invalid regular expression: {}", first_line(&e.to_string())),
        )),
    }
}

/// Reads an unquoted regular expression: up to `;`, `|` or `)` that are not inside
/// the pattern's own groups or classes, or whitespace (which then is an error).
fn scan_unquoted_regex<'a>(cursor: &mut Cursor<'a>) -> &'a str {
    let mut groups = 0usize;
    let mut in_class = false;
    let mut escaped = false;
    cursor.take_while(|c| {
        if escaped {
            escaped = false;
            return !c.is_whitespace();
        }
        match c {
            _ if c.is_whitespace() => false,
            '\\' => {
                escaped = true;
                true
            }
            '[' if !in_class => {
                in_class = true;
                true
            }
            ']' if in_class => {
                in_class = false;
                true
            }
            _ if in_class => true,
            '(' => {
                groups += 1;
                true
            }
            ')' if groups > 0 => {
                groups -= 1;
                true
            }
            ')' | ';' => false,
            '|' => groups > 0,
            _ => true,
        }
    })
}

/// The regex crate's errors span several lines with a caret diagram; the summary is
/// on the last line.
fn first_line(message: &str) -> &str {
    message
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(message)
        .trim()
}

/// Writes `parts` separated by `sep`, parenthesising those for which `needs_parens`
/// holds (an `Or` inside an `And`, or a nested node of the same kind).
pub(crate) fn write_joined<T: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    parts: &[T],
    sep: &str,
    needs_parens: impl Fn(&T) -> bool,
) -> fmt::Result {
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        if needs_parens(part) {
            write!(f, "({part})")?;
        } else {
            write!(f, "{part}")?;
        }
    }
    Ok(())
}

/// Writes the expression back in `q` syntax, so that parsing the output gives the
/// same tree again (text values are always written quoted).
impl fmt::Display for QExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QExpr::Term(term) => write!(f, "{term}"),
            QExpr::And(parts) => write_joined(f, parts, ";", |p| !matches!(p, QExpr::Term(_))),
            QExpr::Or(parts) => write_joined(f, parts, "|", |p| matches!(p, QExpr::Or(_))),
        }
    }
}

impl fmt::Display for QTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        if let Some((op, value)) = &self.comparison {
            write!(f, "{op}{value}")?;
        }
        Ok(())
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.attr)?;
        for sub in &self.sub_attrs {
            write!(f, ".{sub}")?;
        }
        for key in &self.trailing {
            write!(f, "[{key}]")?;
        }
        Ok(())
    }
}

impl fmt::Display for QOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QOp::Eq => "==",
            QOp::Ne => "!=",
            QOp::Gt => ">",
            QOp::Ge => ">=",
            QOp::Lt => "<",
            QOp::Le => "<=",
            QOp::Matches => "~=",
            QOp::NotMatches => "!~=",
        })
    }
}

impl fmt::Display for QValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QValue::Number(n) => write!(f, "{n}"),
            QValue::Text(s) | QValue::Regex(s) => write_quoted(f, s),
            QValue::Bool(b) => write!(f, "{b}"),
            QValue::DateTime(s) | QValue::Uri(s) => f.write_str(s),
            QValue::List(items) => write_joined(f, items, ",", |_| false),
            QValue::Range(low, high) => write!(f, "{low}..{high}"),
        }
    }
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        if c == '"' || c == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(attr: &str) -> AttrPath {
        AttrPath {
            attr: attr.to_string(),
            sub_attrs: Vec::new(),
            trailing: Vec::new(),
        }
    }

    fn exists(attr: &str) -> QExpr {
        QExpr::Term(QTerm {
            path: path(attr),
            comparison: None,
        })
    }

    fn cmp(attr: &str, op: QOp, value: QValue) -> QExpr {
        QExpr::Term(QTerm {
            path: path(attr),
            comparison: Some((op, value)),
        })
    }

    fn value_of(text: &str) -> QValue {
        match parse(text) {
            Ok(QExpr::Term(QTerm {
                comparison: Some((_, value)),
                ..
            })) => value,
            other => panic!("{text}: not a comparison: {other:?}"),
        }
    }

    fn error_of(text: &str) -> String {
        match parse(text) {
            Err(e) => e.detail,
            Ok(tree) => panic!("{text}: parsed as {tree:?}"),
        }
    }

    #[test]
    fn a_lone_term_is_a_term() {
        assert_eq!(parse("speed").unwrap(), exists("speed"));
        assert_eq!(
            parse("speed>50").unwrap(),
            cmp("speed", QOp::Gt, QValue::Number(50.0))
        );
    }

    #[test]
    fn every_operator() {
        for (text, op) in [
            ("a==1", QOp::Eq),
            ("a!=1", QOp::Ne),
            ("a>1", QOp::Gt),
            ("a>=1", QOp::Ge),
            ("a<1", QOp::Lt),
            ("a<=1", QOp::Le),
            ("a~=1", QOp::Matches),
            ("a!~=1", QOp::NotMatches),
        ] {
            match parse(text).unwrap() {
                QExpr::Term(QTerm {
                    comparison: Some((got, _)),
                    ..
                }) => assert_eq!(got, op, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let a = || exists("a");
        let b = || exists("b");
        let c = || exists("c");
        assert_eq!(
            parse("a;b|c").unwrap(),
            QExpr::Or(vec![QExpr::And(vec![a(), b()]), c()])
        );
        assert_eq!(
            parse("a|b;c").unwrap(),
            QExpr::Or(vec![a(), QExpr::And(vec![b(), c()])])
        );
        assert_eq!(
            parse("(a|b);c").unwrap(),
            QExpr::And(vec![QExpr::Or(vec![a(), b()]), c()])
        );
    }

    #[test]
    fn trees_are_flattened() {
        let abc = vec![exists("a"), exists("b"), exists("c")];
        assert_eq!(parse("a;b;c").unwrap(), QExpr::And(abc.clone()));
        assert_eq!(parse("a|(b|c)").unwrap(), QExpr::Or(abc.clone()));
        assert_eq!(parse("(a;b);c").unwrap(), QExpr::And(abc));
        assert_eq!(parse("((a))").unwrap(), exists("a"));
    }

    #[test]
    fn paths_with_sub_attributes_and_keys() {
        let QExpr::Term(term) = parse("address.observedAt[city][ward]==\"Chuo\"").unwrap() else {
            panic!("not a term");
        };
        assert_eq!(term.path.attr, "address");
        assert_eq!(term.path.sub_attrs, vec!["observedAt"]);
        assert_eq!(term.path.trailing, vec!["city", "ward"]);
        let QExpr::Term(term) = parse("a.b.c").unwrap() else {
            panic!("not a term");
        };
        assert_eq!(term.path.sub_attrs, vec!["b", "c"]);
        assert!(term.path.trailing.is_empty());
    }

    #[test]
    fn iri_attribute_names_keep_their_dots() {
        let QExpr::Term(term) = parse("https://example.org/v1.0/speed[max]>=3.5").unwrap() else {
            panic!("not a term");
        };
        assert_eq!(term.path.attr, "https://example.org/v1.0/speed");
        assert!(term.path.sub_attrs.is_empty());
        assert_eq!(term.path.trailing, vec!["max"]);
        assert_eq!(term.comparison, Some((QOp::Ge, QValue::Number(3.5))));
        assert_eq!(
            parse("http://a.b/c;d").unwrap(),
            QExpr::And(vec![exists("http://a.b/c"), exists("d")])
        );
        // Compact IRIs are ordinary names.
        assert_eq!(parse("schema:name").unwrap(), exists("schema:name"));
    }

    #[test]
    fn numbers() {
        assert_eq!(value_of("a==12"), QValue::Number(12.0));
        assert_eq!(value_of("a==-12.5"), QValue::Number(-12.5));
        assert_eq!(value_of("a==1.5e3"), QValue::Number(1500.0));
        assert_eq!(value_of("a==2E-2"), QValue::Number(0.02));
        // Not numbers in the JSON sense, so text.
        assert_eq!(value_of("a==inf"), QValue::Text("inf".into()));
        assert_eq!(value_of("a==1."), QValue::Text("1.".into()));
        assert_eq!(value_of("a==+1"), QValue::Text("+1".into()));
    }

    #[test]
    fn quoted_text_with_escapes() {
        assert_eq!(
            value_of(r#"a=="say \"hi\" \\ ;|(),""#),
            QValue::Text(r#"say "hi" \ ;|(),"#.into())
        );
        assert_eq!(value_of(r#"a=="""#), QValue::Text(String::new()));
        assert_eq!(value_of(r#"a=="東京 都""#), QValue::Text("東京 都".into()));
    }

    #[test]
    fn booleans_dates_uris_and_bare_text() {
        assert_eq!(value_of("a==true"), QValue::Bool(true));
        assert_eq!(value_of("a!=false"), QValue::Bool(false));
        for dt in [
            "2018-12-04T12:00:00Z",
            "2018-12-04T12:00:00.123+09:00",
            "2018-12-04T12:00:00",
            "2018-12-04",
            "12:00:00Z",
            "12:00:00",
        ] {
            assert_eq!(
                value_of(&format!("a>{dt}")),
                QValue::DateTime(dt.into()),
                "{dt}"
            );
        }
        assert_eq!(
            value_of("a==urn:ngsi-ld:Vehicle:A1"),
            QValue::Uri("urn:ngsi-ld:Vehicle:A1".into())
        );
        assert_eq!(value_of("a==green"), QValue::Text("green".into()));
        assert_eq!(value_of("a==2018-13-45"), QValue::Text("2018-13-45".into()));
    }

    #[test]
    fn lists_and_ranges() {
        assert_eq!(
            value_of(r#"a==1,"two",urn:x:3"#),
            QValue::List(vec![
                QValue::Number(1.0),
                QValue::Text("two".into()),
                QValue::Uri("urn:x:3".into())
            ])
        );
        assert_eq!(
            value_of("a==1.5..10"),
            QValue::Range(
                Box::new(QValue::Number(1.5)),
                Box::new(QValue::Number(10.0))
            )
        );
        assert_eq!(
            value_of("a!=2018-01-01..2018-12-31T23:59:59Z"),
            QValue::Range(
                Box::new(QValue::DateTime("2018-01-01".into())),
                Box::new(QValue::DateTime("2018-12-31T23:59:59Z".into()))
            )
        );
        assert_eq!(
            value_of(r#"a=="a".."m""#),
            QValue::Range(
                Box::new(QValue::Text("a".into())),
                Box::new(QValue::Text("m".into()))
            )
        );
    }

    #[test]
    fn regular_expressions() {
        assert_eq!(value_of("name~=^Tok.*"), QValue::Regex("^Tok.*".into()));
        assert_eq!(value_of(r#"name~="\d+;x""#), QValue::Regex(r"\d+;x".into()));
        assert_eq!(
            value_of("name!~=(?i)(a|b)"),
            QValue::Regex("(?i)(a|b)".into())
        );
        assert_eq!(
            parse("name~=[;|]x;b").unwrap(),
            QExpr::And(vec![
                cmp("name", QOp::Matches, QValue::Regex("[;|]x".into())),
                exists("b")
            ])
        );
        assert_eq!(
            parse("(name~=a|b)").unwrap(),
            QExpr::Or(vec![
                cmp("name", QOp::Matches, QValue::Regex("a".into())),
                exists("b")
            ])
        );
    }

    #[test]
    fn errors_name_the_position_and_the_problem() {
        for (text, expected) in [
            ("", "invalid q at position 0: the expression is empty"),
            ("a;", "invalid q at position 2: missing term at the end"),
            (";a", "invalid q at position 0: missing term before ';'"),
            ("a||b", "invalid q at position 2: missing term before '|'"),
            ("(a;b", "invalid q at position 0: '(' is never closed"),
            ("a;b)", "invalid q at position 3: unbalanced ')'"),
            ("()", "invalid q at position 1: missing term before ')'"),
            (
                "a==",
                "invalid q at position 3: unexpected end, expected a value",
            ),
            (
                "a==1;b>",
                "invalid q at position 7: unexpected end, expected a value",
            ),
            ("a=1", "invalid q at position 1: unknown operator \"=\""),
            (
                "a===1",
                "invalid q at position 3: unknown operator ending in \"=\"",
            ),
            ("a!1", "invalid q at position 1: unknown operator \"!\""),
            (
                "a == 1",
                "invalid q at position 1: whitespace is not allowed",
            ),
            (
                "a==1 ",
                "invalid q at position 4: whitespace is not allowed",
            ),
            (" a", "invalid q at position 0: whitespace is not allowed"),
            ("a==1)b", "invalid q at position 4: unbalanced ')'"),
            (
                "a==\"x",
                "invalid q at position 3: the quoted string is never closed",
            ),
            ("a==\"x\"y", "invalid q at position 6: unexpected 'y'"),
            (
                "a.==1",
                "invalid q at position 2: unexpected '=', expected a sub-attribute",
            ),
            (
                "a[]",
                "invalid q at position 2: unexpected ']', expected a key",
            ),
            ("a[b", "invalid q at position 1: '[' is never closed"),
            (
                "a>1,2",
                "invalid q at position 3: a list of values is only allowed",
            ),
            (
                "a<=1..2",
                "invalid q at position 4: a range is only allowed",
            ),
            ("a==1..true", "invalid q at position 6: a range needs"),
            ("a==1..2,3", "invalid q at position 7: unexpected ','"),
            ("a~=", "invalid q at position 3: missing regular expression"),
            (
                "a~=(x",
                "invalid q at position 3: invalid regular expression",
            ),
            (
                "東京==1 ",
                "invalid q at position 5: whitespace is not allowed",
            ),
            ("a(b)", "invalid q at position 1: unexpected '('"),
        ] {
            let detail = error_of(text);
            assert!(
                detail.starts_with(expected),
                "{text:?}: got {detail:?}, want {expected:?}"
            );
        }
    }

    #[test]
    fn errors_are_bad_request_data() {
        let err = parse("a==").unwrap_err();
        assert_eq!(err.problem, crate::ProblemType::BadRequestData);
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = format!("{}a{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(error_of(&deep).contains("nest deeper than"));
        let fine = format!("{}a{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert_eq!(parse(&fine).unwrap(), exists("a"));
    }

    #[test]
    fn display_writes_parsable_q() {
        let text = r#"(a==1|b.c[d]!="x\"y")|e;f~="\\d"|g==1,2|h==2018-01-01..2019-01-01"#;
        let tree = parse(text).unwrap();
        assert_eq!(parse(&tree.to_string()).unwrap(), tree);
        assert_eq!(
            parse("(a|b);c").unwrap().to_string(),
            "(a|b);c",
            "an or inside an and keeps its parentheses"
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn name() -> impl Strategy<Value = String> {
            prop_oneof![
                "[A-Za-z_][A-Za-z0-9_:-]{0,8}",
                "[ぁ-ん]{1,3}",
                "https://example\\.org/[a-z.]{1,6}",
            ]
        }

        fn attr_path() -> impl Strategy<Value = AttrPath> {
            (
                name(),
                prop::collection::vec("[A-Za-z_][A-Za-z0-9_]{0,6}", 0..3),
                prop::collection::vec("[A-Za-z0-9_.@ -]{0,5}[A-Za-z0-9_]", 0..3),
            )
                .prop_map(|(attr, sub_attrs, trailing)| {
                    let sub_attrs = if is_iri_name(&attr) {
                        Vec::new()
                    } else {
                        sub_attrs
                    };
                    let trailing = trailing.into_iter().map(|k| k.replace(' ', "_")).collect();
                    AttrPath {
                        attr,
                        sub_attrs,
                        trailing,
                    }
                })
        }

        fn single_value() -> impl Strategy<Value = QValue> {
            prop_oneof![
                (-1e12f64..1e12).prop_map(QValue::Number),
                any::<i32>().prop_map(|n| QValue::Number(f64::from(n))),
                any::<String>().prop_map(QValue::Text),
                any::<bool>().prop_map(QValue::Bool),
                Just(QValue::DateTime("2018-12-04T12:00:00Z".into())),
                Just(QValue::DateTime("2024-02-29".into())),
                Just(QValue::DateTime("23:59:59.5+09:00".into())),
                "urn:ngsi-ld:[A-Za-z]{1,8}:[A-Za-z0-9]{1,8}".prop_map(QValue::Uri),
            ]
        }

        fn comparison() -> impl Strategy<Value = Option<(QOp, QValue)>> {
            let ordered = prop_oneof![
                Just(QOp::Eq),
                Just(QOp::Ne),
                Just(QOp::Gt),
                Just(QOp::Ge),
                Just(QOp::Lt),
                Just(QOp::Le)
            ];
            let equality = prop_oneof![Just(QOp::Eq), Just(QOp::Ne)];
            let regex_op = prop_oneof![Just(QOp::Matches), Just(QOp::NotMatches)];
            let range_end = || {
                single_value()
                    .prop_filter("ranges exclude booleans", |v| !matches!(v, QValue::Bool(_)))
            };
            prop_oneof![
                Just(None),
                (ordered, single_value()).prop_map(|(op, v)| Some((op, v))),
                (
                    equality.clone(),
                    prop::collection::vec(single_value(), 2..4)
                )
                    .prop_map(|(op, items)| Some((op, QValue::List(items)))),
                (equality, range_end(), range_end()).prop_map(|(op, low, high)| {
                    Some((op, QValue::Range(Box::new(low), Box::new(high))))
                }),
                (regex_op, "[a-z.*+?^$|()\\\\d\"; ]{1,10}")
                    .prop_filter("must compile", |(_, r)| regex::Regex::new(r).is_ok())
                    .prop_map(|(op, r)| Some((op, QValue::Regex(r)))),
            ]
        }

        /// Normalised trees: the shape the parser produces (flattened, no
        /// one-element nodes).
        fn expr() -> impl Strategy<Value = QExpr> {
            let term = (attr_path(), comparison())
                .prop_map(|(path, comparison)| QExpr::Term(QTerm { path, comparison }));
            crate::query::q::tree_strategies::flattened(term)
        }

        /// Text glued from `q` tokens: far more of it parses than of random
        /// characters, so the round trip is exercised on odd but valid input.
        fn token_soup() -> impl Strategy<Value = String> {
            let tokens = vec![
                "a",
                "b.c",
                "[k]",
                "[x.y]",
                "https://e.org/v1.0/x",
                "==",
                "!=",
                ">=",
                "<",
                "~=",
                "!~=",
                "1",
                "-2.5e3",
                "\"x;y\"",
                "\"\\\\\"",
                "true",
                "2018-12-04T12:00:00Z",
                "12:00:00Z",
                "urn:a:b",
                "x",
                "..",
                ",",
                ";",
                "|",
                "(",
                ")",
                "\\d",
                "[a|b]",
            ];
            prop::collection::vec(prop::sample::select(tokens), 1..14).prop_map(|v| v.concat())
        }

        proptest! {
            #[test]
            fn arbitrary_text_never_panics(text in any::<String>()) {
                let _ = parse(&text);
            }

            #[test]
            fn q_like_text_never_panics(text in "[a-z0-9.;|()\\[\\]=!<>~\",:\\\\ -]{0,40}") {
                let _ = parse(&text);
            }

            #[test]
            fn accepted_text_prints_back_to_the_same_tree(text in token_soup()) {
                if let Ok(tree) = parse(&text) {
                    let printed = tree.to_string();
                    prop_assert_eq!(parse(&printed), Ok(tree), "{:?} printed as {:?}", text, printed);
                }
            }

            #[test]
            fn generated_expressions_round_trip(tree in expr()) {
                let text = tree.to_string();
                prop_assert_eq!(parse(&text), Ok(tree), "text: {}", text);
            }
        }
    }
}
