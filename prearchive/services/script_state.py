"""One DicomEdit script context per session, kept in the database.

DicomEdit keeps per-run state in its functions: ``mapReferencedUIDs`` and ``mapUID`` remember which new UID
they gave each value, so that every file of a study gets the same one. Intake runs the site script file by
file, in several processes (receivers, inbox, REST import), and a study may arrive through more than one of
them or across a restart. So the memo of a session lives in the database (``ScriptMemo``) under a *scope*
that names the script and the session before the script ran (an HMAC of its original Study Instance UID;
the original itself is never stored):

* a value is looked up in this process's cache, then in the database;
* a value the script mapped for the first time is written with INSERT ... ON CONFLICT DO NOTHING after the
  file's run and read back: if another process mapped it first, ``commit`` says so and the caller runs the
  script on that file again, now with the winner's UID (a race only the first files of a study can meet).

Memo keys are HMACs with the site secret (``phi_hmac``): the table holds new UIDs and keyed hashes, never an
original identifier. ``echo`` output of a run is collected and written to the session's processing record
(``SessionNote``), never to a log or to stdout.
"""
from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict
from collections.abc import Iterator, MutableMapping
from typing import Any

from django.conf import settings
from django.db import connection

_SEP = "\x1f"
_NULL = "\x00null"


_KEYED: tuple[str, Any] | None = None  # (secret, an HMAC object keyed with it, copied for each value)


def _keyed():
    global _KEYED
    secret = str(getattr(settings, "PHI_HMAC_SECRET", "") or settings.SECRET_KEY)
    keyed = _KEYED
    if keyed is None or keyed[0] != secret:
        key = hashlib.sha256(b"xnatlite-phi-hmac\x00" + secret.encode("utf-8")).digest()
        keyed = _KEYED = (secret, hmac.new(key, digestmod=hashlib.sha256))
    return keyed[1]


def phi_hmac_keyed():
    """The HMAC object keyed with the site secret: the same object until the secret changes (so a cache of
    digests can tell which secret they were made with)."""
    return _keyed()


def phi_hmac(value: str, *, purpose: str = "") -> str:
    """The keyed hash (HMAC-SHA256 with the site secret, settings.PHI_HMAC_SECRET or else SECRET_KEY) of
    ``value``: 64 hex digits. ``purpose`` keeps the hashes of different uses apart."""
    mac = _keyed().copy()
    mac.update(f"{purpose}{_SEP}{value}".encode("utf-8", "surrogatepass"))
    return mac.hexdigest()


def _memo_key(key: Any) -> str:
    if isinstance(key, tuple):
        text = _SEP.join(_NULL if k is None else str(k) for k in key)
    else:
        text = _NULL if key is None else str(key)
    return text


class DbMemo(MutableMapping):
    """A DicomEdit memo (``RunContext.uid_map`` / ``mapped_uids``) backed by ``ScriptMemo`` rows of one
    scope. Reads: this process's cache, then the database. Writes wait in ``new`` until ``commit``."""

    def __init__(self, scope: str, kind: str, cache: dict[str, str]) -> None:
        self.scope, self.kind = scope, kind
        self.cache = cache  # hmac -> value, shared by every context of this scope in this process
        self.new: dict[str, str] = {}

    def _h(self, key: Any) -> str:
        return phi_hmac(_memo_key(key), purpose=f"memo:{self.kind}")

    def _lookup(self, h: str) -> str | None:
        value = self.new.get(h) or self.cache.get(h)
        if value is None:
            from prearchive.models import ScriptMemo

            value = (ScriptMemo.objects.filter(scope=self.scope, kind=self.kind, key=h)
                     .values_list("value", flat=True).first())
            if value is not None:
                self.cache[h] = value
        return value

    def __getitem__(self, key: Any) -> str:
        value = self._lookup(self._h(key))
        if value is None:
            raise KeyError("not mapped")
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        value = self._lookup(self._h(key))
        return default if value is None else value

    def __contains__(self, key: object) -> bool:
        return self._lookup(self._h(key)) is not None

    def __setitem__(self, key: Any, value: str) -> None:
        self.new[self._h(key)] = value

    def __delitem__(self, key: Any) -> None:
        raise TypeError("a script memo entry is never removed")

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self.cache, **self.new))

    def __len__(self) -> int:
        return len(dict(self.cache, **self.new))

    def commit(self) -> bool:
        """Write the entries this run added; False if another process had mapped one of them already (the
        cache now holds the winner's UID: run the file again)."""
        if not self.new:
            return True
        from prearchive.models import ScriptMemo

        new, self.new = self.new, {}
        table = connection.ops.quote_name(ScriptMemo._meta.db_table)
        with connection.cursor() as cursor:
            for h, value in new.items():
                cursor.execute(f"INSERT INTO {table} (scope, kind, key, value) VALUES (%s, %s, %s, %s) "
                               "ON CONFLICT (scope, kind, key) DO NOTHING", [self.scope, self.kind, h, value])
        stored = dict(ScriptMemo.objects.filter(scope=self.scope, kind=self.kind, key__in=list(new))
                      .values_list("key", "value"))
        self.cache.update(stored)
        return all(stored.get(h) == value for h, value in new.items())


