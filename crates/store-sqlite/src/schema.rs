//! The SQLite schema and its versioned migrations. Each migration runs once, in a
//! transaction with the row that records it, so a crash mid-migration leaves the
//! database at the previous version.

use rusqlite::{Connection, OptionalExtension};

/// A migration: SQL, or SQL followed by a step in Rust (to index existing rows).
struct Migration {
    sql: &'static str,
    then: Option<fn(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>>,
}

/// Migrations in order; the index + 1 is the version.
const MIGRATIONS: &[Migration] = &[
    Migration {
        sql: V1,
        then: None,
    },
    // 2 also filled the R*Tree of the entities already stored; 17 replaces it with
    // `entities.cell` and locates every entity, so that step now does nothing.
    Migration {
        sql: V2,
        then: None,
    },
    Migration {
        sql: V3,
        then: None,
    },
    // 4 recomputed the `entity_values` rows of long strings once they were indexed by a
    // prefix; 13 recomputes every entity's values, so it now does nothing.
    Migration {
        sql: "",
        then: None,
    },
    Migration {
        sql: V5,
        then: None,
    },
    Migration {
        sql: V6,
        then: None,
    },
    Migration {
        sql: V7,
        then: None,
    },
    Migration {
        sql: V8,
        then: None,
    },
    Migration {
        sql: V9,
        then: None,
    },
    Migration {
        sql: V10,
        then: None,
    },
    Migration {
        sql: V11,
        then: None,
    },
    Migration {
        sql: V12,
        then: None,
    },
    Migration {
        sql: V13,
        then: Some(store_values),
    },
    Migration {
        sql: V14,
        then: None,
    },
    Migration {
        sql: V15,
        then: None,
    },
    Migration {
        sql: V16,
        then: Some(write_out_kept_first_writes),
    },
    Migration {
        sql: V17,
        then: Some(locate_all),
    },
    Migration {
        sql: V18,
        then: None,
    },
    Migration {
        sql: V19,
        then: None,
    },
];

const V1: &str =
    // 1: entities with their types (for indexed type queries), tenants, contexts.
    "CREATE TABLE tenants (
        name TEXT PRIMARY KEY,
        created_at TEXT NOT NULL
     );
     CREATE TABLE entities (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        doc TEXT NOT NULL,
        UNIQUE (tenant, id)
     );
     CREATE TABLE entity_types (
        tenant TEXT NOT NULL,
        type TEXT NOT NULL,
        seq INTEGER NOT NULL REFERENCES entities (seq) ON DELETE CASCADE,
        PRIMARY KEY (tenant, type, seq)
     ) WITHOUT ROWID;
     CREATE INDEX entity_types_by_seq ON entity_types (seq);
     CREATE TABLE contexts (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at TEXT NOT NULL
     );";

/// 2: indexes that let queries narrow `q` and `geoQ` in SQL: the comparable values of
/// every attribute, the bounding box of `location` (an R*Tree), and creation order
/// within a tenant. (13 moved the values into the entity's row.)
///
/// `entity_values.val` is a REAL for numbers, TEXT for strings, and an empty BLOB for a
/// bare "has this attribute" row; one clustered key (no separate index) keeps each row
/// a single b-tree insert.
const V2: &str = "
    CREATE TABLE entity_values (
        seq INTEGER NOT NULL REFERENCES entities (seq) ON DELETE CASCADE,
        attr TEXT NOT NULL,
        val NOT NULL,
        PRIMARY KEY (seq, attr, val)
    ) WITHOUT ROWID;
    CREATE VIRTUAL TABLE entity_location USING rtree (seq, min_lon, max_lon, min_lat, max_lat);
    CREATE INDEX entities_by_tenant ON entities (tenant, seq);";

/// 3: identity and access (see `identity`): the tenant registry (not `tenants`, which
/// lists the NGSI-LD tenant names the broker has seen), users and their grants, API
/// keys, sessions, pending OpenID Connect sign-ins and the audit log.
///
/// Timestamps are RFC 3339 text in UTC with microseconds, fixed width, so they sort
/// and compare as text. A platform grant or key has the tenant `''`. The audit log is
/// append-only: triggers abort any UPDATE or DELETE of its rows (its hash chain then
/// shows whatever is done to the file by other means).
const V3: &str = "
    CREATE TABLE registered_tenants (
        code TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        suspended INTEGER NOT NULL,
        public_types TEXT NOT NULL,
        shared_with_prefecture INTEGER NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        display_name TEXT NOT NULL,
        email TEXT,
        password_hash TEXT,
        oidc_issuer TEXT,
        oidc_subject TEXT,
        failed_sign_ins INTEGER NOT NULL,
        locked_until TEXT,
        disabled INTEGER NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE UNIQUE INDEX users_by_oidc ON users (oidc_issuer, oidc_subject)
        WHERE oidc_issuer IS NOT NULL AND oidc_subject IS NOT NULL;
    CREATE TABLE user_grants (
        user_id TEXT NOT NULL,
        tenant TEXT NOT NULL,
        role TEXT NOT NULL,
        PRIMARY KEY (user_id, tenant, role)
    ) WITHOUT ROWID;
    CREATE INDEX user_grants_by_grant ON user_grants (tenant, role, user_id);
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        role TEXT NOT NULL,
        scopes TEXT NOT NULL,
        label TEXT NOT NULL,
        secret_hash TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT,
        revoked_at TEXT
    );
    CREATE INDEX api_keys_by_tenant ON api_keys (tenant, created_at);
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        csrf_token TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    );
    CREATE INDEX sessions_by_user ON sessions (user_id);
    CREATE TABLE pending_sign_ins (
        state TEXT PRIMARY KEY,
        data TEXT NOT NULL,
        expires_at TEXT NOT NULL
    );
    CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        tenant TEXT,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX audit_log_by_tenant ON audit_log (tenant, seq);
    CREATE INDEX audit_log_by_actor ON audit_log (actor, seq);
    CREATE INDEX audit_log_by_target ON audit_log (target, seq);
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN
        SELECT RAISE(ABORT, 'the audit log is append-only');
    END;
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN
        SELECT RAISE(ABORT, 'the audit log is append-only');
    END;";

