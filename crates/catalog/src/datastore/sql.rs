//! The guard of `datastore_search_sql`: the client's SQL reaches a database
//! only if it is exactly one read-only query over datastore tables that calls
//! nothing but a short list of plain functions both PostgreSQL and SQLite have.
//!
//! The SQL is parsed with `sqlparser` (PostgreSQL dialect) and the whole tree
//! is walked with its [`Visitor`], so that a table or a function hidden in a
//! subquery, a CTE, `ORDER BY`, `HAVING` or `JOIN … ON` is seen like any
//! other. Everything is refused unless known to be harmless: an allowlist of
//! expression kinds, literal kinds, cast types and functions, not a blocklist.
//! What runs is the tree rendered back to text (so comments, and whatever a
//! database might read differently from the parser in them, are gone), and
//! only after that text was checked to parse to the same tree. The store still
//! runs it read-only with limits: this guard is the first wall, not the only one.

use sqlparser::ast::{
    DataType, Expr, FunctionArguments, InTarget, ObjectName, ObjectNamePart, Query, Select,
    SelectFlavor, SetExpr, SetOperator, Statement, TableFactor, Value, Visit, Visitor,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use std::ops::ControlFlow;

/// Longer SQL is refused before parsing.
pub const MAX_SQL_BYTES: usize = 64 * 1024;

/// Functions a query may call: plain and free of side effects, and present in
/// both PostgreSQL and SQLite. `CAST` is syntax, not a function, and allowed.
pub const ALLOWED_FUNCTIONS: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "abs",
    "round",
    "lower",
    "upper",
    "length",
    "trim",
    "ltrim",
    "rtrim",
    "substr",
    "substring",
    "replace",
    "coalesce",
    "nullif",
    "row_number",
    "rank",
    "dense_rank",
    "current_date",
    "current_time",
    "current_timestamp",
];

/// Unquoted names PostgreSQL reads as calls that tell about the server
/// (`SELECT user` is `current_user` there), refused even without parentheses.
const SERVER_INFO_NAMES: &[&str] = &[
    "user",
    "current_user",
    "session_user",
    "current_role",
    "current_catalog",
    "current_schema",
    "system_user",
];

/// SQL that passed the guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedSql {
    /// The query rendered from its checked syntax tree, without comments and
    /// without a trailing `;`: run this, not the client's text.
    pub sql: String,
    /// The datastore tables the query reads, each once, in order of first
    /// mention, so the caller can check the right to read each.
    pub tables: Vec<String>,
}

/// Why SQL was refused, in words for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    #[error("the query is empty")]
    Empty,
    #[error("the query is {bytes} bytes long; at most {max} are allowed")]
    TooLong { bytes: usize, max: usize },
    #[error("the query could not be parsed: {0}")]
    Parse(String),
    #[error("only one statement is allowed, and {0} were given")]
    SeveralStatements(usize),
    #[error("only SELECT queries are allowed, not {0}")]
    NotAQuery(String),
    #[error("SELECT … INTO is not allowed")]
    SelectInto,
    #[error("locking clauses (FOR UPDATE, FOR SHARE, …) are not allowed")]
    Locking,
    #[error("table \"{0}\" is qualified by a schema or database; name datastore tables by resource id alone")]
    QualifiedTable(String),
    #[error("\"{0}\" is not a datastore table")]
    NotADatastoreTable(String),
    #[error("table functions such as {0}(…) are not allowed in FROM")]
    TableFunction(String),
    #[error("function {0} is not allowed")]
    FunctionNotAllowed(String),
    #[error("{0} is not allowed")]
    Unsupported(String),
}

/// Checks SQL for `datastore_search_sql`. `is_datastore_table` says whether a
/// table name (as the database will resolve it: unquoted names lowercased,
/// quoted ones exact) is a datastore table; names of the query's own CTEs, in
/// their scope, are not asked about.
///
/// Accepted: one `SELECT` (with `WITH` of queries, `UNION`/`INTERSECT`/`EXCEPT`,
/// subqueries, joins, `GROUP BY`, `HAVING`, window functions, `ORDER BY`,
/// `LIMIT`/`OFFSET`, `VALUES`), a trailing `;` allowed. Refused: any other
/// statement, more than one, data-changing CTEs, `SELECT INTO`, locking
/// clauses, schema-qualified or non-datastore tables, table functions, and
/// functions, casts and literals outside the allowlists.
pub fn check_sql(
    sql: &str,
    is_datastore_table: impl Fn(&str) -> bool,
) -> Result<CheckedSql, SqlError> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(SqlError::TooLong {
            bytes: sql.len(),
            max: MAX_SQL_BYTES,
        });
    }
    let statement = parse_one(sql)?;
    let mut guard = Guard {
        is_datastore_table: &is_datastore_table,
        scopes: Vec::new(),
        tables: Vec::new(),
    };
    if !matches!(statement, Statement::Query(_)) {
        return Err(SqlError::NotAQuery(statement_kind(&statement)));
    }
    if let ControlFlow::Break(error) = statement.visit(&mut guard) {
        return Err(error);
    }
    let rendered = statement.to_string();
    // The text that will run must mean what was checked.
    match parse_one(&rendered) {
        Ok(reparsed) if reparsed == statement => Ok(CheckedSql {
            sql: rendered,
            tables: guard.tables,
        }),
        _ => Err(SqlError::Unsupported(
            "a query that cannot be rendered back faithfully".to_owned(),
        )),
    }
}

