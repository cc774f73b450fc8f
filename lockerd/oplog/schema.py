"""Versioned schema of the operation log: each migration runs once, in order, in one transaction."""

from __future__ import annotations

import logging
from typing import Any

from lockerd import __version__
from lockerd.oplog.errors import NewerSchema

log = logging.getLogger(__name__)

# Rules for a new migration (tests/oplog/test_migration_kill.py and test_schema.py hold them):
# - append it, never edit a released one: a cabinet may be at any version in between;
# - only statements SQLite rolls back (CREATE, DROP, ALTER, INSERT, UPDATE, DELETE): migrate()
#   runs each migration and its user_version bump in one transaction, so a SIGKILL at any
#   point leaves the previous version, which the next start migrates again. No VACUUM, ATTACH
#   or journal/foreign-key PRAGMAs (no-ops or errors inside a transaction);
# - never rewrite the operations table's rows or columns: their hashes are the chain;
# - before it lands, commit the current release's fixture (scripts/make_release_fixture).

# Personal columns (nulled by retention) are marked "personal" in comments; the chain itself
# (operations) never holds personal data, so purging them never breaks a hash.
MIGRATIONS: tuple[str, ...] = (
    # 1: the chain, outbox, remembered commands, domain tables, destruction records.
    """
    CREATE TABLE operations (
        seq         INTEGER PRIMARY KEY,
        ts          TEXT    NOT NULL,
        kind        TEXT    NOT NULL,
        actor       TEXT    NOT NULL,
        compartment INTEGER,
        parcel_id   TEXT,
        body        TEXT    NOT NULL,
        prev_hash   TEXT    NOT NULL,
        hash        TEXT    NOT NULL
    );
    CREATE INDEX operations_ts ON operations(ts);

    CREATE TABLE outbox (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        stream      TEXT    NOT NULL,
        seq         INTEGER,
        topic       TEXT    NOT NULL,
        payload     BLOB    NOT NULL,          -- may hold personal data: pruned once sent
        qos         INTEGER NOT NULL CHECK (qos IN (0, 1, 2)),
        retain      INTEGER NOT NULL CHECK (retain IN (0, 1)),
        created_at  TEXT    NOT NULL,
        sent_at     TEXT,
        op_seq      INTEGER NOT NULL REFERENCES operations(seq)
    );
    CREATE INDEX outbox_pending ON outbox(id) WHERE sent_at IS NULL;
    CREATE UNIQUE INDEX outbox_stream_seq ON outbox(stream, seq) WHERE seq IS NOT NULL;

    CREATE TABLE outbox_streams (
        stream      TEXT    PRIMARY KEY,
        last_seq    INTEGER NOT NULL
    );

    CREATE TABLE commands (
        carrier     TEXT    NOT NULL,
        cmd_id      TEXT    NOT NULL,
        reply       TEXT    NOT NULL,
        received_at TEXT    NOT NULL,
        op_seq      INTEGER NOT NULL,
        PRIMARY KEY (carrier, cmd_id)
    );
    CREATE INDEX commands_received ON commands(received_at);

    CREATE TABLE parcels (
        id                  TEXT    PRIMARY KEY,
        kind                TEXT    NOT NULL CHECK (kind IN ('delivery', 'dropoff')),
        carrier             TEXT    NOT NULL,
        compartment         INTEGER,
        status              TEXT    NOT NULL,
        size                TEXT,
        waybill             TEXT,               -- personal
        recipient_phone     TEXT,               -- personal
        sender_verification TEXT,               -- personal: real-name check reference only
        declared_contents   TEXT,               -- personal
        code_hash           BLOB,               -- personal: salted hash of the pickup code
        code_salt           BLOB,
        deadline            TEXT,
        flags               TEXT    NOT NULL DEFAULT '{}',
        created_at          TEXT    NOT NULL,
        updated_at          TEXT    NOT NULL,
        closed_at           TEXT,               -- set when the parcel leaves the cabinet for good
        purged_at           TEXT                -- personal fields destroyed by retention
    );
    CREATE INDEX parcels_carrier_waybill ON parcels(carrier, waybill);
    CREATE INDEX parcels_closed ON parcels(closed_at) WHERE closed_at IS NOT NULL;

    CREATE TABLE couriers (
        carrier     TEXT    NOT NULL,
        courier_id  TEXT    NOT NULL,
        pin_hash    BLOB,                       -- personal: salted hash of the PIN
        pin_salt    BLOB,
        expires     TEXT    NOT NULL,
        revoked     INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
        granted_at  TEXT    NOT NULL,
        revoked_at  TEXT,
        PRIMARY KEY (carrier, courier_id)
    );

    CREATE TABLE pickup_attempts (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        ts          TEXT    NOT NULL,
        panel       TEXT    NOT NULL,
        ok          INTEGER NOT NULL CHECK (ok IN (0, 1)),
        parcel_id   TEXT,
        compartment INTEGER
    );
    CREATE INDEX pickup_attempts_panel ON pickup_attempts(panel, ts);
    CREATE INDEX pickup_attempts_ts ON pickup_attempts(ts);

    CREATE TABLE destructions (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        op_seq      INTEGER NOT NULL REFERENCES operations(seq),
        record_class TEXT   NOT NULL,
        count       INTEGER NOT NULL,
        range_from  TEXT,
        range_to    TEXT,
        at          TEXT    NOT NULL,
        by_actor    TEXT    NOT NULL
    );
    """,
    # 2: keys of other encrypted stores (the evidence database), kept inside this encrypted
    #    file so rotating the log key never strands them.
    """
    CREATE TABLE secrets (
        name        TEXT PRIMARY KEY,
        value       BLOB    NOT NULL,
        created_at  TEXT    NOT NULL
    );
    """,
    # 3: the live state of the parcel flows (lockerd/parcels/store.py): one row per live
    #    compartment, parcel, courier, panel limiter and expectation, written in the same
    #    transaction as the operation that changed it. Finished parcels are deleted from it,
    #    so only the parcels table (purged by retention) keeps them.
    """
    CREATE TABLE live_state (
        entity      TEXT    NOT NULL,
        key         TEXT    NOT NULL,
        value       TEXT    NOT NULL,           -- personal: waybill, code digest, PIN hash
        updated_at  TEXT    NOT NULL,
        PRIMARY KEY (entity, key)
    );
    """,
    # 4: drop what nothing ever wrote: pickup attempts (the wrong-code limiter lives in
    #    live_state) and the parcels' scrypt code hash and salt (pickup codes are checked by the
    #    domain against its live state, as a digest). Dropping the table drops its indexes.
    """
    DROP TABLE pickup_attempts;
    ALTER TABLE parcels DROP COLUMN code_hash;
    ALTER TABLE parcels DROP COLUMN code_salt;
    """,
    # 5: sequence epochs (docs/mqtt.md): each carrier stream has a random id fixed when it
    #    starts, sent with every event next to `seq`, so a consumer tells a recreated log (seq
    #    from 1 again, new epoch) from a repeat. Streams of an older log get theirs now, and its
    #    unsent events carry it when they go out.
    """
    ALTER TABLE outbox_streams ADD COLUMN epoch TEXT;
    UPDATE outbox_streams SET epoch = lower(hex(randomblob(16))) WHERE epoch IS NULL;
    UPDATE outbox SET payload = CAST(json_set(CAST(payload AS TEXT), '$.epoch',
        (SELECT s.epoch FROM outbox_streams s WHERE s.stream = outbox.stream)) AS BLOB)
        WHERE seq IS NOT NULL AND sent_at IS NULL;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: Any) -> int:
    """Bring the schema up to SCHEMA_VERSION; returns the version found before.

    Refuses a database written by a newer lockerd (downgrades would lose data silently).
    """
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise NewerSchema(
            f"the operation log has schema version {found}, written by a newer lockerd; "
            f"lockerd {__version__} knows versions up to {SCHEMA_VERSION} and will not downgrade "
            "it (that would lose records). Reinstall the release that wrote it, or restore a "
            "backup made by this one (lockerctl restore); the file was not changed")
    for version in range(found + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[version - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("operation log schema migrated to version %d", version)
    return found


def _statements(script: str) -> list[str]:
    out: list[str] = []
    for chunk in script.split(";"):
        lines = [ln.split("--", 1)[0] for ln in chunk.splitlines()]
        text = "\n".join(lines).strip()
        if text:
            out.append(text)
    return out
