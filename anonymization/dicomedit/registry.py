"""The table of built-in functions: names, arities and the dialects that have them."""
from __future__ import annotations

from typing import Any

from . import ast as A
from . import dicomfuncs as D
from . import functions as F
from .functions import FunctionSpec
from .pixels import f_alter_pixels

BOTH = frozenset({"4", "6"})
DE6 = frozenset({"6"})
DE4 = frozenset({"4"})

# Registered by DicomEdit but with semantics we could not confirm: refused at check time (none now).
UNSUPPORTED: frozenset[str] = frozenset()


def _private_paths_only(args: list[Any], fail: Any, tok: Any) -> None:
    for arg in args:
        if isinstance(arg, A.PathArg) and not arg.path.is_private:
            raise fail(arg, f"retainPrivateTags accepts private tags only, not {arg.path.text}")


def _no_lists(args: list[Any], fail: Any, tok: Any) -> None:
    for arg in args:
        if isinstance(arg, A.ListLit):
            raise fail(arg, f"{tok.value} does not take a list")


def _literal(arg: Any) -> str | None:
    if isinstance(arg, A.Str):
        return arg.value
    if isinstance(arg, A.Num):
        return arg.text
    return None


def _map_uid_args(args: list[Any], fail: Any, tok: Any) -> None:
    _no_lists(args, fail, tok)
    prefix = _literal(args[1])
    if prefix is not None and (len(prefix) > F.MAX_UID_ROOT or not F.UID_ROOT.fullmatch(prefix)):
        raise fail(args[1], f"mapUID: '{prefix}' is not a UID root (digits separated by dots, "
                            f"at most {F.MAX_UID_ROOT} characters)")


def _lookup_args(args: list[Any], fail: Any, tok: Any) -> None:
    _no_lists(args, fail, tok)
    table = _literal(args[0])
    if table is not None and (not table or table != table.strip() or "/" in table or "=" in table):
        raise fail(args[0], f"lookup: '{table}' can never name a lookup table "
                            "(empty, surrounding spaces, '/' or '=')")
    key = _literal(args[1])
    if key is not None and ("/" in key or "=" in key):
        raise fail(args[1], "lookup: a key with '/' or '=' can never be in a lookup table")


def _first_is_path(args: list[Any], fail: Any, tok: Any) -> None:
    if isinstance(args[0], (A.Num, A.ListLit)):
        raise fail(args[0], f"{tok.value} needs a tag path as its first argument")


_SPECS = [
    FunctionSpec("lowercase", F.f_lowercase, 1, 1, BOTH),
    FunctionSpec("uppercase", F.f_uppercase, 1, 1, BOTH),
    FunctionSpec("concatenate", F.f_concatenate, 1, None, BOTH),
    FunctionSpec("format", F.f_format, 1, None, BOTH),
    FunctionSpec("substring", F.f_substring, 3, 3, BOTH),
    FunctionSpec("replace", F.f_replace, 3, 3, BOTH),
    FunctionSpec("match", F.f_match, 3, 3, BOTH),
    FunctionSpec("ismatch", F.f_ismatch, 2, 2),
    FunctionSpec("hashUID", F.f_hash_uid, 1, 2, BOTH),
    FunctionSpec("hashUIDList", D.f_hash_uid_list, 1, None, path_args="all"),
    FunctionSpec("newUID", F.f_new_uid, 0, 0),
    FunctionSpec("getURL", F.f_get_url, 1, 1, BOTH),
    FunctionSpec("urlEncode", F.f_url_encode, 1, 1, DE4),
    FunctionSpec("retainPrivateTags", D.f_retain_private_tags, 1, None, path_args="all",
                 checker=_private_paths_only),
    FunctionSpec("shiftDateByIncrement", D.f_shift_date, 2, 3),
    FunctionSpec("shiftDateTimeByIncrement", D.f_shift_datetime, 2, 3),
    FunctionSpec("shiftDateTimeSequenceByIncrement", D.f_shift_datetime_sequence, 2, None, path_args="rest"),
    FunctionSpec("shiftDateTimeListByIncrement", D.f_shift_datetime_list, 2, 3, path_args="first"),
    FunctionSpec("mapUID", F.f_map_uid, 2, 2, checker=_map_uid_args),
    FunctionSpec("lookup", F.f_lookup, 2, 2, checker=_lookup_args),
    FunctionSpec("scalePatientAgeAndDobFromStudyDate", D.f_scale_age_and_dob, 0, 0),
    FunctionSpec("mapReferencedUIDs", D.f_map_referenced_uids, 2, None, path_args="rest"),
    FunctionSpec("delete", D.f_delete, 1, None, path_args="all"),
    FunctionSpec("set", D.f_set, 2, 2, path_args="first", checker=_first_is_path),
    FunctionSpec("removeTags", D.f_remove_tags, 1, None, path_args="all"),
    FunctionSpec("isPresent", F.f_is_present, 1, None, path_args="all"),
    FunctionSpec("true", F.f_true, 0, 0),
    FunctionSpec("false", F.f_false, 0, 0),
    FunctionSpec("reject", F.f_reject, 0, 0),
    FunctionSpec("normalizeString", F.f_normalize, 1, 2),
    FunctionSpec("alterPixels", f_alter_pixels, 4, 4),
    # XNAT's uploaders' function (seed 004, reference §5); on the server it only computes the label.
    FunctionSpec("makeSessionLabel", F.f_make_session_label, 1, 1, BOTH),
    FunctionSpec("collectValues", D.f_collect_values, 0, None, path_args="all"),
    FunctionSpec("blankValues", D.f_blank_values, 0, None),
    FunctionSpec("blankKnownPHI", D.f_blank_values, 0, None),
]

FUNCTIONS: dict[str, FunctionSpec] = {spec.name: spec for spec in _SPECS}