fn parse_one(sql: &str) -> Result<Statement, SqlError> {
    if sql.trim().is_empty() {
        return Err(SqlError::Empty);
    }
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|error| SqlError::Parse(error.to_string()))?;
    match statements.len() {
        0 => Err(SqlError::Empty),
        1 => Ok(statements.remove(0)),
        several => Err(SqlError::SeveralStatements(several)),
    }
}

/// The first words of a statement, to name its kind in an error.
fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    match words.as_slice() {
        [first, second, ..]
            if matches!(
                first.to_ascii_uppercase().as_str(),
                "CREATE" | "DROP" | "ALTER"
            ) =>
        {
            format!(
                "{} {}",
                first.to_ascii_uppercase(),
                second.to_ascii_uppercase()
            )
        }
        [first, ..] => first.to_ascii_uppercase(),
        [] => "an empty statement".to_owned(),
    }
}

/// The CTE names one `WITH` defines, and which of them a reference may mean
/// at the current point of the walk.
struct CteScope {
    names: Vec<String>,
    /// The CTE bodies, to know by identity when the walk enters one.
    bodies: Vec<*const Query>,
    recursive: bool,
    /// The CTE whose body is being walked; `None` in the main query.
    inside: Option<usize>,
}

impl CteScope {
    /// Without `RECURSIVE`, the body of CTE *i* sees CTEs 0..i only (a name
    /// of a later one, or its own, means a real table, as in PostgreSQL).
    fn visible(&self) -> &[String] {
        match self.inside {
            Some(index) if !self.recursive => &self.names[..index],
            _ => &self.names,
        }
    }
}

struct Guard<'a, F: Fn(&str) -> bool> {
    is_datastore_table: &'a F,
    scopes: Vec<CteScope>,
    tables: Vec<String>,
}

/// An identifier as the database resolves it: quoted exactly, unquoted
/// folded to lower case (PostgreSQL's rule; SQLite ignores ASCII case anyway).
fn resolved_name(ident: &sqlparser::ast::Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// The one plain identifier of a name, or `None` for `schema.table` and
/// other compound or computed names.
fn single_name(name: &ObjectName) -> Option<String> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(ident)] => Some(resolved_name(ident)),
        _ => None,
    }
}

