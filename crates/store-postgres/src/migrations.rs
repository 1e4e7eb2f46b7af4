//! The versioned schema of the PostgreSQL backend and the code that brings a database
//! up to it. Each migration runs once, recorded in `renkei_schema_migrations`; all
//! pending ones are applied in one transaction holding a transaction-level advisory
//! lock, so several nodes starting against the same database at once apply each
//! migration exactly once and never see a half-made schema. A migration is SQL, and
//! optionally a step in Rust after it (for data SQL cannot derive, such as the
//! query index rows computed by `ngsi_ld::query::index`).

use store::StoreError;
use tokio_postgres::Client;

/// The advisory lock key serialising migrations ("renkei" in ASCII); any constant
/// works as long as every node uses the same one.
const MIGRATION_LOCK_KEY: i64 = 0x72_65_6e_6b_65_69;

struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
    then: Option<Backfill>,
}

/// A Rust step run after a migration's SQL, in the same transaction.
#[derive(Clone, Copy)]
enum Backfill {
    /// Computes the `entity_values` rows and the `location` shape of every entity.
    IndexEntities,
    /// Computes again the `entity_values` rows of the entities indexed with a string
    /// longer than the index now keeps.
    CutLongText,
}

/// Append-only: a released migration is never edited, a change is a new version.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "entities, tenants and contexts",
        sql: r#"
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE tenants (
    name text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- The default tenant always exists.
INSERT INTO tenants (name) VALUES ('');

CREATE TABLE entities (
    tenant text NOT NULL REFERENCES tenants (name),
    id text NOT NULL,
    types text[] NOT NULL,
    scopes text[] NOT NULL DEFAULT '{}',
    doc jsonb NOT NULL,
    location geometry(Geometry, 4326),
    created_at timestamptz NOT NULL DEFAULT now(),
    modified_at timestamptz NOT NULL DEFAULT now(),
    seq bigserial NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX entities_types_idx ON entities USING gin (types);
CREATE INDEX entities_location_idx ON entities USING gist (location);
CREATE INDEX entities_seq_idx ON entities (tenant, seq);
CREATE INDEX entities_attrs_idx ON entities USING gin ((doc -> 'attrs'));

CREATE TABLE contexts (
    id text PRIMARY KEY,
    url text NOT NULL UNIQUE,
    kind text NOT NULL,
    body jsonb NOT NULL,
    created_at timestamptz NOT NULL
);

-- The geometry of a GeoJSON text, or NULL when PostGIS cannot read it: the location
-- column only serves geo-queries, and an entity whose geometry PostGIS rejects must
-- still be stored (the in-memory evaluation has the last word anyway).
CREATE FUNCTION renkei_geometry_or_null(geojson text) RETURNS geometry
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF geojson IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN ST_SetSRID(ST_GeomFromGeoJSON(geojson), 4326);
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END
$$;
"#,
        then: None,
    },
    Migration {
        version: 2,
        name: "query index of attribute values",
        sql: r#"
-- The foreign key below needs seq to be unique (bigserial alone is not).
CREATE UNIQUE INDEX entities_seq_key ON entities (seq);

-- The comparable values of every attribute (ngsi_ld::query::index::index_entries):
-- one row per number (num) or string (txt), and a row with neither for an attribute
-- with no comparable value, so that q and attrs narrow in SQL. Text is compared in
-- the "C" collation, byte order, as the evaluator compares strings.
CREATE TABLE entity_values (
    seq bigint NOT NULL REFERENCES entities (seq) ON DELETE CASCADE,
    attr text NOT NULL,
    num double precision,
    txt text COLLATE "C"
);
-- Probing one entity's rows (and the cascade from entities).
CREATE INDEX entity_values_seq_idx ON entity_values (seq, attr) INCLUDE (num, txt);
-- Finding the entities whose attribute is in a range.
CREATE INDEX entity_values_num_idx ON entity_values (attr, num, seq) WHERE num IS NOT NULL;
CREATE INDEX entity_values_txt_idx ON entity_values (attr, txt, seq) WHERE txt IS NOT NULL;

-- From now on the location column holds the geometry of the default instance of
-- `location` when it is the only one and PostGIS reads it, and otherwise the box
-- around every instance: always a shape whose box covers all of them, so that a
-- box test on it never misses an entity a geo-query matches. The back-fill
-- recomputes it for existing rows.
CREATE FUNCTION renkei_location(geojson text, min_lon float8, min_lat float8,
                                max_lon float8, max_lat float8) RETURNS geometry
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(renkei_geometry_or_null(geojson),
                    ST_MakeEnvelope(min_lon, min_lat, max_lon, max_lat, 4326))
$$;
"#,
        then: Some(Backfill::IndexEntities),
    },
    Migration {
        version: 3,
        name: "identity, access and the audit log",
        sql: r#"
-- The tenant registry of identity (not `tenants`, which lists the NGSI-LD tenant
-- names the broker has seen), users and their grants, API keys, sessions, pending
-- OpenID Connect sign-ins and the audit log. A platform grant or key has the tenant ''.
CREATE TABLE registered_tenants (
    code text PRIMARY KEY,
    name text NOT NULL,
    suspended boolean NOT NULL,
    public_types text[] NOT NULL,
    shared_with_prefecture boolean NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE users (
    id text PRIMARY KEY,
    username text NOT NULL UNIQUE,
    display_name text NOT NULL,
    email text,
    password_hash text,
    oidc_issuer text,
    oidc_subject text,
    failed_sign_ins bigint NOT NULL,
    locked_until timestamptz,
    disabled boolean NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_oidc_key ON users (oidc_issuer, oidc_subject)
    WHERE oidc_issuer IS NOT NULL AND oidc_subject IS NOT NULL;

CREATE TABLE user_grants (
    user_id text NOT NULL,
    tenant text NOT NULL,
    role text NOT NULL,
    PRIMARY KEY (user_id, tenant, role)
);
CREATE INDEX user_grants_by_grant_idx ON user_grants (tenant, role, user_id);

CREATE TABLE api_keys (
    id text PRIMARY KEY,
    tenant text NOT NULL,
    role text NOT NULL,
    scopes text[] NOT NULL,
    label text NOT NULL,
    secret_hash text NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX api_keys_by_tenant_idx ON api_keys (tenant, created_at);

CREATE TABLE sessions (
    token_hash text PRIMARY KEY,
    user_id text NOT NULL,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_by_user_idx ON sessions (user_id);

CREATE TABLE pending_sign_ins (
    state text PRIMARY KEY,
    data text NOT NULL,
    expires_at timestamptz NOT NULL
);

-- seq is assigned by the appender under an advisory lock (last + 1), not by a
-- sequence, so a rolled-back append leaves no gap in the chain.
CREATE TABLE audit_log (
    seq bigint PRIMARY KEY,
    at timestamptz NOT NULL,
    tenant text,
    actor text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    detail jsonb NOT NULL,
    prev_hash text NOT NULL,
    hash text NOT NULL
);
CREATE INDEX audit_log_by_tenant_idx ON audit_log (tenant, seq);
CREATE INDEX audit_log_by_actor_idx ON audit_log (actor, seq);
CREATE INDEX audit_log_by_target_idx ON audit_log (target, seq);

-- Append-only: the database itself refuses to change or remove a record. (Someone
-- able to disable the trigger can still do it; the hash chain then shows where.)
CREATE FUNCTION renkei_audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION renkei_audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION renkei_audit_log_append_only();
"#,
        then: None,
    },
    Migration {
        version: 4,
        name: "index only a prefix of long strings",
        // Strings are indexed by their first ngsi_ld::query::index::INDEXED_TEXT_CHARS
        // characters (a b-tree refuses rows over about 2.7 KB, so longer strings that
        // did not compress could not be stored), and queries compare that prefix: an
        // entity indexed with a longer string would be missed by an equality on it.
        sql: "",
        then: Some(Backfill::CutLongText),
    },
    Migration {
        version: 5,
        name: "subscriptions, change log and notification queue",
        // The change log is the outbox: a row per entity change of a tenant with
        // subscriptions, written in the entity's transaction and numbered in commit
        // order (writers serialise on an advisory lock from the insert to the commit,
        // see `subscriptions`). A queued notification with no `next_attempt_at` is
        // due at once; the index on the queue finds each subscription's oldest.
        sql: r#"
CREATE TABLE subscriptions (
    tenant text NOT NULL REFERENCES tenants (name),
    id text NOT NULL,
    doc jsonb NOT NULL,
    times_sent bigint NOT NULL DEFAULT 0,
    times_failed bigint NOT NULL DEFAULT 0,
    last_notification timestamptz,
    last_success timestamptz,
    last_failure timestamptz,
    consecutive_failures integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    seq bigserial NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX subscriptions_by_tenant_seq ON subscriptions (tenant, seq);

CREATE TABLE entity_changes (
    seq bigserial PRIMARY KEY,
    tenant text NOT NULL,
    entity_id text NOT NULL,
    before jsonb,
    after jsonb,
    at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dispatch_cursor (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq bigint NOT NULL
);
INSERT INTO dispatch_cursor (only_row, seq) VALUES (true, 0);

CREATE TABLE notification_queue (
    id bigserial PRIMARY KEY,
    tenant text NOT NULL,
    subscription_id text NOT NULL,
    payload jsonb NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    claimed_by text,
    claim_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_queue_by_subscription
    ON notification_queue (tenant, subscription_id, id);
"#,
        then: None,
    },
    Migration {
        version: 6,
        name: "entity history for the temporal API",
        // History is written by the entity writes in their own transaction (see
        // `temporal`). Every read of one entity attribute over a window of one time
        // property, or of its last N instances, is a range scan of one of the
        // `(tenant, entity_id, attr, <time>, seq)` indexes, never a scan of the whole
        // history. `seq` orders instances recorded at the same time as they were
        // recorded. A missing dataset id is stored as '' so that a series (attribute
        // and dataset id) is a plain key; the document keeps the real attribute.
        // `temporal_series` lists each entity's series so that lastN visits each
        // series' index range once instead of finding the series by scanning.
        sql: r#"
CREATE TABLE temporal_heads (
    tenant text NOT NULL,
    id text NOT NULL,
    types text[] NOT NULL,
    scopes text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    modified_at timestamptz NOT NULL,
    deleted_at timestamptz,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE temporal_instances (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant text NOT NULL,
    entity_id text NOT NULL,
    attr text NOT NULL,
    dataset_id text NOT NULL,
    instance_id text NOT NULL,
    observed_at timestamptz,
    created_at timestamptz,
    modified_at timestamptz,
    deleted_at timestamptz,
    doc jsonb NOT NULL
);
CREATE INDEX temporal_instances_observed_idx
    ON temporal_instances (tenant, entity_id, attr, observed_at, seq);
CREATE INDEX temporal_instances_created_idx
    ON temporal_instances (tenant, entity_id, attr, created_at, seq);
CREATE INDEX temporal_instances_modified_idx
    ON temporal_instances (tenant, entity_id, attr, modified_at, seq);
-- Deletion records are few: a partial index keeps reads on deletedAt a range scan.
CREATE INDEX temporal_instances_deleted_idx
    ON temporal_instances (tenant, entity_id, attr, deleted_at, seq)
    WHERE deleted_at IS NOT NULL;
CREATE INDEX temporal_instances_by_id_idx
    ON temporal_instances (tenant, entity_id, instance_id);

CREATE TABLE temporal_series (
    tenant text NOT NULL,
    entity_id text NOT NULL,
    attr text NOT NULL,
    dataset_id text NOT NULL,
    PRIMARY KEY (tenant, entity_id, attr, dataset_id)
);

CREATE TABLE temporal_rollups (
    tenant text NOT NULL,
    entity_id text NOT NULL,
    attr text NOT NULL,
    dataset_id text NOT NULL,
    hour timestamptz NOT NULL,
    count bigint NOT NULL,
    numeric_count bigint NOT NULL,
    sum double precision NOT NULL,
    sum_sq double precision NOT NULL,
    min double precision,
    max double precision,
    PRIMARY KEY (tenant, entity_id, attr, dataset_id, hour)
);
"#,
        then: None,
    },
    Migration {
        version: 7,
        name: "subscriptions epoch",
        // One number, moved by every creation, replacement and deletion of a
        // subscription in that write's transaction (see `subscriptions`), so that a
        // dispatcher on any node can tell whether the subscriptions it holds are still
        // the current ones with one cheap read instead of reading them all again.
        sql: r#"
CREATE TABLE subscription_epoch (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    n bigint NOT NULL
);
INSERT INTO subscription_epoch (only_row, n) VALUES (true, 0);
"#,
        then: None,
    },
    Migration {
        version: 8,
        name: "catalog packages and datastore tables",
        // Packages as documents with the columns they are looked up by; the change
        // counter the catalog's in-memory search index follows (catalog writes take
        // an advisory lock so change numbers commit in order, see `catalog`); the
        // datastore's tables live in their own schema, named by resource id, so that
        // `datastore_search_sql` runs with only that schema on its search path.
        sql: r#"
CREATE TABLE catalog_packages (
    id text PRIMARY KEY,
    name text NOT NULL UNIQUE,
    owner_org text NOT NULL,
    private boolean NOT NULL,
    state text NOT NULL,
    metadata_modified timestamptz NOT NULL,
    change bigint NOT NULL UNIQUE,
    doc jsonb NOT NULL
);
CREATE TABLE catalog_resources (
    resource_id text PRIMARY KEY,
    package_id text NOT NULL REFERENCES catalog_packages (id) ON DELETE CASCADE
);
CREATE INDEX catalog_resources_by_package ON catalog_resources (package_id);
CREATE TABLE catalog_state (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    last_change bigint NOT NULL,
    purges bigint NOT NULL
);
INSERT INTO catalog_state (only_row, last_change, purges) VALUES (true, 0, 0);
CREATE SCHEMA IF NOT EXISTS datastore;
CREATE TABLE datastore_tables (
    resource_id text PRIMARY KEY,
    definition jsonb NOT NULL
);
"#,
        then: None,
    },
    Migration {
        version: 9,
        name: "harvest sources and runs",
        // A source's lease (holder and expiry) is what lets one node at a time run
        // it: claims are conditional updates of these columns (see `harvest`).
        sql: r#"
CREATE TABLE harvest_sources (
    id text PRIMARY KEY,
    organization text NOT NULL,
    url text NOT NULL,
    title text NOT NULL,
    remote_organization text,
    interval_minutes integer,
    enabled boolean NOT NULL,
    created_at timestamptz NOT NULL,
    next_run_at timestamptz,
    lease_holder text,
    lease_until timestamptz
);
CREATE INDEX harvest_sources_by_organization ON harvest_sources (organization, created_at);
CREATE INDEX harvest_sources_by_next_run ON harvest_sources (next_run_at)
    WHERE next_run_at IS NOT NULL;
CREATE TABLE harvest_runs (
    id text PRIMARY KEY,
    source_id text NOT NULL REFERENCES harvest_sources (id) ON DELETE CASCADE,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    status text NOT NULL,
    created bigint NOT NULL,
    updated bigint NOT NULL,
    unchanged bigint NOT NULL,
    deleted bigint NOT NULL,
    errored bigint NOT NULL,
    errors jsonb NOT NULL
);
CREATE INDEX harvest_runs_by_source ON harvest_runs (source_id, started_at);
"#,
        then: None,
    },
    Migration {
        version: 10,
        name: "online applications",
        sql: r#"
CREATE TABLE procedures (
    tenant text NOT NULL,
    id text NOT NULL,
    version bigint NOT NULL,
    shared boolean NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL,
    document jsonb NOT NULL,
    PRIMARY KEY (tenant, id, version)
);
CREATE INDEX procedures_shared ON procedures (tenant, id) WHERE shared;
CREATE TABLE applications (
    id text PRIMARY KEY,
    tenant text NOT NULL,
    procedure_id text NOT NULL,
    procedure_version bigint NOT NULL,
    applicant text NOT NULL,
    state text NOT NULL,
    reception_number text,
    idempotency_key text,
    due_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    document jsonb NOT NULL,
    version bigint NOT NULL,
    UNIQUE (applicant, idempotency_key)
);
CREATE INDEX applications_by_tenant_state_due ON applications (tenant, state, due_at);
CREATE INDEX applications_by_procedure ON applications (tenant, procedure_id);
CREATE INDEX applications_by_applicant ON applications (applicant, created_at);
CREATE INDEX applications_by_updated ON applications (updated_at);
CREATE TABLE application_history (
    application_id text NOT NULL REFERENCES applications (id),
    seq bigint NOT NULL,
    at timestamptz NOT NULL,
    entry jsonb NOT NULL,
    PRIMARY KEY (application_id, seq)
);
CREATE TABLE application_outbox (
    id bigserial PRIMARY KEY,
    tenant text NOT NULL,
    application_id text NOT NULL,
    channel text NOT NULL,
    payload jsonb NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    leased_until timestamptz
);
CREATE INDEX application_outbox_by_due ON application_outbox (next_attempt_at);
CREATE TABLE application_attachments (
    id text PRIMARY KEY,
    application_id text NOT NULL REFERENCES applications (id),
    requirement text NOT NULL,
    file_name text NOT NULL,
    media_type text NOT NULL,
    size bigint NOT NULL,
    digest text NOT NULL,
    sealed_content text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX application_attachments_by_application
    ON application_attachments (application_id, created_at);
CREATE TABLE application_payments (
    id text PRIMARY KEY,
    tenant text NOT NULL,
    application_id text NOT NULL REFERENCES applications (id),
    provider text NOT NULL,
    provider_ref text,
    state text NOT NULL,
    amount_yen bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    document jsonb NOT NULL,
    version bigint NOT NULL,
    UNIQUE (provider, provider_ref)
);
CREATE INDEX application_payments_by_application
    ON application_payments (application_id, created_at);
CREATE INDEX application_payments_by_state ON application_payments (state, created_at);
CREATE TABLE application_payment_events (
    payment_id text NOT NULL REFERENCES application_payments (id),
    event_id text NOT NULL,
    PRIMARY KEY (payment_id, event_id)
);
CREATE TABLE application_documents (
    code text PRIMARY KEY,
    tenant text NOT NULL,
    application_id text NOT NULL REFERENCES applications (id),
    kind text NOT NULL,
    reception_number text NOT NULL,
    digest text NOT NULL,
    issued_at timestamptz NOT NULL,
    pdf bytea NOT NULL
);
CREATE INDEX application_documents_by_application
    ON application_documents (application_id, issued_at);
CREATE TABLE approval_delegations (
    id text PRIMARY KEY,
    tenant text NOT NULL,
    principal text NOT NULL,
    delegate text NOT NULL,
    from_at timestamptz NOT NULL,
    until_at timestamptz NOT NULL
);
CREATE INDEX approval_delegations_by_tenant ON approval_delegations (tenant, from_at);
CREATE TABLE sequences (
    name text PRIMARY KEY,
    value bigint NOT NULL
);
"#,
        then: None,
    },
    Migration {
        version: 11,
        name: "context source registrations",
        // Each tenant's registrations as documents by id, listed in creation order
        // (`seq`); see `registrations`. The tenant is created on first write, as for
        // entities and subscriptions.
        sql: r#"
CREATE TABLE csource_registrations (
    seq bigserial PRIMARY KEY,
    tenant text NOT NULL REFERENCES tenants (name),
    id text NOT NULL,
    doc jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    UNIQUE (tenant, id)
);
"#,
        then: None,
    },
];

/// Applies every migration the database has not seen yet.
pub(crate) async fn run(client: &mut Client) -> Result<(), StoreError> {
    run_up_to(client, i32::MAX).await
}

/// Applies the migrations the database has not seen yet up to `last` (tests use it
/// to make a database of an older version).
pub(crate) async fn run_up_to(client: &mut Client, last: i32) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(StoreError::backend)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(StoreError::backend)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS renkei_schema_migrations (
            version integer PRIMARY KEY,
            name text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await
    .map_err(StoreError::backend)?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM renkei_schema_migrations", &[])
        .await
        .map_err(StoreError::backend)?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(StoreError::backend)?;
    for migration in MIGRATIONS {
        if applied.contains(&migration.version) || migration.version > last {
            continue;
        }
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applying schema migration"
        );
        tx.batch_execute(migration.sql)
            .await
            .map_err(|e| migration_failed(migration, e))?;
        match migration.then {
            Some(Backfill::IndexEntities) => crate::index::reindex_all(&tx).await?,
            Some(Backfill::CutLongText) => crate::index::reindex_long_text(&tx).await?,
            None => {}
        }
        tx.execute(
            "INSERT INTO renkei_schema_migrations (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .await
        .map_err(StoreError::backend)?;
    }
    if let Some(newest) = applied.iter().max() {
        let known = MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0);
        if *newest > known {
            // A newer node migrated this database; running on is its operator's call.
            tracing::warn!(
                database_version = newest,
                known_version = known,
                "database schema is newer than this build knows"
            );
        }
    }
    tx.commit().await.map_err(StoreError::backend)
}

/// A failed migration, naming which one (the driver's error alone does not).
#[derive(Debug, thiserror::Error)]
#[error("schema migration {version} ({name}) failed: {source}")]
struct MigrationError {
    version: i32,
    name: &'static str,
    source: tokio_postgres::Error,
}

fn migration_failed(migration: &Migration, source: tokio_postgres::Error) -> StoreError {
    StoreError::backend(MigrationError {
        version: migration.version,
        name: migration.name,
        source,
    })
}
