"""Built-in functions: one registry of specs (name, arity, dialects) and their implementations.

Implementations take ``(ctx, args)`` where args are evaluated values: ``str``, ``None`` (null),
``bool``, ``list`` (a DicomEdit list), or a ``TagPath`` (a tag path passed as an argument).
"""
from __future__ import annotations

import re
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .context import Ctx
from .errors import DicomEditSyntaxError, RejectFile, ScriptRuntimeFault
from . import jregex
from .jregex import compile_java
from .labels import indexed_label
from .limits import MAX_LIST_ITEMS, MAX_VALUE_CHARS
from .messageformat import MessageFormatError, compile_pattern, format_compiled
from .tagpath import TagPath
from .uids import hash_uid, new_uid, new_uid_with_prefix
from .values import element_string

VOID: Any = type("Void", (), {"__repr__": lambda self: "VOID"})()

Impl = Callable[[Ctx, list[Any]], Any]


@dataclass
class FunctionSpec:
    name: str
    impl: Impl
    min_args: int
    max_args: int | None
    dialects: frozenset[str] = frozenset({"6"})
    path_args: str = "none"  # which string literals are tag paths: none | all | rest | first
    checker: Callable[..., None] | None = field(default=None)

    def arity_text(self) -> str:
        if self.max_args == self.min_args:
            n = self.min_args
            return "no arguments" if n == 0 else f"{n} argument{'s' if n != 1 else ''}"
        if self.max_args is None:
            return f"at least {self.min_args} argument{'s' if self.min_args != 1 else ''}"
        return f"{self.min_args} to {self.max_args} arguments"

    def is_path_arg(self, index: int) -> bool:
        p = self.path_args
        return p == "all" or (p == "rest" and index > 0) or (p == "first" and index == 0)

    def check(self, args: list[Any], fail: Callable[..., DicomEditSyntaxError], tok: Any) -> None:
        if self.checker is not None:
            self.checker(args, fail, tok)


# -- size limits ---------------------------------------------------------------------------------
class ValueList(list):  # type: ignore[type-arg]
    """A DicomEdit list literal's value; ``leaves`` and ``chars`` count it flat (nested lists included),
    worked out once when it is built, so ``l := {l, l}`` repeated cannot grow without being noticed."""

    __slots__ = ("leaves", "chars")


def too_long(what: str = "value") -> ScriptRuntimeFault:
    return ScriptRuntimeFault(f"{what} would be longer than the limit of {MAX_VALUE_CHARS:,} characters")


def capped(v: Any) -> Any:
    """``v`` if it is within the value size limit (strings and lists), else a located fault."""
    if type(v) is str:
        if len(v) > MAX_VALUE_CHARS:
            raise too_long()
    elif isinstance(v, ValueList) and v.chars > MAX_VALUE_CHARS:
        raise too_long("list")
    return v


def value_list(items: list[Any]) -> ValueList:
    out = ValueList(items)
    leaves = chars = 0
    for item in items:
        if isinstance(item, ValueList):
            leaves += item.leaves
            chars += item.chars
        elif isinstance(item, list):
            leaves += len(item)
            chars += sum(len(x) for x in item if type(x) is str)
        else:
            leaves += 1
            if type(item) is str:
                chars += len(item)
    if leaves > MAX_LIST_ITEMS:
        raise ScriptRuntimeFault(f"list would hold more than the limit of {MAX_LIST_ITEMS:,} values")
    if chars > MAX_VALUE_CHARS:
        raise too_long("list")
    out.leaves, out.chars = leaves, chars
    return out


def value_chars(v: Any) -> int:
    if type(v) is str:
        return len(v)
    if isinstance(v, ValueList):
        return v.chars
    if isinstance(v, list):
        return sum(len(x) for x in v if type(x) is str)
    return 0


# -- argument helpers ----------------------------------------------------------------------------
def flatten(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if isinstance(v, list):
            out.extend(flatten(v))
        else:
            out.append(v)
    return out


def to_str(ctx: Ctx, v: Any) -> str | None:
    """DicomEdit's asString(): a tag path reads its element (null if absent)."""
    if v is None or type(v) is str:
        return v
    if isinstance(v, TagPath):
        found = v.find(ctx.ds)
        return element_string(*found[0]) if found else None
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, list):
        return ", ".join(str(to_str(ctx, x)) for x in v)
    if v is VOID:
        raise ScriptRuntimeFault("value is VOID")
    return str(v)


def to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    return isinstance(v, str) and v.strip().lower() == "true"