impl<F: Fn(&str) -> bool> Guard<'_, F> {
    fn is_cte(&self, name: &str) -> bool {
        self.scopes
            .iter()
            .any(|scope| scope.visible().iter().any(|cte| cte == name))
    }

    /// A table read by the query: a CTE in scope, or a datastore table.
    fn check_relation(&mut self, relation: &ObjectName) -> Result<(), SqlError> {
        let name =
            single_name(relation).ok_or_else(|| SqlError::QualifiedTable(relation.to_string()))?;
        if self.is_cte(&name) {
            return Ok(());
        }
        if !(self.is_datastore_table)(&name) {
            return Err(SqlError::NotADatastoreTable(name));
        }
        if !self.tables.contains(&name) {
            self.tables.push(name);
        }
        Ok(())
    }

    fn check_query(&mut self, query: &Query) -> Result<(), SqlError> {
        if !query.locks.is_empty() {
            return Err(SqlError::Locking);
        }
        if query.for_clause.is_some() {
            return Err(SqlError::Unsupported("FOR XML / FOR JSON".to_owned()));
        }
        if query.settings.is_some()
            || query.format_clause.is_some()
            || !query.pipe_operators.is_empty()
        {
            return Err(SqlError::Unsupported(
                "SETTINGS, FORMAT and pipe operators".to_owned(),
            ));
        }
        check_set_expr(&query.body)
    }

    fn check_table_factor(&self, factor: &TableFactor) -> Result<(), SqlError> {
        match factor {
            TableFactor::Table {
                name,
                args,
                with_hints,
                version,
                with_ordinality,
                partitions,
                json_path,
                sample,
                index_directives,
                inheritance,
                alias: _,
            } => {
                if args.is_some() || *with_ordinality {
                    return Err(SqlError::TableFunction(name.to_string()));
                }
                let plain = with_hints.is_empty()
                    && version.is_none()
                    && partitions.is_empty()
                    && json_path.is_none()
                    && sample.is_none()
                    && index_directives.is_empty()
                    && inheritance.is_none();
                if plain {
                    Ok(())
                } else {
                    Err(SqlError::Unsupported(format!("table modifiers on {name}")))
                }
            }
            TableFactor::Derived { sample: None, .. } | TableFactor::NestedJoin { .. } => Ok(()),
            TableFactor::Function { name, .. } => Err(SqlError::TableFunction(name.to_string())),
            TableFactor::UNNEST { .. } => Err(SqlError::TableFunction("unnest".to_owned())),
            other => Err(SqlError::Unsupported(format!("FROM item {other}"))),
        }
    }

    fn check_expr(&self, expr: &Expr) -> Result<(), SqlError> {
        match expr {
            Expr::Function(function) => check_function(function),
            Expr::Identifier(ident) => {
                if ident.quote_style.is_none()
                    && SERVER_INFO_NAMES.contains(&ident.value.to_lowercase().as_str())
                {
                    Err(SqlError::FunctionNotAllowed(ident.value.to_lowercase()))
                } else {
                    Ok(())
                }
            }
            Expr::Value(value) => check_literal(&value.value),
            Expr::Cast {
                data_type, format, ..
            } => {
                if format.is_some() {
                    return Err(SqlError::Unsupported("CAST … FORMAT".to_owned()));
                }
                check_data_type(data_type)
            }
            Expr::TypedString(typed) => {
                check_data_type(&typed.data_type)?;
                check_literal(&typed.value.value)
            }
            Expr::BinaryOp { op, .. } => match op {
                sqlparser::ast::BinaryOperator::Custom(name) => {
                    Err(SqlError::Unsupported(format!("operator {name}")))
                }
                sqlparser::ast::BinaryOperator::PGCustomBinaryOperator(parts) => Err(
                    SqlError::Unsupported(format!("operator OPERATOR({})", parts.join("."))),
                ),
                _ => Ok(()),
            },
            Expr::In { target, global, .. } => match target {
                InTarget::List(_) | InTarget::Subquery(_) if !global => Ok(()),
                _ => Err(SqlError::Unsupported(format!("the IN form of {expr}"))),
            },
            Expr::CompoundIdentifier(_)
            | Expr::IsFalse(_)
            | Expr::IsNotFalse(_)
            | Expr::IsTrue(_)
            | Expr::IsNotTrue(_)
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::IsUnknown(_)
            | Expr::IsNotUnknown(_)
            | Expr::IsDistinctFrom(..)
            | Expr::IsNotDistinctFrom(..)
            | Expr::Between { .. }
            | Expr::Like { .. }
            | Expr::ILike { .. }
            | Expr::UnaryOp { .. }
            | Expr::AtTimeZone { .. }
            | Expr::Extract { .. }
            | Expr::Ceil { .. }
            | Expr::Floor { .. }
            | Expr::Position { .. }
            | Expr::Substring { .. }
            | Expr::Trim { .. }
            | Expr::Collate { .. }
            | Expr::Nested(_)
            | Expr::Case { .. }
            | Expr::Exists { .. }
            | Expr::Subquery(_)
            | Expr::Tuple(_)
            | Expr::Interval(_)
            | Expr::Wildcard(_)
            | Expr::QualifiedWildcard(..) => Ok(()),
            other => Err(SqlError::Unsupported(format!("the expression {other}"))),
        }
    }
}

fn check_set_expr(body: &SetExpr) -> Result<(), SqlError> {
    match body {
        SetExpr::Select(_) | SetExpr::Query(_) | SetExpr::Values(_) => Ok(()),
        SetExpr::SetOperation {
            op, left, right, ..
        } => {
            if !matches!(
                op,
                SetOperator::Union | SetOperator::Intersect | SetOperator::Except
            ) {
                return Err(SqlError::Unsupported(format!("set operator {op}")));
            }
            check_set_expr(left)?;
            check_set_expr(right)
        }
        SetExpr::Insert(statement)
        | SetExpr::Update(statement)
        | SetExpr::Delete(statement)
        | SetExpr::Merge(statement) => Err(SqlError::NotAQuery(statement_kind(statement))),
        SetExpr::Table(_) => Err(SqlError::Unsupported(
            "TABLE name (write SELECT * FROM name)".to_owned(),
        )),
    }
}

fn check_select(select: &Select) -> Result<(), SqlError> {
    if select.into.is_some() {
        return Err(SqlError::SelectInto);
    }
    let plain = select.optimizer_hints.is_empty()
        && select.select_modifiers.is_none()
        && select.top.is_none()
        && select.exclude.is_none()
        && select.lateral_views.is_empty()
        && select.prewhere.is_none()
        && select.connect_by.is_empty()
        && select.cluster_by.is_empty()
        && select.distribute_by.is_empty()
        && select.sort_by.is_empty()
        && select.qualify.is_none()
        && select.value_table_mode.is_none()
        && matches!(select.flavor, SelectFlavor::Standard);
    if plain {
        Ok(())
    } else {
        Err(SqlError::Unsupported(
            "non-standard SELECT clauses".to_owned(),
        ))
    }
}