/// 5: subscriptions and what delivers their notifications (see `subscriptions`): the
/// subscriptions with their delivery status, the change log written in the same
/// transaction as each entity change of a tenant with subscriptions, the dispatch
/// cursor over it (one row), and the queue of notifications.
///
/// `AUTOINCREMENT` on the change log and the queue: their rows are deleted as they are
/// consumed, and a plain rowid would hand out a number again once the newest row is
/// gone, below the cursor. A queued notification with no `next_attempt_at` is due at
/// once; timestamps are fixed-width RFC 3339 text, so they compare as text.
const V5: &str = "
    CREATE TABLE subscriptions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        doc TEXT NOT NULL,
        times_sent INTEGER NOT NULL DEFAULT 0,
        times_failed INTEGER NOT NULL DEFAULT 0,
        last_notification TEXT,
        last_success TEXT,
        last_failure TEXT,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        UNIQUE (tenant, id)
    );
    CREATE TABLE entity_changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        before TEXT,
        after TEXT,
        at TEXT NOT NULL
    );
    CREATE TABLE dispatch_cursor (
        only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
        seq INTEGER NOT NULL
    );
    INSERT INTO dispatch_cursor (only_row, seq) VALUES (1, 0);
    CREATE TABLE notification_queue (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL,
        subscription_id TEXT NOT NULL,
        payload TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        claimed_by TEXT,
        claim_until TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX notification_queue_by_subscription
        ON notification_queue (tenant, subscription_id, id);";

/// 6: entity history for the temporal API (see `temporal`): a head per entity with a
/// history, every attribute instance ever recorded, and the hourly rollups of each
/// series (attribute and dataset id) kept beside them.
///
/// Instances and rollups refer to their history by the head's `hid` rather than by
/// tenant and entity id: their keys are short, and a new entity's history is numbered
/// after every other, so the index entries of a burst of creations are appended to
/// the end of each index instead of dirtying a page per entity and index at every
/// commit (which made creation several times slower). A dataset id is `''` for an
/// instance without one (datasetIds are URIs, never empty), so that one series is
/// one equality and the rollup key has no NULL in it. `seq` gives recording order (a
/// plain rowid: deleting rows may free the newest numbers, but a new row is still
/// numbered after every row that remains). The per-series indexes end in the time
/// column and, implicitly, `seq`: a read of one series in a window, in time order or
/// the last N of it, is one range of one index. `created_at` and `modified_at` index
/// every row (they also serve finding the series of a history); `observed_at` and
/// `deleted_at` only the rows having them. Timestamps are fixed-width RFC 3339 text,
/// so they compare as text.
const V6: &str = "
    CREATE TABLE temporal_heads (
        hid INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        types TEXT NOT NULL,
        scopes TEXT NOT NULL,
        created_at TEXT NOT NULL,
        modified_at TEXT NOT NULL,
        deleted_at TEXT,
        UNIQUE (tenant, id)
    );
    CREATE TABLE temporal_instances (
        seq INTEGER PRIMARY KEY,
        hid INTEGER NOT NULL,
        attr TEXT NOT NULL,
        dataset_id TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        observed_at TEXT,
        created_at TEXT,
        modified_at TEXT,
        deleted_at TEXT,
        doc TEXT NOT NULL
    );
    CREATE INDEX temporal_instances_by_observed
        ON temporal_instances (hid, attr, dataset_id, observed_at)
        WHERE observed_at IS NOT NULL;
    CREATE INDEX temporal_instances_by_created
        ON temporal_instances (hid, attr, dataset_id, created_at);
    CREATE INDEX temporal_instances_by_modified
        ON temporal_instances (hid, attr, dataset_id, modified_at);
    CREATE INDEX temporal_instances_by_deleted
        ON temporal_instances (hid, attr, dataset_id, deleted_at)
        WHERE deleted_at IS NOT NULL;
    CREATE INDEX temporal_instances_by_instance_id
        ON temporal_instances (hid, attr, instance_id);
    CREATE TABLE temporal_rollups (
        hid INTEGER NOT NULL,
        attr TEXT NOT NULL,
        dataset_id TEXT NOT NULL,
        hour TEXT NOT NULL,
        count_all INTEGER NOT NULL,
        count_numeric INTEGER NOT NULL,
        sum_value REAL NOT NULL,
        sum_sq REAL NOT NULL,
        min_value REAL,
        max_value REAL,
        PRIMARY KEY (hid, attr, dataset_id, hour)
    ) WITHOUT ROWID;";

/// 7: the subscriptions epoch: one number, moved in the transaction of every
/// subscription creation, replacement and deletion (see `subscriptions`), so the
/// dispatcher can tell with one cheap read whether the subscriptions it holds are
/// still the ones in force. One row, like `dispatch_cursor`.
const V7: &str = "
    CREATE TABLE subscription_epoch (
        only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
        n INTEGER NOT NULL
    );
    INSERT INTO subscription_epoch (only_row, n) VALUES (1, 0);";

/// 8: cheaper history writes. Every recorded instance cost a table row and four index
/// entries; the instances are now one clustered b-tree (`WITHOUT ROWID`) keyed by
/// series, `createdAt` and recording order, so one insert stores an instance without
/// an `observedAt` (two with one, for the partial `observedAt` index). A read of one
/// series by `createdAt` is one range of the table itself. The `modifiedAt` and
/// instance-id indexes are gone: those reads range over the attribute's rows in the
/// table and filter, bounded by that attribute's history (`modifiedAt` equals
/// `createdAt` unless an instance was replaced, and both reads are rare).
///
/// A clustered key has no NULL in it: a missing `createdAt` is stored as `''` (below
/// every stamp, and outside every window). `seq`, no longer a rowid, is handed out per
/// history by its head (`last_seq`, the last number given): recording order matters
/// only within one history, and the head's row is written by every recording anyway.
/// The per-series indexes end in `seq` explicitly, as the rowid ended them before.
/// Rows keep their numbers; every head continues after the largest.
const V8: &str = "
    CREATE TABLE temporal_instances_v8 (
        hid INTEGER NOT NULL,
        attr TEXT NOT NULL,
        dataset_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        seq INTEGER NOT NULL,
        instance_id TEXT NOT NULL,
        observed_at TEXT,
        modified_at TEXT,
        deleted_at TEXT,
        doc TEXT NOT NULL,
        PRIMARY KEY (hid, attr, dataset_id, created_at, seq)
    ) WITHOUT ROWID;
    INSERT INTO temporal_instances_v8 (hid, attr, dataset_id, created_at, seq,
            instance_id, observed_at, modified_at, deleted_at, doc)
        SELECT hid, attr, dataset_id, coalesce(created_at, ''), seq,
            instance_id, observed_at, modified_at, deleted_at, doc
        FROM temporal_instances;
    DROP TABLE temporal_instances;
    ALTER TABLE temporal_instances_v8 RENAME TO temporal_instances;
    CREATE INDEX temporal_instances_by_observed
        ON temporal_instances (hid, attr, dataset_id, observed_at, seq)
        WHERE observed_at IS NOT NULL;
    CREATE INDEX temporal_instances_by_deleted
        ON temporal_instances (hid, attr, dataset_id, deleted_at, seq)
        WHERE deleted_at IS NOT NULL;
    ALTER TABLE temporal_heads ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;
    UPDATE temporal_heads
        SET last_seq = (SELECT coalesce(max(seq), 0) FROM temporal_instances);";

/// The catalog: packages as documents with the columns they are looked up by, the
/// resource ids each holds, the change counter (see `store::catalog`), and the
/// definitions of datastore tables (the tables themselves are created per resource).
const V9: &str = "
    CREATE TABLE catalog_packages (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        owner_org TEXT NOT NULL,
        private INTEGER NOT NULL,
        state TEXT NOT NULL,
        metadata_modified TEXT NOT NULL,
        change INTEGER NOT NULL UNIQUE,
        doc TEXT NOT NULL
    );
    CREATE TABLE catalog_resources (
        resource_id TEXT PRIMARY KEY,
        package_id TEXT NOT NULL REFERENCES catalog_packages (id) ON DELETE CASCADE
    );
    CREATE INDEX catalog_resources_by_package ON catalog_resources (package_id);
    CREATE TABLE catalog_state (
        only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
        last_change INTEGER NOT NULL,
        purges INTEGER NOT NULL
    );
    INSERT INTO catalog_state (only_row, last_change, purges) VALUES (1, 0, 0);
    CREATE TABLE datastore_tables (
        resource_id TEXT PRIMARY KEY,
        definition TEXT NOT NULL
    );";

/// 10: harvest sources with the lease that lets one node at a time run each, and
/// the record of every run (see `harvest`).
const V10: &str = "
    CREATE TABLE harvest_sources (
        id TEXT PRIMARY KEY,
        organization TEXT NOT NULL,
        url TEXT NOT NULL,
        title TEXT NOT NULL,
        remote_organization TEXT,
        interval_minutes INTEGER,
        enabled INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        next_run_at TEXT,
        lease_holder TEXT,
        lease_until TEXT
    );
    CREATE INDEX harvest_sources_by_organization ON harvest_sources (organization, created_at);
    CREATE INDEX harvest_sources_by_next_run ON harvest_sources (next_run_at)
        WHERE next_run_at IS NOT NULL;
    CREATE TABLE harvest_runs (
        id TEXT PRIMARY KEY,
        source_id TEXT NOT NULL REFERENCES harvest_sources (id) ON DELETE CASCADE,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,
        created INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        unchanged INTEGER NOT NULL,
        deleted INTEGER NOT NULL,
        errored INTEGER NOT NULL,
        errors TEXT NOT NULL
    );
    CREATE INDEX harvest_runs_by_source ON harvest_runs (source_id, started_at);";

/// 11: online applications: versioned procedures, applications with their history,
/// outbox, attachments, payments (with the provider events already applied), issued
/// documents, delegations of approval and named counters (see `applications`).
const V11: &str = "
    CREATE TABLE procedures (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        shared INTEGER NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        document TEXT NOT NULL,
        PRIMARY KEY (tenant, id, version)
    );
    CREATE INDEX procedures_shared ON procedures (shared, tenant, id);
    CREATE TABLE applications (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        procedure_id TEXT NOT NULL,
        procedure_version INTEGER NOT NULL,
        applicant TEXT NOT NULL,
        state TEXT NOT NULL,
        reception_number TEXT,
        idempotency_key TEXT,
        due_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        document TEXT NOT NULL,
        version INTEGER NOT NULL,
        UNIQUE (applicant, idempotency_key)
    );
    CREATE INDEX applications_by_tenant_state_due ON applications (tenant, state, due_at);
    CREATE INDEX applications_by_procedure ON applications (tenant, procedure_id);
    CREATE INDEX applications_by_applicant ON applications (applicant, created_at);
    CREATE INDEX applications_by_updated ON applications (updated_at);
    CREATE TABLE application_history (
        application_id TEXT NOT NULL REFERENCES applications (id),
        seq INTEGER NOT NULL,
        at TEXT NOT NULL,
        entry TEXT NOT NULL,
        PRIMARY KEY (application_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE application_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL,
        application_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        payload TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt_at TEXT NOT NULL,
        leased_until TEXT
    );
    CREATE INDEX application_outbox_by_due ON application_outbox (next_attempt_at);
    CREATE TABLE application_attachments (
        id TEXT PRIMARY KEY,
        application_id TEXT NOT NULL REFERENCES applications (id),
        requirement TEXT NOT NULL,
        file_name TEXT NOT NULL,
        media_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        digest TEXT NOT NULL,
        sealed_content TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX application_attachments_by_application
        ON application_attachments (application_id, created_at);
    CREATE TABLE application_payments (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        application_id TEXT NOT NULL REFERENCES applications (id),
        provider TEXT NOT NULL,
        provider_ref TEXT,
        state TEXT NOT NULL,
        amount_yen INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        document TEXT NOT NULL,
        version INTEGER NOT NULL,
        UNIQUE (provider, provider_ref)
    );
    CREATE INDEX application_payments_by_application
        ON application_payments (application_id, created_at);
    CREATE INDEX application_payments_by_state ON application_payments (state, created_at);
    CREATE TABLE application_payment_events (
        payment_id TEXT NOT NULL REFERENCES application_payments (id),
        event_id TEXT NOT NULL,
        PRIMARY KEY (payment_id, event_id)
    ) WITHOUT ROWID;
    CREATE TABLE application_documents (
        code TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        application_id TEXT NOT NULL REFERENCES applications (id),
        kind TEXT NOT NULL,
        reception_number TEXT NOT NULL,
        digest TEXT NOT NULL,
        issued_at TEXT NOT NULL,
        pdf BLOB NOT NULL
    );
    CREATE INDEX application_documents_by_application
        ON application_documents (application_id, issued_at);
    CREATE TABLE approval_delegations (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        principal TEXT NOT NULL,
        delegate TEXT NOT NULL,
        from_at TEXT NOT NULL,
        until_at TEXT NOT NULL
    );
    CREATE INDEX approval_delegations_by_tenant ON approval_delegations (tenant, from_at);
    CREATE TABLE sequences (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );";

/// 12: context source registrations (see `registrations`): each tenant's documents
/// by id, listed in creation order (`seq`). JSON as text, timestamps as fixed-width
/// RFC 3339 text, as in the other tables.
const V12: &str = "
    CREATE TABLE csource_registrations (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        doc TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (tenant, id)
    );";

/// 13: the comparable values of an entity move from rows of `entity_values` into one
/// column of its own row (see `values`): a query only ever probed them per candidate,
/// and writing a row per value cost the writer a fifth of its time under batch
/// upserts. Rows keep `NULL` until [`store_values`] fills them (a row left so is
/// admitted by every prefilter).
const V13: &str = "
    ALTER TABLE entities ADD COLUMN vals BLOB;
    DROP TABLE entity_values;";

/// 14: an entity's types in its own row (`entities.types`, see
/// [`crate::writer::types_text`]) instead of a row per type in `entity_types` and its
/// index by entity. A type query only ever probed those per candidate, by the
/// entity's row id (a plain union of types was an `EXISTS` on them); it now reads the
/// candidate's column. Each stored entity wrote two more B-trees, about a tenth of
/// the pages a commit of new entities wrote. A row without types (none stored for it)
/// is admitted by every type; the evaluator decides.
const V14: &str = "
    ALTER TABLE entities ADD COLUMN types TEXT;
    UPDATE entities SET types = (
        SELECT char(31) || group_concat(type, char(31)) || char(31)
        FROM entity_types t WHERE t.seq = entities.seq);
    DROP TABLE entity_types;";

/// 15: a history's first write kept whole in its head (`temporal_heads.first_write`,
/// see `temporal`): the instances of an entity's creation as one text instead of a
/// row each in `temporal_instances`, until the history next grows or is edited.
/// Those rows were two thirds of what the writer did to create an entity, and an
/// entity written once (an observation, an imported record) never needs them. The
/// column is last in the row, so reading the head's other columns never reads it.
/// Existing heads hold `NULL`: their instances are all in rows already.
const V15: &str = "
    ALTER TABLE temporal_heads ADD COLUMN first_write TEXT;";

/// 16: a history's first write implied by its entity's stored document instead
/// (`temporal_heads.first_write_ids`, see `temporal`): the head holds only the UUID
/// its instances' ids derive from, and their instant is the head's `created_at`.
/// Writing the kept text still cost the encoding of every instance and its bytes.
/// The first writes version 15 kept are written out as rows
/// ([`write_out_kept_first_writes`]) and its column dropped.
const V16: &str = "
    ALTER TABLE temporal_heads ADD COLUMN first_write_ids TEXT;";

/// 17: an entity's location kept as the spatial cell of its box in its own row
/// (`entities.cell`, see `cells`), with an index on it, instead of its box in an
/// R*Tree. Inserting into the R*Tree was about a third of the writer's time per
/// entity; a B-tree index takes a fraction of that. A row without a location has no
/// cell and no index entry. The index leaves the tenant out: its keys compare as
/// integers alone, and tenants mostly keep places of their own (a query's tenant
/// is checked on each candidate's row). `entity_cell_levels` lists the levels above
/// the last where any box has been kept (never pruned: a level listed with no box
/// left only costs a query one search). [`locate_all`] then fills both.
const V17: &str = "
    ALTER TABLE entities ADD COLUMN cell INTEGER;
    DROP TABLE entity_location;
    CREATE INDEX entities_by_cell ON entities (cell) WHERE cell IS NOT NULL;
    CREATE TABLE entity_cell_levels (level INTEGER PRIMARY KEY);";

/// 18: each tenant's entities in a range of row ids of their own (see
/// [`crate::writer::TENANT_ROWS`]): tenants are numbered (`tenants.no`, the default
/// tenant being 0) and every stored entity's row id moves into its tenant's range,
/// keeping the order of creation. The index by tenant and creation order goes: a
/// tenant's scan is a range of the table. So does `AUTOINCREMENT`, the writer giving
/// the ids. Together they cost about a fifth of the writer's instructions per new
/// entity; without them its instructions per batch-upserted entity fell by 12 %.
const V18: &str = "
    CREATE TABLE tenants_v18 (
        no INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    );
    INSERT INTO tenants_v18 (name, created_at)
        SELECT name, created_at FROM tenants WHERE name <> '' ORDER BY rowid;
    INSERT OR IGNORE INTO tenants_v18 (name, created_at)
        SELECT DISTINCT tenant, strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM entities
        WHERE tenant <> '' ORDER BY tenant;
    DROP TABLE tenants;
    ALTER TABLE tenants_v18 RENAME TO tenants;
    CREATE TABLE entities_v18 (
        seq INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        doc TEXT NOT NULL,
        vals BLOB,
        types TEXT,
        cell INTEGER,
        UNIQUE (tenant, id)
    );
    INSERT INTO entities_v18 (seq, tenant, id, doc, vals, types, cell)
        SELECT coalesce((SELECT t.no FROM tenants t WHERE t.name = e.tenant), 0) * 1099511627776
                   + e.seq,
               e.tenant, e.id, e.doc, e.vals, e.types, e.cell
        FROM entities e ORDER BY e.seq;
    DROP TABLE entities;
    ALTER TABLE entities_v18 RENAME TO entities;
    CREATE INDEX entities_by_cell ON entities (cell) WHERE cell IS NOT NULL;
    DELETE FROM sqlite_sequence WHERE name = 'entities';";

/// 19: a history implied whole by its entity's row (`entities.history_at` and
/// `history_ids`, see `temporal`) instead of by a head of its own: a new entity
/// writes no head row until its second write. Each head cost the writer a row and an
/// entry in the index by tenant and id, about a third of its instructions per new
/// entity. Every head of version 16 that implied its first write implied its whole
/// history (a later write wrote it out), so its instant and ids move to its entity's
/// row and the head goes. A head that implied a first write from an entity no longer
/// stored (which no write leaves) keeps an empty history, as its reads already failed.
const V19: &str = "
    ALTER TABLE entities ADD COLUMN history_at TEXT;
    ALTER TABLE entities ADD COLUMN history_ids TEXT;
    UPDATE entities SET (history_at, history_ids) = (
        SELECT h.created_at, h.first_write_ids FROM temporal_heads h
        WHERE h.tenant = entities.tenant AND h.id = entities.id)
    WHERE EXISTS (
        SELECT 1 FROM temporal_heads h
        WHERE h.tenant = entities.tenant AND h.id = entities.id
            AND h.first_write_ids IS NOT NULL);
    DELETE FROM temporal_heads WHERE first_write_ids IS NOT NULL AND EXISTS (
        SELECT 1 FROM entities e
        WHERE e.tenant = temporal_heads.tenant AND e.id = temporal_heads.id);
    ALTER TABLE temporal_heads DROP COLUMN first_write_ids;";

/// 16: the instances of every first write kept in version 15's text, inserted as the
/// rows a later write would have expanded them into (numbered from 1 in their
/// order), then the column dropped. The text's records end with the ASCII record
/// separator and their eight fields (attribute, dataset id, instance id,
/// `observedAt`, `createdAt`, `modifiedAt`, `deletedAt`, document) each with the
/// unit separator; an empty stamp is none, but `createdAt` is stored as it is.
fn write_out_kept_first_writes(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let kept: Vec<(i64, String)> = {
        let mut select = tx
            .prepare("SELECT hid, first_write FROM temporal_heads WHERE first_write IS NOT NULL")?;
        let rows = select.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut insert = tx.prepare(
        "INSERT INTO temporal_instances (hid, attr, dataset_id, instance_id, observed_at,
             created_at, modified_at, deleted_at, doc, seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for (hid, text) in kept.into_iter().filter(|(_, text)| !text.is_empty()) {
        let Some(records) = text.strip_suffix('\u{1e}') else {
            return Err(unreadable_kept(hid));
        };
        for (record, seq) in records.split('\u{1e}').zip(1_i64..) {
            let fields: Vec<&str> = record.split('\u{1f}').collect();
            let [attr, dataset_id, instance_id, observed_at, created_at, modified_at, deleted_at, doc, ""] =
                fields[..]
            else {
                return Err(unreadable_kept(hid));
            };
            let opt = |field: &str| (!field.is_empty()).then(|| field.to_owned());
            insert.execute(rusqlite::params![
                hid,
                attr,
                dataset_id,
                instance_id,
                opt(observed_at),
                created_at,
                opt(modified_at),
                opt(deleted_at),
                doc,
                seq
            ])?;
        }
    }
    tx.execute_batch("ALTER TABLE temporal_heads DROP COLUMN first_write")
}

/// A version-15 kept first write (of the head `hid`) that is not its text.
fn unreadable_kept(hid: i64) -> rusqlite::Error {
    #[derive(Debug, thiserror::Error)]
    #[error("the first write kept in the head of history {0} is not version 15's text")]
    struct UnreadableKept(i64);
    rusqlite::Error::FromSqlConversionFailure(
        1,
        rusqlite::types::Type::Text,
        Box::new(UnreadableKept(hid)),
    )
}

/// Calls `each` with every stored entity that decodes, in row order, a thousand rows
/// at a time so that a large store is never held in memory. An unreadable document
/// fails at query time too; it is skipped here.
fn for_each_entity(
    tx: &rusqlite::Transaction<'_>,
    mut each: impl FnMut(i64, &ngsi_ld::model::Entity) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let mut after = i64::MIN;
    loop {
        let rows: Vec<(i64, String)> = {
            let mut statement = tx.prepare_cached(
                "SELECT seq, doc FROM entities WHERE seq > ?1 ORDER BY seq LIMIT 1000",
            )?;
            let rows = statement.query_map([after], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let Some((last, _)) = rows.last() else {
            return Ok(());
        };
        after = *last;
        for (seq, doc) in rows {
            if let Ok(entity) = store::doc::decode_entity(&doc) {
                each(seq, &entity)?;
            }
        }
    }
}

/// 17: the cell of every stored entity with a location, and the levels they are at.
fn locate_all(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    for_each_entity(tx, |seq, entity| {
        let Some(cell) = crate::writer::cell_of(entity) else {
            return Ok(());
        };
        tx.prepare_cached("UPDATE entities SET cell = ?1 WHERE seq = ?2")?
            .execute(rusqlite::params![cell, seq])?;
        crate::writer::note_cell_level(tx, cell)
    })
}

/// 13: every stored entity's comparable values, in its row.
fn store_values(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    for_each_entity(tx, |seq, entity| {
        tx.prepare_cached("UPDATE entities SET vals = ?1 WHERE seq = ?2")?
            .execute(rusqlite::params![crate::values::of_entity(entity), seq])
            .map(drop)
    })
}

/// Connection settings every connection needs: WAL so readers never block the
/// writer, `synchronous=FULL` so a committed write survives power loss.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // 16 KiB pages hold several entity documents (about 2 KiB each) per page instead of
    // one; only a new database takes it, before WAL is switched on.
    conn.pragma_update(None, "page_size", 16384)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // 4 MiB of page cache (negative: KiB) for the writer's index lookups; readers set
    // their own. The whole process must stay small with a million entities stored.
    conn.pragma_update(None, "cache_size", -4096)?;
    // Checkpoint every 2000 pages (32 MiB) rather than 1000: fewer, larger copies of
    // the log into the database under sustained writes. The writer's threshold is
    // raised to a backstop once a checkpointer thread takes over (see `checkpoint`).
    conn.pragma_update(None, "wal_autocheckpoint", 2000)?;
    // Temporary b-trees (sorts, and the statement journals of multi-row writes) stay
    // in memory rather than in files.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// Brings the schema to the newest version.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS renkei_schema_migrations (
            version INTEGER PRIMARY KEY,
            applied_at TEXT NOT NULL
         )",
    )?;
    for (index, migration) in MIGRATIONS.iter().enumerate() {
        let version = index as i64 + 1;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let applied: Option<i64> = tx
            .query_row(
                "SELECT version FROM renkei_schema_migrations WHERE version = ?1",
                [version],
                |row| row.get(0),
            )
            .optional()?;
        if applied.is_none() {
            tx.execute_batch(migration.sql)?;
            if let Some(step) = migration.then {
                step(&tx)?;
            }
            tx.execute(
                "INSERT INTO renkei_schema_migrations (version, applied_at) VALUES (?1, ?2)",
                rusqlite::params![version, chrono::Utc::now().to_rfc3339()],
            )?;
            tracing::info!(version, "applied SQLite migration");
        }
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ngsi_ld::model::{Attribute, AttributeValue, Entity};

    /// Every row `sql` gives, each read by `read`.
    fn all_rows<T>(
        conn: &Connection,
        sql: &str,
        read: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Vec<T> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], read)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// How many tables, indexes and triggers have a name `LIKE` the pattern.
    fn schema_objects_like(conn: &Connection, pattern: &str) -> i64 {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE ?1",
            [pattern],
            |row| row.get(0),
        )
        .unwrap()
    }

    /// A database as the first `version` migrations left it.
    fn at_version(version: usize) -> Connection {
        at_version_in(Connection::open_in_memory().unwrap(), version)
    }

    /// The database of `conn` as the first `version` migrations left it.
    fn at_version_in(conn: Connection, version: usize) -> Connection {
        conn.execute_batch(
            "CREATE TABLE renkei_schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);",
        )
        .unwrap();
        for (index, migration) in MIGRATIONS[..version].iter().enumerate() {
            conn.execute_batch(migration.sql).unwrap();
            conn.execute(
                "INSERT INTO renkei_schema_migrations VALUES (?1, 'then')",
                [index as i64 + 1],
            )
            .unwrap();
        }
        conn
    }

    #[test]
    fn migrating_from_version_1_indexes_the_entities_already_stored() {
        let mut conn = at_version(1);
        let mut entity = Entity::new(
            "urn:ngsi-ld:Shelter:1",
            vec!["https://example.org/Shelter".into()],
        );
        entity.attributes.insert(
            "https://example.org/capacity".into(),
            vec![Attribute::new(AttributeValue::Property(serde_json::json!(
                120
            )))],
        );
        entity.attributes.insert(
            ngsi_ld::model::iri::LOCATION.into(),
            vec![Attribute::new(AttributeValue::GeoProperty(
                serde_json::json!(
                    {"type": "Point", "coordinates": [138.3, 34.8]}
                ),
            ))],
        );
        let doc = store::doc::entity_doc_text(&entity);
        conn.execute(
            "INSERT INTO entities (tenant, id, doc) VALUES ('', ?1, ?2)",
            [&entity.id, &doc],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let vals: Vec<u8> = conn
            .query_row("SELECT vals FROM entities", [], |row| row.get(0))
            .unwrap();
        assert_eq!(vals, crate::values::of_entity(&entity));
        let cell: Option<i64> = conn
            .query_row("SELECT cell FROM entities", [], |row| row.get(0))
            .unwrap();
        assert!(cell.is_some());
        assert_eq!(cell, crate::writer::cell_of(&entity));
        assert_eq!(schema_objects_like(&conn, "entity_location%"), 0);
        // Running again changes nothing.
        migrate(&mut conn).unwrap();
        let versions: i64 = conn
            .query_row("SELECT count(*) FROM renkei_schema_migrations", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(versions, MIGRATIONS.len() as i64);
    }

    /// The first writes version 15 kept as text become rows through version 16,
    /// every field as it was (an empty stamp none, `createdAt` as stored), numbered
    /// from 1; the column goes, and a text that is not version 15's stops the
    /// migration rather than losing the history.
    #[test]
    fn migrating_to_version_16_writes_kept_first_writes_out_as_rows() {
        let kept = "p\u{1f}\u{1f}i1\u{1f}2024-01-01T00:00:00.000000Z\u{1f}\
                    2024-01-02T00:00:00.000000Z\u{1f}2024-01-02T00:00:00.000000Z\u{1f}\u{1f}\
                    {\"type\":\"Property\",\"value\":1}\u{1f}\u{1e}\
                    q\u{1f}d\u{1f}i2\u{1f}\u{1f}\u{1f}\u{1f}\u{1f}{}\u{1f}\u{1e}";
        let at_15 = |first_write: &str| {
            let conn = at_version(15);
            conn.execute(
                "INSERT INTO temporal_heads (hid, tenant, id, types, scopes, created_at,
                     modified_at, last_seq, first_write)
                 VALUES (1, '', 'urn:a', '[]', '[]', 't', 't', 2, ?1),
                        (2, '', 'urn:b', '[]', '[]', 't', 't', 0, NULL)",
                [first_write],
            )
            .unwrap();
            conn
        };
        let mut conn = at_15(kept);
        migrate(&mut conn).unwrap();
        type Instance = (i64, i64, String, String, String, Option<String>, String);
        let rows: Vec<Instance> = all_rows(
            &conn,
            "SELECT seq, hid, attr, dataset_id, instance_id, observed_at, created_at
             FROM temporal_instances ORDER BY seq",
            |row| row.try_into(),
        );
        assert_eq!(
            rows,
            [
                (
                    1,
                    1,
                    "p".into(),
                    String::new(),
                    "i1".into(),
                    Some("2024-01-01T00:00:00.000000Z".into()),
                    "2024-01-02T00:00:00.000000Z".into()
                ),
                (
                    2,
                    1,
                    "q".into(),
                    "d".into(),
                    "i2".into(),
                    None,
                    String::new()
                ),
            ]
        );
        let (modified, deleted, doc): (Option<String>, Option<String>, String) = conn
            .query_row(
                "SELECT modified_at, deleted_at, doc FROM temporal_instances WHERE seq = 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        assert_eq!(modified.as_deref(), Some("2024-01-02T00:00:00.000000Z"));
        assert_eq!(
            (deleted, doc.as_str()),
            (None, r#"{"type":"Property","value":1}"#)
        );
        assert_eq!(schema_objects_like(&conn, "temporal_heads"), 1);
        let columns: Vec<String> = all_rows(
            &conn,
            "SELECT name FROM pragma_table_info('temporal_heads')",
            |row| row.get(0),
        );
        // Version 16's own column, `first_write_ids`, goes in version 19.
        assert!(
            !columns.iter().any(|c| c.starts_with("first_write")),
            "{columns:?}"
        );

        for cut in [&kept[..kept.len() - 1], &kept.replacen('\u{1f}', "", 1)] {
            let mut conn = at_15(cut);
            assert!(migrate(&mut conn).is_err(), "{cut:?}");
            let still: String = conn
                .query_row(
                    "SELECT first_write FROM temporal_heads WHERE hid = 1",
                    [],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!(still, cut);
        }
    }

    /// A version-7 history keeps every row through version 8 (a missing `createdAt`
    /// stored as `''`), and its head numbers new instances after every stored one.
    #[test]
    fn migrating_to_version_8_keeps_history_rows_and_their_order() {
        let mut conn = at_version(7);
        conn.execute_batch(
            "INSERT INTO temporal_heads (hid, tenant, id, types, scopes, created_at, modified_at)
                 VALUES (1, '', 'urn:a', '[]', '[]', 't', 't'), (2, '', 'urn:b', '[]', '[]', 't', 't');
             INSERT INTO temporal_instances (seq, hid, attr, dataset_id, instance_id,
                     observed_at, created_at, modified_at, deleted_at, doc)
                 VALUES (5, 1, 'p', '', 'i5', '2024-01-01T00:00:00.000000Z', NULL, NULL, NULL, '{}'),
                        (9, 1, 'p', '', 'i9', NULL, '2024-01-02T00:00:00.000000Z', NULL, NULL, '{}'),
                        (7, 2, 'q', 'd', 'i7', NULL, '2024-01-02T00:00:00.000000Z', NULL,
                         '2024-01-03T00:00:00.000000Z', '{}');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let rows: Vec<(i64, i64, String, String, String)> = all_rows(
            &conn,
            "SELECT seq, hid, attr, created_at, instance_id FROM temporal_instances
             ORDER BY seq",
            |row| row.try_into(),
        );
        let created = "2024-01-02T00:00:00.000000Z".to_owned();
        assert_eq!(
            rows,
            [
                (5, 1, "p".into(), String::new(), "i5".into()),
                (7, 2, "q".into(), created.clone(), "i7".into()),
                (9, 1, "p".into(), created, "i9".into()),
            ]
        );
        let last: Vec<i64> = all_rows(
            &conn,
            "SELECT last_seq FROM temporal_heads ORDER BY hid",
            |row| row.get(0),
        );
        assert_eq!(last, [9, 9]);
        // The indexes that remain are the two partial ones.
        let indexes: Vec<String> = all_rows(
            &conn,
            "SELECT name FROM sqlite_master WHERE type = 'index'
             AND tbl_name = 'temporal_instances' AND sql IS NOT NULL ORDER BY name",
            |row| row.get(0),
        );
        assert_eq!(
            indexes,
            [
                "temporal_instances_by_deleted",
                "temporal_instances_by_observed"
            ]
        );
    }

    /// Version 14 moves every entity's types from `entity_types` into its row; an
    /// entity without type rows is left without, and every type admits it.
    #[test]
    fn migrating_to_version_14_moves_the_types_into_the_rows() {
        let mut conn = at_version(13);
        let types = [
            "https://example.org/Shelter",
            "https://example.org/Building",
        ];
        for (n, types) in [&types[..], &types[1..], &[]].into_iter().enumerate() {
            conn.execute(
                "INSERT INTO entities (seq, tenant, id, doc) VALUES (?1, '', ?2, '{}')",
                rusqlite::params![n as i64 + 1, format!("urn:ngsi-ld:Shelter:{n}")],
            )
            .unwrap();
            for t in types {
                conn.execute(
                    "INSERT INTO entity_types (tenant, type, seq) VALUES ('', ?1, ?2)",
                    rusqlite::params![t, n as i64 + 1],
                )
                .unwrap();
            }
        }
        migrate(&mut conn).unwrap();
        let stored: Vec<Option<String>> =
            all_rows(&conn, "SELECT types FROM entities ORDER BY seq", |row| {
                row.get(0)
            });
        // Each row's names, in any order; none for an entity without type rows.
        let names = |text: &Option<String>| {
            let mut names: Vec<String> = text
                .as_deref()
                .map(|t| {
                    t.split('\u{1f}')
                        .filter(|n| !n.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            names
        };
        assert_eq!(names(&stored[0]), [types[1], types[0]]);
        assert_eq!(names(&stored[1]), [types[1]]);
        assert_eq!(stored[2], None);
        let wanted = [crate::writer::types_text(&[types[0].to_owned()])];
        let admitted: Vec<bool> = stored
            .iter()
            .map(|t| crate::writer::may_have_type(t.as_deref(), &wanted))
            .collect();
        assert_eq!(admitted, [true, false, true]);
        assert_eq!(schema_objects_like(&conn, "entity_types%"), 0);
    }

    /// Version 13 drops `entity_values` and stores every entity's values in its row,
    /// cut long strings included, a thousand rows at a time.
    #[test]
    fn migrating_to_version_13_moves_the_values_into_the_rows() {
        use ngsi_ld::query::index::{Comparison, Prefilter, INDEXED_TEXT_CHARS};
        let mut conn = at_version(12);
        let long = "大".repeat(INDEXED_TEXT_CHARS + 1);
        let name = "https://example.org/name";
        for n in 0..1500 {
            let mut entity = Entity::new(
                format!("urn:ngsi-ld:Shelter:{n}"),
                vec!["https://example.org/Shelter".into()],
            );
            let value = if n == 1200 {
                long.clone()
            } else {
                n.to_string()
            };
            entity.attributes.insert(
                name.into(),
                vec![Attribute::new(AttributeValue::Property(serde_json::json!(
                    value
                )))],
            );
            conn.execute(
                "INSERT INTO entities (tenant, id, doc) VALUES ('', ?1, ?2)",
                [&entity.id, &store::doc::entity_doc_text(&entity)],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();
        assert_eq!(schema_objects_like(&conn, "entity_values%"), 0);
        let cut = Prefilter::Text(name.into(), Comparison::Eq, "大".repeat(INDEXED_TEXT_CHARS));
        let mut statement = conn.prepare("SELECT id, vals FROM entities").unwrap();
        let rows: Vec<(String, Option<Vec<u8>>)> = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 1500);
        assert!(rows.iter().all(|(_, vals)| vals.is_some()));
        let admitted: Vec<&str> = rows
            .iter()
            .filter(|(_, vals)| crate::values::admits(&cut, vals.as_deref()))
            .map(|(id, _)| id.as_str())
            .collect();
        assert_eq!(admitted, ["urn:ngsi-ld:Shelter:1200"]);
    }

    /// Version 18 numbers the tenants (one that has entities but no row gets one)
    /// and moves each entity into its tenant's range of row ids in creation order;
    /// the writer then carries on after each tenant's last row, and a new tenant
    /// takes the next number.
    #[test]
    fn migrating_to_version_18_gives_each_tenant_its_range_of_rows() {
        let mut conn = at_version(17);
        conn.execute_batch(
            "INSERT INTO tenants (name, created_at) VALUES
                 ('city', '2026-01-01T00:00:00Z'), ('town', '2026-01-02T00:00:00Z');",
        )
        .unwrap();
        let stored = [
            ("", "urn:a:1"),
            ("city", "urn:c:1"),
            ("", "urn:a:2"),
            ("town", "urn:t:1"),
            ("city", "urn:c:2"),
            ("orphan", "urn:o:1"),
        ];
        for (tenant, id) in stored {
            let doc = store::doc::entity_doc_text(&Entity::new(id, vec!["urn:T".into()]));
            conn.execute(
                "INSERT INTO entities (tenant, id, doc) VALUES (?1, ?2, ?3)",
                [tenant, id, &doc],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();

        let tenants: Vec<(i64, String)> =
            all_rows(&conn, "SELECT no, name FROM tenants ORDER BY no", |row| {
                row.try_into()
            });
        let names: Vec<(i64, &str)> = tenants.iter().map(|(n, s)| (*n, s.as_str())).collect();
        assert_eq!(names, [(1, "city"), (2, "town"), (3, "orphan")]);
        let rows = crate::writer::TENANT_ROWS;
        let entities: Vec<(i64, String)> =
            all_rows(&conn, "SELECT seq, id FROM entities ORDER BY seq", |row| {
                row.try_into()
            });
        let expected = [
            (1, "urn:a:1"),
            (3, "urn:a:2"),
            (rows + 2, "urn:c:1"),
            (rows + 5, "urn:c:2"),
            (2 * rows + 4, "urn:t:1"),
            (3 * rows + 6, "urn:o:1"),
        ];
        let entities: Vec<(i64, &str)> = entities.iter().map(|(n, s)| (*n, s.as_str())).collect();
        assert_eq!(entities, expected);
        let entities_sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'entities'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert!(!entities_sql.contains("AUTOINCREMENT"), "{entities_sql}");
        assert_eq!(schema_objects_like(&conn, "entities_by_tenant"), 0);
        assert_eq!(schema_objects_like(&conn, "entities_by_cell"), 1);
        assert!(V18.contains(&rows.to_string()));

        let tx = conn.transaction().unwrap();
        let write = |tenant: &str, id: &str| {
            put_new_entity(&tx, tenant, id).unwrap();
            tx.query_row(
                "SELECT seq FROM entities WHERE tenant = ?1 AND id = ?2",
                [tenant, id],
                |row| row.get::<_, i64>(0),
            )
            .unwrap()
        };
        assert_eq!(write("city", "urn:c:3"), rows + 6);
        assert_eq!(write("village", "urn:v:1"), 4 * rows + 1);
    }

    /// Through version 19 a head that implied its first write moves into its entity's
    /// row, and the history reads as before: the same instances, ids, instant and
    /// head. A head in rows (here of a deleted entity) stays as it was.
    #[tokio::test]
    async fn migrating_to_version_19_moves_implied_heads_into_their_entities() {
        use store::temporal::{HistoryRead, TemporalStore};
        use store::Tenant;
        const AT: &str = "2026-03-01T09:00:00.000000Z";
        const IDS: &str = "5f0c6a39-0d5e-4d7c-9a57-3c1a4b9b2e11";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("renkei.db");
        let conn = at_version_in(Connection::open(&path).unwrap(), 18);
        let mut shelter = Entity::new("urn:ngsi-ld:Shelter:1", vec!["urn:Shelter".into()]);
        shelter.scopes = vec!["/Shizuoka/Yaizu".into()];
        for (name, value) in [("urn:capacity", 120), ("urn:occupancy", 30)] {
            shelter.attributes.insert(
                name.into(),
                vec![ngsi_ld::model::Attribute::new(
                    ngsi_ld::model::AttributeValue::Property(serde_json::json!(value)),
                )],
            );
        }
        let doc = store::doc::entity_doc_text(&shelter);
        conn.execute(
            "INSERT INTO entities (seq, tenant, id, doc) VALUES (1, '', ?1, ?2)",
            [&shelter.id, &doc],
        )
        .unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO temporal_heads (hid, tenant, id, types, scopes, created_at,
                 modified_at, deleted_at, last_seq, first_write_ids) VALUES
                 (1, '', 'urn:ngsi-ld:Shelter:1', '[\"urn:Shelter\"]',
                  '[\"/Shizuoka/Yaizu\"]', '{AT}', '{AT}', NULL, 2, '{IDS}'),
                 (2, '', 'urn:ngsi-ld:Shelter:gone', '[\"urn:Shelter\"]', '[]',
                  '{AT}', '{AT}', '{AT}', 1, NULL);
             INSERT INTO temporal_instances (hid, attr, dataset_id, created_at, seq,
                 instance_id, doc) VALUES
                 (2, 'urn:capacity', '', '{AT}', 1, 'urn:i:1', '{{\"type\":\"Property\",\"value\":1}}');"
        ))
        .unwrap();
        drop(conn);

        let store = crate::SqliteStore::open(&path).await.unwrap();
        let tenant = Tenant::default_tenant();
        let created = HistoryRead {
            time_property: ngsi_ld::temporal::TimeProperty::CreatedAt,
            ..HistoryRead::default()
        };
        let history = store.history(&tenant, &shelter.id, &created).await.unwrap();
        let at: chrono::DateTime<chrono::Utc> = AT.parse().unwrap();
        let ids: Vec<&str> = history.iter().map(|i| i.instance_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "urn:ngsi-ld:AttributeInstance:5f0c6a39-0d5e-4d7c-9a57-3c1a4b9b2e10",
                "urn:ngsi-ld:AttributeInstance:5f0c6a39-0d5e-4d7c-9a57-3c1a4b9b2e13",
            ]
        );
        assert!(history.iter().all(|i| i.attribute.created_at == Some(at)));
        let heads = store.temporal_heads(&tenant, &[]).await.unwrap();
        let heads: Vec<_> = heads
            .iter()
            .map(|h| (h.id.as_str(), h.scopes.clone(), h.created_at, h.deleted_at))
            .collect();
        assert_eq!(
            heads,
            [
                (shelter.id.as_str(), shelter.scopes.clone(), at, None),
                ("urn:ngsi-ld:Shelter:gone", vec![], at, Some(at)),
            ]
        );
        let gone = store.history(&tenant, "urn:ngsi-ld:Shelter:gone", &created);
        assert_eq!(gone.await.unwrap().len(), 1);
        drop(store);

        let conn = Connection::open(&path).unwrap();
        let in_row: (String, String) = conn
            .query_row(
                "SELECT history_at, history_ids FROM entities WHERE seq = 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!(in_row, (AT.to_owned(), IDS.to_owned()));
        let heads: Vec<i64> = all_rows(&conn, "SELECT hid FROM temporal_heads", |row| row.get(0));
        assert_eq!(heads, [2]);
    }

    /// Writes a new entity `id` of the named `tenant` as the writer does.
    fn put_new_entity(
        tx: &rusqlite::Transaction<'_>,
        tenant: &str,
        id: &str,
    ) -> Result<(), store::StoreError> {
        let entity = Entity::new(id, vec!["urn:T".into()]);
        let rows = crate::writer::EntityRows::new(&entity);
        crate::writer::put_entity(
            &mut crate::writer::EntityWrites::new(tx),
            &store::Tenant::named(tenant),
            &rows,
            None,
            None,
        )
    }

    /// A tenant whose range of row ids is used up, or lies beyond what a row id can
    /// hold, gets an error naming it, never a row id of another tenant's range.
    #[test]
    fn a_tenant_without_row_ids_left_is_refused() {
        let mut conn = at_version(MIGRATIONS.len());
        let rows = crate::writer::TENANT_ROWS;
        let last_number = i64::MAX / rows;
        conn.execute(
            "INSERT INTO tenants (no, name, created_at) VALUES
                 (?1, 'full', 'then'), (?2, 'beyond', 'then')",
            [last_number - 1, last_number],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO entities (seq, tenant, id, doc) VALUES (?1, 'full', 'urn:last', '{}')",
            [last_number * rows - 1],
        )
        .unwrap();
        let tx = conn.transaction().unwrap();
        for tenant in ["full", "beyond"] {
            let error = put_new_entity(&tx, tenant, "urn:next")
                .unwrap_err()
                .to_string();
            assert!(error.contains("no row ids are left"), "{error}");
            assert!(error.contains(tenant), "{error}");
        }
    }

    /// Version 17 replaces the R*Tree with each row's cell: a point's, a polygon's
    /// (whose level is then listed as holding boxes) and none for a row without a
    /// location; the R*Tree goes.
    #[test]
    fn migrating_to_version_17_keeps_each_location_as_its_cell() {
        let mut conn = at_version(16);
        let located = |id: &str, geojson: Option<serde_json::Value>| {
            let mut entity = Entity::new(id, vec!["https://example.org/Shelter".into()]);
            if let Some(geojson) = geojson {
                entity.attributes.insert(
                    ngsi_ld::model::iri::LOCATION.into(),
                    vec![Attribute::new(AttributeValue::GeoProperty(geojson))],
                );
            }
            entity
        };
        let entities = [
            located(
                "urn:point",
                Some(serde_json::json!({"type": "Point", "coordinates": [138.3, 34.8]})),
            ),
            located(
                "urn:polygon",
                Some(serde_json::json!({"type": "Polygon", "coordinates": [[
                    [138.0, 34.5], [138.6, 34.5], [138.6, 35.1], [138.0, 34.5]
                ]]})),
            ),
            located("urn:nowhere", None),
        ];
        for entity in &entities {
            conn.execute(
                "INSERT INTO entities (tenant, id, doc) VALUES ('', ?1, ?2)",
                [&entity.id, &store::doc::entity_doc_text(entity)],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();
        let cells: Vec<(String, Option<i64>)> =
            all_rows(&conn, "SELECT id, cell FROM entities ORDER BY seq", |row| {
                row.try_into()
            });
        let expected: Vec<(String, Option<i64>)> = entities
            .iter()
            .map(|e| (e.id.clone(), crate::writer::cell_of(e)))
            .collect();
        assert_eq!(cells, expected);
        assert!(expected[..2].iter().all(|(_, cell)| cell.is_some()));
        let levels: Vec<u32> = all_rows(&conn, "SELECT level FROM entity_cell_levels", |row| {
            row.get(0)
        });
        let polygon_level = crate::cells::level_of(expected[1].1.unwrap());
        assert!(polygon_level < crate::cells::MAX_LEVEL);
        assert_eq!(levels, [polygon_level]);
        assert_eq!(schema_objects_like(&conn, "entity_location%"), 0);
    }
}
