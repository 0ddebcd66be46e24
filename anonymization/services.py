"""Anonymization services: compile, validate and apply DicomEdit scripts."""
from __future__ import annotations

import csv
import hashlib
import io
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from pydicom.dataset import Dataset

from anonymization.dicomedit import ApplyResult, DicomEditSyntaxError, RunContext, Script
from anonymization.dicomedit.parser import parse_program
from anonymization.dicomedit.limits import MAX_VALUE_CHARS
from anonymization.dicomedit.preview import Preview, preview

_CACHE_SIZE = 64
_cache: OrderedDict[tuple[str, str | None, tuple[str, ...]], Script] = OrderedDict()
_lock = threading.Lock()


def script_compile(*, text: str, dialect: str | None = None, variables: Iterable[str] = ()) -> Script:
    """Parse, check and compile a script once; later calls with the same text reuse it.

    Raises DicomEditSyntaxError ("LINE:COL: message") for a bad script.
    """
    names = tuple(sorted(set(variables)))
    key = (hashlib.sha256(text.encode("utf-8")).hexdigest(), dialect, names)
    with _lock:
        script = _cache.get(key)
        if script is not None:
            _cache.move_to_end(key)
            return script
    script = Script(parse_program(text, dialect=dialect, variables=names), text)
    with _lock:
        _cache[key] = script
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return script


def script_validate(*, text: str, project_id: str | None = None) -> None:
    """For forms, the admin and REST: a bad script raises ValidationError("LINE:COL: message").

    ``project_id``: the script is that project's (it may use the project's and the site's lookup
    tables); None: the site script (site tables only). A ``lookup["name", ...]`` of a table that does
    not exist is refused with the line and column of the name."""
    try:
        script_compile(text=text)
        parse_program(text, lookup_tables=lookup_table_names(project_id=project_id))
    except DicomEditSyntaxError as e:
        raise ValidationError(str(e), code="dicomedit_syntax") from None
    except RecursionError:  # the nesting limit should come first; never a 500
        raise ValidationError("1:1: the script is nested too deeply", code="dicomedit_syntax") from None


def dataset_anonymize(*, script: Script, dataset: Dataset, variables: dict[str, str],
                      run: RunContext | None = None, script_id: str = "1") -> ApplyResult:
    """Apply a compiled script to one dataset in place (DicomEditRuntimeError on failure)."""
    return script.apply(dataset, variables=variables, run=run, script_id=script_id)


def dataset_preview(*, script: Script, dataset: Dataset, variables: dict[str, str]) -> Preview:
    """Each tag the script would change in ``dataset`` (before, after); the dataset is left untouched."""
    return preview(script, dataset, variables)


# ------------------------------------------------------------------ lookup tables (lookup[table, key])

MAX_LOOKUP_BYTES = 8 * 1024 * 1024
MAX_LOOKUP_ROWS = 200_000
MSG_CSV_ENCODING = "The lookup table must be a UTF-8 text file (CSV)."
MSG_CSV_ROW = "Row {row}: expected 2 columns (key,value), found {found}."
MSG_CSV_EMPTY_KEY = "Row {row}: the key is empty."
MSG_CSV_DUPLICATE = "Row {row}: the key {key!r} is already in row {first}."
MSG_CSV_TOO_BIG = "The lookup table is larger than {limit:,} bytes."
MSG_CSV_TOO_MANY = "The lookup table has more than {limit:,} rows."
MSG_CSV_NO_ROWS = "The lookup table has no rows."
MSG_CSV_VALUE_TOO_LONG = "Row {row}: a key or value is longer than {limit:,} characters."
MSG_CSV_BAD = "The lookup table is not a valid CSV file (row {row}: {detail})."


def lookup_csv_parse(*, data: bytes) -> dict[str, str]:
    """A two-column CSV (``key,value`` per row; quotes as in RFC 4180; blank rows skipped) as a dict.
    Anything else raises ValidationError naming the row; nothing is partly read."""
    if len(data) > MAX_LOOKUP_BYTES:
        raise ValidationError(MSG_CSV_TOO_BIG.format(limit=MAX_LOOKUP_BYTES), code="lookup_csv")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError(MSG_CSV_ENCODING, code="lookup_csv") from None
    entries: dict[str, str] = {}
    first_row: dict[str, int] = {}
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for row in reader:
            number = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != 2:
                raise ValidationError(MSG_CSV_ROW.format(row=number, found=len(row)), code="lookup_csv")
            key, value = row[0].strip(), row[1].strip()
            if not key:
                raise ValidationError(MSG_CSV_EMPTY_KEY.format(row=number), code="lookup_csv")
            if len(key) > MAX_VALUE_CHARS or len(value) > MAX_VALUE_CHARS:
                raise ValidationError(MSG_CSV_VALUE_TOO_LONG.format(row=number, limit=MAX_VALUE_CHARS),
                                      code="lookup_csv")
            if key in entries:
                raise ValidationError(MSG_CSV_DUPLICATE.format(row=number, key=key, first=first_row[key]),
                                      code="lookup_csv")
            if len(entries) >= MAX_LOOKUP_ROWS:
                raise ValidationError(MSG_CSV_TOO_MANY.format(limit=MAX_LOOKUP_ROWS), code="lookup_csv")
            entries[key] = value
            first_row[key] = number
    except csv.Error as e:
        raise ValidationError(MSG_CSV_BAD.format(row=reader.line_num, detail=e), code="lookup_csv") from None
    if not entries:
        raise ValidationError(MSG_CSV_NO_ROWS, code="lookup_csv")
    return entries