_CACHES: "OrderedDict[tuple[str, str], dict[str, str]]" = OrderedDict()
_CACHES_MAX = 256
_lock = threading.Lock()


def _cache_for(scope: str, kind: str) -> dict[str, str]:
    with _lock:
        key = (connection.settings_dict.get("NAME", "") + _SEP + scope, kind)
        cache = _CACHES.get(key)
        if cache is None:
            cache = _CACHES[key] = {}
        _CACHES.move_to_end(key)
        while len(_CACHES) > _CACHES_MAX:
            _CACHES.popitem(last=False)
        return cache


def caches_clear() -> None:
    """Forget this process's memo caches (tests; the database keeps the memos)."""
    with _lock:
        _CACHES.clear()


class SessionScriptContext:
    """The script context of one session for one script: a RunContext whose memos are the session's rows,
    and the ``echo`` lines of the runs since the last ``take_echoes``."""

    def __init__(self, *, scope: str, allow_get_url: bool = False, project_id: str | None = None) -> None:
        from anonymization.dicomedit.context import RunContext
        from anonymization.services import lookup_tables_for

        self.scope = scope
        self.echoes: list[str] = []
        self.uid_map = DbMemo(scope, "ref", _cache_for(scope, "ref"))
        self.mapped_uids = DbMemo(scope, "uid", _cache_for(scope, "uid"))
        # lookup[] reads the site's tables (and, for a project script, the project's over them)
        self.run = RunContext(uid_map=self.uid_map, mapped_uids=self.mapped_uids, echo=self.echoes.append,
                              allow_get_url=allow_get_url, lookup_tables=lookup_tables_for(project_id=project_id))

    def discard(self) -> None:
        """Forget what the last run mapped and echoed (the file was not kept, or is run again)."""
        self.uid_map.new.clear()
        self.mapped_uids.new.clear()

    def commit(self) -> bool:
        """Store the memos of the last run; False: another process mapped a value first, run the file again."""
        ok_ref = self.uid_map.commit()
        ok_uid = self.mapped_uids.commit()
        return ok_ref and ok_uid

    def session_tag(self, *, project_id: str | None, label: str) -> str:
        """The tag (Study Instance UID after the script) of the session the files of this study went to,
        if one was stored; else a stand-in derived from the keyed hash of the original."""
        memo = DbMemo(self.scope, "sess", _cache_for(self.scope, "sess"))
        return memo.get((project_id, label)) or stand_in_uid(self.scope, what="session")

    def session_tag_remember(self, *, project_id: str | None, label: str, tag: str) -> None:
        memo = DbMemo(self.scope, "sess", _cache_for(self.scope, "sess"))
        if memo.cache.get(memo._h((project_id, label))) is None:
            memo[(project_id, label)] = tag
            memo.commit()

    def take_echoes(self) -> list[str]:
        lines, self.echoes[:] = list(self.echoes), []
        return lines


def stand_in_uid(value: str, *, what: str) -> str:
    """A UID derived from the keyed hash of ``value`` (``2.25.`` and 128 bits): stands for an identifier the
    script removed, where a session or file still needs one to be grouped by."""
    return "2.25." + str(int(phi_hmac(value, purpose=f"stand-in:{what}")[:32], 16))


def site_context(*, study_uid: str, allow_get_url: bool | None = None) -> SessionScriptContext:
    """The site-wide script's context for the session of the study whose original UID is ``study_uid``.
    ``allow_get_url``: the site's dicomEditAllowGetUrl (read here when the caller has no snapshot of it)."""
    return SessionScriptContext(scope="site:" + phi_hmac(study_uid, purpose="scope"),
                                allow_get_url=_allow_get_url(allow_get_url))


def project_context(*, project_id: str, study_uid: str, allow_get_url: bool | None = None) -> SessionScriptContext:
    """The project script's context for one session (archive, relabel, re-anonymize)."""
    return SessionScriptContext(scope="project:" + phi_hmac(f"{project_id}{_SEP}{study_uid}", purpose="scope"),
                                allow_get_url=_allow_get_url(allow_get_url), project_id=project_id)


def _allow_get_url(given: bool | None) -> bool:
    if given is not None:
        return given
    from xnatlite.selectors import dicomedit_allow_get_url

    return dicomedit_allow_get_url()


def session_notes_add(*, session_id: int | None, origin: str, lines: list[str]) -> None:
    """Append ``echo`` output to the session's processing record (what its reviewers see)."""
    if session_id is None or not lines:
        return
    from prearchive.models import SessionNote

    SessionNote.objects.bulk_create([SessionNote(session_id=session_id, origin=origin[:32], text=line)
                                     for line in lines])


def session_notes(*, session_id: int) -> list[dict[str, str]]:
    from prearchive.models import SessionNote

    return [{"at": at.isoformat(), "origin": origin, "text": text}
            for at, origin, text in SessionNote.objects.filter(session_id=session_id)
            .values_list("at", "origin", "text")]
