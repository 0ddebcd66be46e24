"""PostgreSQL fast path of intake: bump the session and insert the file row in ONE round trip.

For the common case (a file for a session this process has seen, still RECEIVING) intake sends
``WITH s AS (UPDATE session ... RETURNING id), ins AS (INSERT file ... SELECT FROM s ON CONFLICT DO NOTHING
RETURNING 1) SELECT count(s), count(ins)``: one statement, so PostgreSQL runs it as one implicit transaction:
the row lock, the conditions of the conditional UPDATE (pk, key, folder, status) and the insert are atomic
exactly as in the general path. Its commit is synchronous (the server's default): when the statement returns,
the row is durable, so the sender may be told Success (issue 16: a relaxed commit lost acknowledged rows when
PostgreSQL stopped). Any other outcome (session gone, moved, building, ready; duplicate instance) goes back to
the general path.
The statement is a server-side prepared statement with bound parameters (psycopg 3 on PostgreSQL): no
parsing and planning per file, and no quoting of ~25 values into SQL text in Python (~0.15 ms a file).
Used only in autocommit (never inside a caller's transaction: the statement is its own transaction).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections

from prearchive.models import PrearchiveFile, PrearchiveSession

_SQL: str | None = None
_MANY_SQL: str | None = None
_LOCK_SQL: str | None = None
_SHARE_SQL: str | None = None
_INSERT_SQL: str | None = None
_FIELDS: list = []
_MISSING = object()
_PLAIN: list[tuple[type, ...]] = []


def available() -> bool:
    # One look-up of the thread's connection (each ``connection.x`` is one, ~5 us: intake asks per file).
    conn = connections[DEFAULT_DB_ALIAS]
    return conn.vendor == "postgresql" and not conn.in_atomic_block


def _plain_types(field) -> tuple[type, ...]:
    from django.db import models

    if isinstance(field, models.CharField):
        return (str,)
    if isinstance(field, (models.IntegerField, models.BigIntegerField)):  # the positive ones included
        return (int, type(None)) if field.null else (int,)
    return ()


def _array_type(field) -> str:
    """The SQL type of a column's array parameter: text for the character columns (so that a value too
    long still fails on the column's own length, as a plain INSERT would, instead of being cut by a cast)."""
    from django.db import models

    if isinstance(field, (models.CharField, models.TextField)):
        return "text"
    return field.db_type(connection)


def session_match_sql() -> str:
    """The session row intake may add a file to without the general path: the one it knows (same row, key
    and folder) and still receiving. Parameters: id, project_id, tag, name, timestamp, folder_name."""
    q = connection.ops.quote_name
    receiving = ", ".join(f"'{s}'" for s in PrearchiveSession.RECEIVING_STATUSES)
    return (f"{q('id')} = %s AND {q('project_id')} IS NOT DISTINCT FROM %s AND {q('tag')} = %s "
            f"AND {q('name')} = %s AND {q('timestamp')} = %s AND {q('folder_name')} = %s "
            f"AND {q('status')} IN ({receiving})")


def _build_sql() -> str:
    global _SQL, _MANY_SQL, _FIELDS, _LOCK_SQL, _INSERT_SQL, _SHARE_SQL
    q = connection.ops.quote_name
    s_table, f_table = q(PrearchiveSession._meta.db_table), q(PrearchiveFile._meta.db_table)
    _FIELDS = [f for f in PrearchiveFile._meta.concrete_fields if not f.primary_key and f.attname != "session_id"]
    _PLAIN[:] = [_plain_types(f) for f in _FIELDS]
    columns = ", ".join([q("session_id")] + [q(f.column) for f in _FIELDS])
    marks = ", ".join(["%s"] * len(_FIELDS))
    touch = (
        f"WITH s AS (UPDATE {s_table} SET {q('lastmod')} = %s WHERE {session_match_sql()} RETURNING {q('id')}), "
    )
    conflict = f"ON CONFLICT ({q('session_id')}, {q('sop_instance_uid')}) DO NOTHING"
    _SQL = (
        touch + f"ins AS (INSERT INTO {f_table} ({columns}) SELECT s.{q('id')}, {marks} FROM s {conflict} "
        "RETURNING 1) SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM ins)"
    )
    # An association's own transaction (``session_lock``: exclusive or share mode, then ``row_insert``).
    _LOCK_SQL = f"UPDATE {s_table} SET {q('lastmod')} = %s WHERE {session_match_sql()} RETURNING {q('id')}"
    _SHARE_SQL = f"SELECT {q('id')} FROM {s_table} WHERE {session_match_sql()} FOR SHARE"
    _INSERT_SQL = (f"INSERT INTO {f_table} ({columns}) VALUES (%s, {marks}) {conflict} RETURNING 1")
    # The same for many files of one session: one array parameter per column, zipped by unnest, so the
    # statement text (and its server-side plan) is the same whatever the number of files.
    arrays = ", ".join(f"%s::{_array_type(f)}[]" for f in _FIELDS)
    names = ", ".join(q(f.column) for f in _FIELDS)
    sop = q("sop_instance_uid")
    _MANY_SQL = (
        touch + f"ins AS (INSERT INTO {f_table} ({columns}) SELECT s.{q('id')}, u.* FROM s "
        f"CROSS JOIN unnest({arrays}) AS u({names}) {conflict} RETURNING {sop}) "
        f"SELECT (SELECT count(*) FROM s), (SELECT coalesce(array_agg({sop}), '{{}}') FROM ins)"
    )
    return _SQL


