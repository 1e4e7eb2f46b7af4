//! The SQL guard: escapes that must be refused, queries that must pass.

use crate::datastore::sql::{check_sql, SqlError};
use proptest::prelude::*;

const SHELTERS: &str = "0c1d9e4a-5b7f-4f3e-9a53-2d4f6b8e1c20";
const TOWNS: &str = "7a2f1b3c-9d4e-4c5b-8f6a-1e2d3c4b5a69";

fn is_datastore(name: &str) -> bool {
    name == SHELTERS || name == TOWNS || name == "t"
}

fn refused(sql: &str) -> SqlError {
    match check_sql(sql, is_datastore) {
        Ok(checked) => panic!("accepted {sql:?} as {:?}", checked.sql),
        Err(error) => error,
    }
}

#[test]
fn statements_other_than_select_are_refused() {
    assert!(matches!(refused(r#"DELETE FROM "t""#), SqlError::NotAQuery(kind) if kind == "DELETE"));
    assert!(matches!(
        refused(r#"UPDATE "t" SET a = 1"#),
        SqlError::NotAQuery(_)
    ));
    assert!(matches!(
        refused(r#"INSERT INTO "t" VALUES (1)"#),
        SqlError::NotAQuery(_)
    ));
    assert!(
        matches!(refused(r#"DROP TABLE "t""#), SqlError::NotAQuery(kind) if kind == "DROP TABLE")
    );
    assert!(matches!(
        refused(r#"COPY "t" TO '/tmp/x'"#),
        SqlError::NotAQuery(_)
    ));
    assert!(matches!(
        refused(r#"COPY "t" FROM PROGRAM 'id'"#),
        SqlError::NotAQuery(_) | SqlError::Parse(_)
    ));
    assert!(matches!(
        refused("SET statement_timeout = 0"),
        SqlError::NotAQuery(_)
    ));
    assert!(matches!(
        refused(r#"EXPLAIN ANALYZE SELECT * FROM "t""#),
        SqlError::NotAQuery(_)
    ));
}

#[test]
fn several_statements_are_refused_even_behind_comments() {
    assert_eq!(
        refused(r#"SELECT 1; DROP TABLE "t""#),
        SqlError::SeveralStatements(2)
    );
    assert_eq!(
        refused(r#"SELECT 1 /* */; DELETE FROM "t""#),
        SqlError::SeveralStatements(2)
    );
    assert_eq!(
        refused("SELECT 1 -- hidden\n; DELETE FROM \"t\""),
        SqlError::SeveralStatements(2)
    );
    assert!(matches!(refused(""), SqlError::Empty));
    assert!(matches!(
        refused(" ; "),
        SqlError::Empty | SqlError::Parse(_)
    ));
}

#[test]
fn comments_do_not_reach_the_database() {
    let checked = check_sql(
        r#"SELECT "a" /* ; DELETE FROM "t" */ FROM "t" -- tail"#,
        is_datastore,
    )
    .unwrap();
    assert!(!checked.sql.contains("DELETE"), "{}", checked.sql);
    assert!(!checked.sql.contains("--"), "{}", checked.sql);
}

#[test]
fn tables_outside_the_datastore_are_refused() {
    assert!(matches!(
        refused("SELECT * FROM pg_catalog.pg_user"),
        SqlError::QualifiedTable(_)
    ));
    assert!(
        matches!(refused("SELECT * FROM catalog_packages"), SqlError::NotADatastoreTable(name) if name == "catalog_packages")
    );
    assert!(matches!(
        refused("SELECT * FROM sqlite_master"),
        SqlError::NotADatastoreTable(_)
    ));
    assert!(matches!(
        refused("SELECT * FROM pg_user"),
        SqlError::NotADatastoreTable(_)
    ));
    assert!(matches!(
        refused(r#"SELECT * FROM "t", information_schema.tables"#),
        SqlError::QualifiedTable(_)
    ));
    assert!(matches!(
        refused(r#"SELECT * FROM "main"."t""#),
        SqlError::QualifiedTable(_)
    ));
    // Unquoted names fold to lower case, as PostgreSQL resolves them.
    assert!(check_sql("SELECT * FROM T", is_datastore).is_ok());
    assert!(
        matches!(refused(r#"SELECT * FROM "T""#), SqlError::NotADatastoreTable(name) if name == "T")
    );
}

#[test]
fn tables_hidden_in_subqueries_and_joins_are_found() {
    let hidden = [
        r#"SELECT * FROM "t" WHERE "a" IN (SELECT usename FROM pg_user)"#,
        r#"SELECT * FROM "t" WHERE EXISTS (SELECT 1 FROM (SELECT 1 FROM pg_shadow) s)"#,
        r#"SELECT * FROM "t" JOIN pg_roles r ON true"#,
        r#"SELECT (SELECT count(*) FROM catalog_packages) FROM "t""#,
        r#"SELECT * FROM "t" ORDER BY (SELECT max(oid) FROM pg_class)"#,
        r#"SELECT "a" FROM "t" GROUP BY "a" HAVING count(*) > (SELECT 1 FROM secrets)"#,
        r#"SELECT "a" FROM "t" UNION SELECT usename FROM pg_user"#,
    ];
    for sql in hidden {
        assert!(
            matches!(refused(sql), SqlError::NotADatastoreTable(_)),
            "{sql}"
        );
    }
}

#[test]
fn functions_outside_the_allowlist_are_refused_anywhere() {
    let calls = [
        ("SELECT pg_sleep(10)", "pg_sleep"),
        (
            r#"SELECT * FROM "t" WHERE x = (SELECT set_config('a','b',false))"#,
            "set_config",
        ),
        ("SELECT load_extension('x')", "load_extension"),
        ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
        (
            "SELECT current_setting('data_directory')",
            "current_setting",
        ),
        ("SELECT lo_import('/etc/passwd')", "lo_import"),
        ("SELECT randomblob(1000000000)", "randomblob"),
        ("SELECT sqlite_version()", "sqlite_version"),
        (r#"SELECT * FROM "t" ORDER BY pg_sleep(1)"#, "pg_sleep"),
        (
            r#"SELECT "a" FROM "t" GROUP BY "a" HAVING count(pg_sleep(1)) > 0"#,
            "pg_sleep",
        ),
        (
            r#"SELECT * FROM "t" a JOIN "t" b ON pg_sleep(1) IS NULL"#,
            "pg_sleep",
        ),
        (
            r#"SELECT * FROM "t" WHERE "a" IN (SELECT "a" FROM "t" WHERE dblink_exec('x') = 1)"#,
            "dblink_exec",
        ),
        (r#"SELECT lower(upper(pg_sleep(1))) FROM "t""#, "pg_sleep"),
        (
            r#"SELECT count(*) OVER (PARTITION BY pg_sleep(1)) FROM "t""#,
            "pg_sleep",
        ),
        (
            r#"SELECT CASE WHEN true THEN pg_sleep(1) END FROM "t""#,
            "pg_sleep",
        ),
    ];
    for (sql, function) in calls {
        assert_eq!(
            refused(sql),
            SqlError::FunctionNotAllowed(function.to_owned()),
            "{sql}"
        );
    }
    assert!(matches!(
        refused("SELECT pg_catalog.pg_sleep(1)"),
        SqlError::FunctionNotAllowed(_)
    ));
    assert!(matches!(
        refused("SELECT current_user"),
        SqlError::FunctionNotAllowed(_)
    ));
    assert!(matches!(
        refused("SELECT user"),
        SqlError::FunctionNotAllowed(_)
    ));
}

#[test]
fn writing_and_locking_forms_of_select_are_refused() {
    assert!(matches!(
        refused(r#"WITH d AS (DELETE FROM "t" RETURNING *) SELECT * FROM d"#),
        SqlError::NotAQuery(_)
    ));
    assert!(matches!(
        refused(r#"WITH d AS (UPDATE "t" SET a = 1 RETURNING *) SELECT * FROM d"#),
        SqlError::NotAQuery(_)
    ));
    assert_eq!(refused(r#"SELECT * INTO x FROM "t""#), SqlError::SelectInto);
    assert_eq!(
        refused(r#"SELECT * FROM "t" FOR UPDATE"#),
        SqlError::Locking
    );
    assert_eq!(refused(r#"SELECT * FROM "t" FOR SHARE"#), SqlError::Locking);
    assert_eq!(
        refused(r#"SELECT * FROM (SELECT * FROM "t" FOR UPDATE) s"#),
        SqlError::Locking
    );
}

#[test]
fn table_functions_in_from_are_refused() {
    assert!(matches!(
        refused("SELECT * FROM generate_series(1,10)"),
        SqlError::TableFunction(_)
    ));
    assert!(matches!(
        refused("SELECT * FROM unnest(ARRAY[1,2])"),
        SqlError::TableFunction(_)
    ));
    assert!(matches!(
        refused(r#"SELECT * FROM "t", pg_ls_dir('.') AS f"#),
        SqlError::TableFunction(_)
    ));
}

#[test]
fn casts_and_literals_that_reach_the_catalog_are_refused() {
    assert!(matches!(
        refused("SELECT 'pg_user'::regclass"),
        SqlError::Unsupported(_)
    ));
    assert!(matches!(
        refused("SELECT CAST('pg_sleep' AS regproc)"),
        SqlError::Unsupported(_)
    ));
    assert!(matches!(refused("SELECT $$x$$"), SqlError::Unsupported(_)));
    assert!(matches!(refused("SELECT $1"), SqlError::Unsupported(_)));
}

#[test]
fn a_cte_name_only_counts_within_its_scope() {
    // A CTE's name inside a subquery does not cover the same name outside it.
    let sql = r#"SELECT * FROM (WITH catalog_packages AS (SELECT 1) SELECT * FROM catalog_packages) a, catalog_packages"#;
    assert!(
        matches!(refused(sql), SqlError::NotADatastoreTable(name) if name == "catalog_packages")
    );
    // Without RECURSIVE a CTE's own name in its body is the real table.
    let sql = "WITH pg_user AS (SELECT * FROM pg_user) SELECT * FROM pg_user";
    assert!(matches!(refused(sql), SqlError::NotADatastoreTable(name) if name == "pg_user"));
    // A CTE cannot use one defined after it.
    let sql = r#"WITH a AS (SELECT * FROM b), b AS (SELECT * FROM "t") SELECT * FROM a"#;
    assert!(matches!(refused(sql), SqlError::NotADatastoreTable(name) if name == "b"));
}

#[test]
fn legitimate_queries_pass_and_name_their_tables() {
    let sql = format!(
        r#"SELECT "名称", count(*) FROM "{SHELTERS}" WHERE "種別" = '避難所' GROUP BY 1 ORDER BY 2 DESC LIMIT 10"#
    );
    let checked = check_sql(&sql, is_datastore).unwrap();
    assert_eq!(checked.tables, vec![SHELTERS.to_owned()]);
    assert!(checked.sql.contains("'避難所'"), "{}", checked.sql);

    let join = format!(
        r#"SELECT s."名称", t."人口" FROM "{SHELTERS}" s JOIN "{TOWNS}" t ON s."市町村コード" = t."市町村コード" WHERE t."人口" > 1000 ORDER BY t."人口" DESC OFFSET 5"#
    );
    assert_eq!(
        check_sql(&join, is_datastore).unwrap().tables,
        vec![SHELTERS.to_owned(), TOWNS.to_owned()]
    );

    let cte = format!(
        r#"WITH open AS (SELECT * FROM "{SHELTERS}" WHERE "開設" = true), counted AS (SELECT "市町村", count(*) AS n FROM open GROUP BY "市町村") SELECT * FROM counted WHERE n > 1"#
    );
    assert_eq!(
        check_sql(&cte, is_datastore).unwrap().tables,
        vec![SHELTERS.to_owned()]
    );

    let recursive = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT * FROM n";
    assert!(check_sql(recursive, is_datastore)
        .unwrap()
        .tables
        .is_empty());

    let assorted = format!(
        r#"SELECT upper(trim("a")), round(avg(CAST("b" AS numeric)), 2), coalesce(max("c"), 0), substr("a", 1, 2) FROM "{TOWNS}" WHERE "a" LIKE '%市' AND "b" BETWEEN 1 AND 9 AND "c" IS NOT NULL GROUP BY 1, 4 HAVING count(*) > 1 UNION SELECT 'x', 1, 2, 'y';"#
    );
    assert!(check_sql(&assorted, is_datastore).is_ok());
    let window = format!(
        r#"SELECT "a", row_number() OVER (PARTITION BY "b" ORDER BY "c" DESC) FROM "{TOWNS}""#
    );
    assert!(check_sql(&window, is_datastore).is_ok());
    let in_subquery =
        format!(r#"SELECT * FROM "{TOWNS}" WHERE "a" IN (SELECT "a" FROM "{SHELTERS}")"#);
    assert_eq!(
        check_sql(&in_subquery, is_datastore).unwrap().tables.len(),
        2
    );
}

#[test]
fn the_checked_text_parses_to_what_was_checked() {
    let checked = check_sql(
        r#"select "a" , 'it''s' from "t" where "b" = 1"#,
        is_datastore,
    )
    .unwrap();
    assert_eq!(checked.sql, r#"SELECT "a", 'it''s' FROM "t" WHERE "b" = 1"#);
    assert_eq!(check_sql(&checked.sql, is_datastore).unwrap(), checked);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics_the_guard(sql in "\\PC{0,200}") {
        let _ = check_sql(&sql, is_datastore);
    }

    #[test]
    fn sql_like_text_never_panics_the_guard(
        words in proptest::collection::vec(
            prop_oneof![
                Just("SELECT"), Just("*"), Just("FROM"), Just("\"t\""), Just("WHERE"), Just("("),
                Just(")"), Just(","), Just(";"), Just("WITH"), Just("AS"), Just("UNION"),
                Just("pg_sleep(1)"), Just("count(*)"), Just("'x'"), Just("1"), Just("/*"), Just("*/"),
                Just("--"), Just("\n"), Just("DELETE"), Just("JOIN"), Just("ON"), Just("="),
            ],
            0..40,
        )
    ) {
        let sql = words.join(" ");
        if let Ok(checked) = check_sql(&sql, is_datastore) {
            // Whatever passes reads datastore tables only and passes again as rendered.
            prop_assert!(checked.tables.iter().all(|table| is_datastore(table)));
            prop_assert!(!checked.sql.to_ascii_lowercase().contains("pg_sleep"));
            prop_assert_eq!(check_sql(&checked.sql, is_datastore), Ok(checked.clone()));
        }
    }
}

#[test]
fn clauses_that_hide_tables_or_calls_are_walked_too() {
    let refused_tables = [
        r#"SELECT * FROM "t", LATERAL (SELECT * FROM pg_user) x"#,
        r#"SELECT * FROM ("t" JOIN pg_user ON true)"#,
        r#"SELECT * FROM "t" NATURAL JOIN pg_user"#,
        r#"SELECT 1 FROM "t" LIMIT (SELECT count(*) FROM pg_user)"#,
        "SELECT 1 WHERE EXISTS (SELECT 1 FROM pg_stat_activity)",
        "SELECT * FROM pragma_database_list",
    ];
    for sql in refused_tables {
        assert!(
            matches!(refused(sql), SqlError::NotADatastoreTable(_)),
            "{sql}"
        );
    }
    let refused_calls = [
        r#"SELECT 1 FROM "t" WINDOW w AS (PARTITION BY pg_sleep(1))"#,
        r#"SELECT count(*) FILTER (WHERE pg_sleep(1) IS NULL) FROM "t""#,
        r#"SELECT * FROM "t" WHERE "a" IN (VALUES (pg_sleep(1)))"#,
        r#"SELECT * FROM "t" LIMIT abs(pg_sleep(1))"#,
        "SELECT ROW(1, 2)",
    ];
    for sql in refused_calls {
        assert!(
            matches!(refused(sql), SqlError::FunctionNotAllowed(_)),
            "{sql}"
        );
    }
    assert!(matches!(
        refused(r#"SELECT * FROM pragma_table_info('t')"#),
        SqlError::TableFunction(_)
    ));
    assert!(matches!(
        refused(r#"SELECT * FROM ONLY "t""#),
        SqlError::Unsupported(_)
    ));
    assert!(matches!(
        refused(r#"SELECT * FROM "t" TABLESAMPLE SYSTEM(10)"#),
        SqlError::Unsupported(_)
    ));
    assert!(matches!(
        refused("SELECT E'\\x41'"),
        SqlError::Unsupported(_)
    ));
    assert!(matches!(refused("SELECT x'41'"), SqlError::Unsupported(_)));
}

#[test]
fn quoting_tricks_cannot_smuggle_a_call_past_the_guard() {
    // PostgreSQL reads a backslash in '…' literally, so the call is real and seen.
    assert_eq!(
        refused(r#"SELECT 'a\' , pg_sleep(1) --'"#),
        SqlError::FunctionNotAllowed("pg_sleep".into())
    );
    // A nested comment is dropped whole from the text that runs.
    let checked = check_sql(
        r#"SELECT 'x' /* a /* b */ ; DELETE FROM "t" */"#,
        is_datastore,
    )
    .unwrap();
    assert_eq!(checked.sql, "SELECT 'x'");
    // A quote inside a literal is rendered doubled, never closing it.
    let checked = check_sql(r#"SELECT 'it''s; DROP TABLE "t"' FROM "t""#, is_datastore).unwrap();
    assert_eq!(checked.sql, r#"SELECT 'it''s; DROP TABLE "t"' FROM "t""#);
}