def to_paths(v: Any, dialect: str = "6") -> list[TagPath]:
    from .parser import parse_tagpath_text  # the parser imports this module

    out: list[TagPath] = []
    for item in flatten([v]):
        if isinstance(item, TagPath):
            out.append(item)
        elif isinstance(item, str):
            try:
                out.append(parse_tagpath_text(item, dialect))
            except DicomEditSyntaxError as e:
                raise ScriptRuntimeFault(f"bad tag path: {e.message}") from None
        else:
            raise ScriptRuntimeFault("expected a tag path")
    return out


def _int_arg(ctx: Ctx, v: Any, what: str) -> int:
    s = to_str(ctx, v)
    try:
        return int(str(s).strip())
    except ValueError:
        raise ScriptRuntimeFault(f"{what} is not an integer") from None


def _time_out() -> ScriptRuntimeFault:
    return ScriptRuntimeFault("the script's time limit ran out in a regular expression (it backtracks too much)")


def regex_fullmatch(ctx: Ctx, rx: Any, s: str) -> Any:
    try:
        return jregex.fullmatch(rx, s, ctx.deadline)
    except jregex.RegexTimeout:
        raise _time_out() from None


def regex_search(ctx: Ctx, rx: Any, s: str) -> Any:
    try:
        return jregex.search(rx, s, ctx.deadline)
    except jregex.RegexTimeout:
        raise _time_out() from None


def _regex(pattern: str | None) -> Any:
    if pattern is None:
        raise ScriptRuntimeFault("regular expression is null")
    try:
        return compile_java(pattern)
    except re.error:
        raise ScriptRuntimeFault("invalid regular expression") from None


# -- string functions ----------------------------------------------------------------------------
def f_lowercase(ctx: Ctx, a: list[Any]) -> Any:
    s = to_str(ctx, a[0])
    return None if s is None else s.lower()


def f_uppercase(ctx: Ctx, a: list[Any]) -> Any:
    s = to_str(ctx, a[0])
    return None if s is None else s.upper()


def f_concatenate(ctx: Ctx, a: list[Any]) -> Any:
    parts = [s if s is not None else "null" for s in (to_str(ctx, v) for v in flatten(a))]
    if sum(map(len, parts)) > MAX_VALUE_CHARS:
        raise too_long()
    return "".join(parts)


_FORMAT_CACHE: dict[str, Any] = {}


def f_format(ctx: Ctx, a: list[Any]) -> Any:
    values = flatten(a)
    pattern = to_str(ctx, values[0])
    if pattern is None:
        raise ScriptRuntimeFault("format pattern is null")
    compiled = _FORMAT_CACHE.get(pattern)
    try:
        if compiled is None:
            compiled = compile_pattern(pattern)
            if len(_FORMAT_CACHE) < 4096:
                _FORMAT_CACHE[pattern] = compiled
        args = [to_str(ctx, v) for v in values[1:]]
        nargs = len(args)
        estimate = 0
        for part in compiled:
            if type(part) is str:
                estimate += len(part)
            else:
                arg = args[part[0]] if part[0] < nargs else None
                estimate += 2 * len(arg or "") + 8
        if estimate > MAX_VALUE_CHARS:
            raise too_long()
        return format_compiled(compiled, args)
    except MessageFormatError as e:
        raise ScriptRuntimeFault(f"format: {e}") from None


def f_substring(ctx: Ctx, a: list[Any]) -> Any:
    s = to_str(ctx, a[0])
    begin = _int_arg(ctx, a[1], "substring begin")
    end = _int_arg(ctx, a[2], "substring end")
    if s is None:
        return None
    if begin < 0 or end > len(s) or begin > end:
        raise ScriptRuntimeFault(f"substring range [{begin}, {end}) out of bounds for a value of length {len(s)}")
    return s[begin:end]


def f_replace(ctx: Ctx, a: list[Any]) -> Any:
    s, find, repl = (to_str(ctx, v) for v in a)
    if s is None:
        return None
    find = find or ""
    repl = repl if repl is not None else "null"
    count = s.count(find) if find else len(s) + 1
    if len(s) + count * (len(repl) - len(find)) > MAX_VALUE_CHARS:
        raise too_long()
    return s.replace(find, repl)


def f_match(ctx: Ctx, a: list[Any]) -> Any:
    s = to_str(ctx, a[0])
    rx = _regex(to_str(ctx, a[1]))
    group = _int_arg(ctx, a[2], "match group")
    if s is None:
        return None
    m = regex_search(ctx, rx, s)
    if m is None:
        return None
    try:
        return m.group(group)
    except IndexError:
        raise ScriptRuntimeFault(f"no group {group} in regular expression") from None