def touch_and_insert(*, session_id: int, key: tuple, timestamp: str, folder: str, now: datetime, sop_uid: str,
                     row: dict[str, Any]) -> tuple[bool, bool]:
    """(session touched, file row inserted)."""
    sql = _SQL or _build_sql()
    project_id, tag, name = key
    values = dict(row, sop_instance_uid=sop_uid)
    params: list[Any] = [now, session_id, project_id, tag, name, timestamp, folder]
    for f, plain in zip(_FIELDS, _PLAIN):
        params.append(_prep(f, plain, values.get(f.attname, _MISSING)))
    conn = connections[DEFAULT_DB_ALIAS]
    conn.ensure_connection()
    with conn.wrap_database_errors:
        cursor = _prepared_cursor(conn)
        cursor.execute(sql, params, prepare=True)
        touched, inserted = cursor.fetchone()
    return bool(touched), bool(inserted)


def _prep(field, plain: tuple[type, ...], value: Any) -> Any:
    # A str for a text column, an int (or None where allowed) for an integer one go as they are:
    # get_db_prep_save would return them unchanged. Anything else goes through Django.
    return value if type(value) in plain else field.get_db_prep_save(
        field.get_default() if value is _MISSING else value, connection)


def touch_and_insert_many(*, session_id: int, key: tuple, timestamp: str, folder: str, now: datetime,
                          rows: list[tuple[str, dict[str, Any]]]) -> tuple[bool, set[str]]:
    """``touch_and_insert`` for many files of one session, in one statement: (session touched, the SOP
    Instance UIDs whose rows were inserted). ``rows``: (SOP Instance UID, row), the UIDs distinct."""
    if _MANY_SQL is None:
        _build_sql()
    project_id, tag, name = key
    params: list[Any] = [now, session_id, project_id, tag, name, timestamp, folder]
    values = [dict(row, sop_instance_uid=sop_uid) for sop_uid, row in rows]
    for f, plain in zip(_FIELDS, _PLAIN):
        params.append([_prep(f, plain, v.get(f.attname, _MISSING)) for v in values])
    conn = connections[DEFAULT_DB_ALIAS]
    conn.ensure_connection()
    with conn.wrap_database_errors:
        cursor = _prepared_cursor(conn)
        cursor.execute(_MANY_SQL, params, prepare=True)
        touched, inserted = cursor.fetchone()
    return bool(touched), set(inserted or ())


def session_lock(*, session_id: int, key: tuple, timestamp: str, folder: str, now: datetime, share: bool = False):
    """BEGIN, then lock the session's row if it is still what the fast path may touch: exclusively, moving
    ``lastmod``, or with ``share`` in share mode (which a job's claim waits for as well); waits for a job or
    a writer holding it. Returns the open transaction's cursor, or None (the row
    changed: rolled back). Every path out of an open transaction ends with ``transaction_end``."""
    if _LOCK_SQL is None:
        _build_sql()
    project_id, tag, name = key
    conn = connections[DEFAULT_DB_ALIAS]
    conn.ensure_connection()
    with conn.wrap_database_errors:
        cursor = _prepared_cursor(conn)
        cursor.execute("BEGIN")
        try:
            if share:
                cursor.execute(_SHARE_SQL, [session_id, project_id, tag, name, timestamp, folder], prepare=True)
            else:
                cursor.execute(_LOCK_SQL, [now, session_id, project_id, tag, name, timestamp, folder], prepare=True)
            if cursor.fetchone() is not None:
                return cursor
        except BaseException:
            transaction_end(cursor, commit=False)
            raise
    transaction_end(cursor, commit=False)
    return None


def row_insert(cursor, *, session_id: int, sop_uid: str, row: dict[str, Any]) -> bool:
    """The file's row in ``session_lock``'s transaction: True if inserted, False if the instance is there."""
    values = dict(row, sop_instance_uid=sop_uid)
    params: list[Any] = [session_id]
    for f, plain in zip(_FIELDS, _PLAIN):
        params.append(_prep(f, plain, values.get(f.attname, _MISSING)))
    with connections[DEFAULT_DB_ALIAS].wrap_database_errors:
        cursor.execute(_INSERT_SQL, params, prepare=True)
        return cursor.fetchone() is not None


def transaction_end(cursor, *, commit: bool) -> None:
    """COMMIT (synchronous: the row is durable when it returns) or ROLLBACK ``session_lock``'s transaction.
    A failed ROLLBACK closes the connection (the server ends the transaction with it)."""
    conn = connections[DEFAULT_DB_ALIAS]
    if commit:
        with conn.wrap_database_errors:
            cursor.execute("COMMIT")
        return
    try:
        cursor.execute("ROLLBACK")
    except Exception:  # noqa: BLE001 - a broken connection: a new one next time
        conn.close()


def _prepared_cursor(conn):
    """A psycopg cursor with server-side binding on Django's connection ``conn`` (Django's own cursors bind
    on the client), one per database connection."""
    import psycopg

    raw = conn.connection
    cursor = getattr(conn, "_xnatlite_intake_cursor", None)
    if cursor is None or cursor.connection is not raw or cursor.closed:
        cursor = psycopg.Cursor(raw)
        conn._xnatlite_intake_cursor = cursor
    return cursor