def lookup_table_put(*, name: str, project_id: str | None, data: bytes, actor: str):
    """Create or replace the site's (``project_id`` None) or a project's lookup table ``name`` from CSV
    bytes. Bad input raises ValidationError and changes nothing."""
    from anonymization.models import TABLE_NAME, LookupTable

    TABLE_NAME(name)
    entries = lookup_csv_parse(data=data)
    with transaction.atomic():
        table, _created = LookupTable.objects.select_for_update().get_or_create(
            name=name, project_id=project_id, defaults={"entries": entries, "row_count": len(entries),
                                                         "updated_by": actor})
        if not _created:
            table.entries, table.row_count, table.updated_by = entries, len(entries), actor
            table.save(update_fields=["entries", "row_count", "updated_by", "updated"])
    return table


def lookup_table_delete(*, name: str, project_id: str | None) -> bool:
    """Remove a lookup table; False if there was none."""
    from anonymization.models import LookupTable

    deleted, _ = LookupTable.objects.filter(name=name, project_id=project_id).delete()
    return bool(deleted)


def lookup_table_names(*, project_id: str | None) -> set[str]:
    """Names ``lookup[]`` may use in the site script (None) or in project ``project_id``'s script."""
    from anonymization.models import LookupTable
    from django.db.models import Q

    scope = Q(project__isnull=True) | (Q(project_id=project_id) if project_id else Q(pk__in=[]))
    return set(LookupTable.objects.filter(scope).values_list("name", flat=True))


_GRANTS_TTL_S = 1.0
_grants_lock = threading.Lock()
_tables_cache: dict[tuple[str, str | None], tuple[float, dict[str, dict[str, str]], bool]] = {}


def _site_grants(project_id: str | None) -> tuple[dict[str, dict[str, str]], bool]:
    """(lookup tables, getURL allowed) for a script of ``project_id`` (None: the site script).

    Read at most once a second per process (intake asks for every file), dropped at once when this
    process saves or deletes a lookup table or the site configuration; inside a transaction (tests, a
    caller's atomic block) always read fresh, as prearchive.services.context does for its snapshot."""
    from django.db import DEFAULT_DB_ALIAS, connections

    connection = connections[DEFAULT_DB_ALIAS]  # looked up once (each django.db.connection.x is a look-up)
    key = (connection.settings_dict.get("NAME", ""), project_id)
    now = time.monotonic()
    hit = None if connection.in_atomic_block else _tables_cache.get(key)
    if hit is not None and now - hit[0] < _GRANTS_TTL_S:
        return hit[1], hit[2]
    from anonymization.models import LookupTable
    from xnatlite.selectors import dicomedit_allow_get_url

    tables: dict[str, dict[str, str]] = {}
    for t in LookupTable.objects.filter(project__isnull=True).only("name", "entries"):
        tables[t.name] = t.entries
    if project_id:
        for t in LookupTable.objects.filter(project_id=project_id).only("name", "entries"):
            tables[t.name] = t.entries
    allow = dicomedit_allow_get_url()
    if not connection.in_atomic_block:
        with _grants_lock:
            _tables_cache[key] = (now, tables, allow)
    return tables, allow


def _grants_invalidate(**kwargs) -> None:
    with _grants_lock:
        _tables_cache.clear()


def grants_signals_connect() -> None:
    """Called from the app's ready(): drop the cache when a table or the site configuration changes."""
    from django.db.models.signals import post_delete, post_save

    from anonymization.models import LookupTable
    from xnatlite.models import SiteConfig

    for model in (LookupTable, SiteConfig):
        post_save.connect(_grants_invalidate, sender=model, weak=False,
                          dispatch_uid=f"anonymization.grants.save.{model.__name__}")
        post_delete.connect(_grants_invalidate, sender=model, weak=False,
                            dispatch_uid=f"anonymization.grants.delete.{model.__name__}")


def lookup_tables_for(*, project_id: str | None) -> dict[str, dict[str, str]]:
    """The tables a script sees: the site's, and for a project script the project's over them (a
    project table wins over a site table of the same name)."""
    return _site_grants(project_id)[0]


def run_context_for(*, project_id: str | None, echo: Callable[[str], None] | None = None,
                    **fields) -> RunContext:
    """A RunContext with what the site gives scripts: the lookup tables of the site (and the project's,
    for a project script), and getURL only when the site setting ``dicomEditAllowGetUrl`` is on."""
    tables, allow = _site_grants(project_id)
    run = RunContext(lookup_tables=tables, allow_get_url=allow, **fields)
    if echo is not None:
        run.echo = echo
    return run