fn check_function(function: &sqlparser::ast::Function) -> Result<(), SqlError> {
    let name = single_name(&function.name)
        .ok_or_else(|| SqlError::FunctionNotAllowed(function.name.to_string()))?;
    if !ALLOWED_FUNCTIONS.contains(&name.as_str()) {
        return Err(SqlError::FunctionNotAllowed(name));
    }
    if function.uses_odbc_syntax || !matches!(function.parameters, FunctionArguments::None) {
        return Err(SqlError::Unsupported(format!(
            "this form of calling {name}"
        )));
    }
    match function.args {
        FunctionArguments::None | FunctionArguments::List(_) => Ok(()),
        FunctionArguments::Subquery(_) => Err(SqlError::Unsupported(format!("{name}(SELECT …)"))),
    }
}

/// Plain literals only: numbers, '…' strings, booleans, NULL. PostgreSQL's
/// `$$…$$` and `E'…'` strings read differently in SQLite, and placeholders
/// have nothing to bind.
fn check_literal(value: &Value) -> Result<(), SqlError> {
    match value {
        Value::Number(..) | Value::SingleQuotedString(_) | Value::Boolean(_) | Value::Null => {
            Ok(())
        }
        other => Err(SqlError::Unsupported(format!("the literal {other}"))),
    }
}

/// Casts to the types of datastore columns and their close relatives; casts
/// to `regclass`, `regproc` and other catalog or custom types are refused.
fn check_data_type(data_type: &DataType) -> Result<(), SqlError> {
    let allowed = matches!(
        data_type,
        DataType::Text
            | DataType::Varchar(_)
            | DataType::Char(_)
            | DataType::Character(_)
            | DataType::CharacterVarying(_)
            | DataType::CharVarying(_)
            | DataType::Int(_)
            | DataType::Int2(_)
            | DataType::Int4(_)
            | DataType::Int8(_)
            | DataType::Integer(_)
            | DataType::SmallInt(_)
            | DataType::BigInt(_)
            | DataType::Numeric(_)
            | DataType::Decimal(_)
            | DataType::Dec(_)
            | DataType::Real
            | DataType::Float(_)
            | DataType::Float4
            | DataType::Float8
            | DataType::Double(_)
            | DataType::DoublePrecision
            | DataType::Bool
            | DataType::Boolean
            | DataType::Date
            | DataType::Time(..)
            | DataType::Timestamp(..)
            | DataType::Interval { .. }
            | DataType::JSON
            | DataType::JSONB
    );
    if allowed {
        Ok(())
    } else {
        Err(SqlError::Unsupported(format!("a cast to {data_type}")))
    }
}

impl<F: Fn(&str) -> bool> Visitor for Guard<'_, F> {
    type Break = SqlError;

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<SqlError> {
        match statement {
            Statement::Query(_) => ControlFlow::Continue(()),
            other => ControlFlow::Break(SqlError::NotAQuery(statement_kind(other))),
        }
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<SqlError> {
        if let Some(scope) = self.scopes.last_mut() {
            if let Some(index) = scope
                .bodies
                .iter()
                .position(|body| std::ptr::eq(*body, query))
            {
                scope.inside = Some(index);
            }
        }
        if let Err(error) = self.check_query(query) {
            return ControlFlow::Break(error);
        }
        if let Some(with) = &query.with {
            self.scopes.push(CteScope {
                names: with
                    .cte_tables
                    .iter()
                    .map(|cte| resolved_name(&cte.alias.name))
                    .collect(),
                bodies: with
                    .cte_tables
                    .iter()
                    .map(|cte| &*cte.query as *const Query)
                    .collect(),
                recursive: with.recursive,
                inside: None,
            });
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &Query) -> ControlFlow<SqlError> {
        if query.with.is_some() {
            self.scopes.pop();
        }
        if let Some(scope) = self.scopes.last_mut() {
            if scope.bodies.iter().any(|body| std::ptr::eq(*body, query)) {
                scope.inside = None;
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<SqlError> {
        to_flow(check_select(select))
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<SqlError> {
        to_flow(self.check_relation(relation))
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<SqlError> {
        to_flow(self.check_table_factor(factor))
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<SqlError> {
        to_flow(self.check_expr(expr))
    }
}

fn to_flow(result: Result<(), SqlError>) -> ControlFlow<SqlError> {
    match result {
        Ok(()) => ControlFlow::Continue(()),
        Err(error) => ControlFlow::Break(error),
    }
}