def f_ismatch(ctx: Ctx, a: list[Any]) -> Any:
    s = to_str(ctx, a[0])
    rx = _regex(to_str(ctx, a[1]))
    return "true" if s is not None and regex_fullmatch(ctx, rx, s) else "false"


def f_normalize(ctx: Ctx, a: list[Any]) -> Any:
    s = to_str(ctx, a[0])
    repl = to_str(ctx, a[1]) if len(a) > 1 else "_"
    if s is None:
        return None
    if s.isascii():
        return s
    return "".join(ch if ord(ch) < 128 else (repl or "") for ch in s)


def f_url_encode(ctx: Ctx, a: list[Any]) -> Any:
    s = to_str(ctx, a[0])
    if s is None:
        return None
    return urllib.parse.quote_plus(s, safe="*").replace("~", "%7E")


def f_get_url(ctx: Ctx, a: list[Any]) -> Any:
    url = to_str(ctx, a[0])
    run = ctx.run
    if not run.allow_get_url:
        raise ScriptRuntimeFault("getURL is disabled on this site (site setting dicomEditAllowGetUrl)")
    if url is None:
        raise ScriptRuntimeFault("getURL: URL is null")
    if run.url_fetcher is not None:
        return run.url_fetcher(url)
    if not url.lower().startswith(("http://", "https://")):
        raise ScriptRuntimeFault("getURL accepts only http and https URLs")
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (site-enabled)
            body = resp.read(MAX_VALUE_CHARS + 1)
    except OSError as e:
        raise ScriptRuntimeFault(f"getURL failed: {type(e).__name__}") from None
    if len(body) > MAX_VALUE_CHARS:
        raise too_long("getURL's answer")
    return body.decode("utf-8", "replace")


# -- UIDs ----------------------------------------------------------------------------------------
def f_hash_uid(ctx: Ctx, a: list[Any]) -> Any:
    return hash_uid(to_str(ctx, a[0]))


def f_new_uid(ctx: Ctx, a: list[Any]) -> Any:
    return new_uid()


UID_ROOT = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*\.?")
MAX_UID_ROOT = 62  # leaves room for "." and at least one digit in a 64-character UID


def f_map_uid(ctx: Ctx, a: list[Any]) -> Any:
    """``mapUID[value, prefix]``: a new random UID under ``prefix`` for each distinct value (null and
    "" included), the same one whenever that value comes again in the run."""
    value = to_str(ctx, a[0])
    prefix = to_str(ctx, a[1])
    if prefix is None or len(prefix) > MAX_UID_ROOT or not UID_ROOT.fullmatch(prefix):
        raise ScriptRuntimeFault("mapUID: the prefix is not a UID root (digits separated by dots, "
                                 f"at most {MAX_UID_ROOT} characters)")
    memo = ctx.run.mapped_uids
    uid = memo.get(value)
    if uid is None:  # DicomEdit keys the memo by value alone: the first prefix seen for a value wins
        uid = memo[value] = new_uid_with_prefix(prefix)
    return uid


def f_lookup(ctx: Ctx, a: list[Any]) -> Any:
    """``lookup[table, key]``: the value of ``key`` in the site-provided table (null if the key is
    not in it); a table the run was not given is an error."""
    table_name = to_str(ctx, a[0])
    table = ctx.run.lookup_tables.get(table_name) if table_name is not None else None
    if table is None:
        raise ScriptRuntimeFault(f"lookup: no lookup table '{table_name}' was provided for this run")
    key = to_str(ctx, a[1])
    return None if key is None else table.get(key)


# -- uploader labels -----------------------------------------------------------------------------
def f_make_session_label(ctx: Ctx, a: list[Any]) -> Any:
    """``makeSessionLabel[pattern]``: ``pattern`` with its run of ``#`` replaced by the first visit
    number not taken in the project (``ctx.run.session_labels``), as XNAT's uploaders do (seed 004)."""
    pattern = to_str(ctx, a[0])
    if pattern is None:
        return None
    return indexed_label(pattern, ctx.run.session_labels)


# -- logic ---------------------------------------------------------------------------------------
def f_true(ctx: Ctx, a: list[Any]) -> Any:
    return True


def f_false(ctx: Ctx, a: list[Any]) -> Any:
    return False


def f_reject(ctx: Ctx, a: list[Any]) -> Any:
    raise RejectFile()


def f_is_present(ctx: Ctx, a: list[Any]) -> Any:
    paths = to_paths(a, ctx.dialect)
    return all(p.find(ctx.ds) for p in paths)
