"""Compile a parsed script into closures once; apply them to any number of datasets."""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.uid import UID

from . import ast as A
from .context import ApplyResult, Ctx, RunContext
from .dicomfuncs import delete_path
from .errors import (DicomEditError, DicomEditRuntimeError, DicomEditSyntaxError, RejectFile,
                     ScriptRuntimeFault)
from .functions import (VOID, capped, regex_fullmatch, to_bool, to_str, too_long, value_chars,
                        value_list)
from .jregex import compile_java
from .limits import MAX_VALUE_CHARS, MAX_VARIABLE_CHARS
from .pixels import append_code
from .registry import FUNCTIONS
from .tagpath import TagPath, sequences_of
from .uids import hash_uid, new_uid
from .values import assign_string, element_string

Eval = Callable[[Ctx], Any]
Run = Callable[[Ctx], None]

CODE_MEANING = {"6": "XNAT DicomEdit 6 Script", "4": "XNAT DicomEdit 4 Script"}
_SOP_CLASS_UID = 0x00080016
_SOP_INSTANCE_UID = 0x00080018
_MEDIA_SOP_CLASS_UID = 0x00020002
_MEDIA_SOP_INSTANCE_UID = 0x00020003


def _time_up() -> ScriptRuntimeFault:
    return ScriptRuntimeFault("the script's time limit ran out")


# -- values --------------------------------------------------------------------------------------
def compile_value(node: A.Node) -> Eval:
    if isinstance(node, (A.Str, A.Num)):
        const = node.value if isinstance(node, A.Str) else node.text
        return lambda ctx: const
    if isinstance(node, A.Var):
        name = node.name
        return lambda ctx: ctx.vars.get(name)
    if isinstance(node, A.TagValue):
        return _tag_reader(node.path)
    if isinstance(node, A.PathArg):
        path = node.path
        return lambda ctx: path
    if isinstance(node, A.ListLit):
        items = [compile_value(i) for i in node.items]
        return lambda ctx: value_list([ev(ctx) for ev in items])
    if isinstance(node, A.NewUID):
        return lambda ctx: new_uid()
    if isinstance(node, A.Call):
        return _compile_call(node)
    raise TypeError(f"not a value node: {type(node).__name__}")


def _tag_reader(path: TagPath) -> Eval:
    if path.simple:
        tag = path.steps[0][1].exact

        def read_simple(ctx: Ctx) -> Any:
            return element_string(ctx.ds, tag)
        return read_simple

    def read(ctx: Ctx) -> Any:
        found = path.find(ctx.ds)
        return element_string(*found[0]) if found else None
    return read


def _compile_call(node: A.Call) -> Eval:
    impl = FUNCTIONS[node.name].impl
    if node.name == "hashUID":  # the hot path of most site scripts
        arg = node.args[0]
        if isinstance(arg, A.PathArg) and arg.path.simple:
            tag = arg.path.steps[0][1].exact
            return lambda ctx: hash_uid(element_string(ctx.ds, tag))
    if node.name == "format" and node.args and isinstance(node.args[0], A.Str):
        _check_format(node.args[0])
    if node.name in ("match", "ismatch") and isinstance(node.args[1], A.Str):
        _check_regex(node.args[1])
    evs = [compile_value(a) for a in node.args]
    if not evs:
        return lambda ctx: capped(impl(ctx, []))
    return lambda ctx: capped(impl(ctx, [ev(ctx) for ev in evs]))


def _check_regex(node: A.Str) -> re.Pattern[str]:
    try:
        return compile_java(node.value)
    except re.error as e:
        raise DicomEditSyntaxError(f"invalid regular expression: {e.msg}", node.line, node.column) from None


def _check_format(node: A.Str) -> None:
    from .messageformat import MessageFormatError, compile_pattern

    try:
        compile_pattern(node.value)
    except MessageFormatError as e:
        raise DicomEditSyntaxError(f"invalid format pattern: {e}", node.line, node.column) from None


# -- conditions ----------------------------------------------------------------------------------
def compile_condition(cond: A.Condition) -> Callable[[Ctx], bool]:
    left = compile_value(cond.left)
    if cond.op is None:
        return lambda ctx: to_bool(left(ctx))
    right_node = cond.right
    assert right_node is not None
    right = compile_value(right_node)
    op = cond.op
    if op in ("=", "!="):
        negate = op == "!="

        def equals(ctx: Ctx) -> bool:
            s1 = to_str(ctx, left(ctx))
            result = s1 is not None and s1 == to_str(ctx, right(ctx))
            return result != negate
        return equals
    negate = op == "!~"
    if isinstance(right_node, A.Str):
        rx = _check_regex(right_node)

        def matches_const(ctx: Ctx) -> bool:
            s1 = to_str(ctx, left(ctx))
            return (s1 is not None and regex_fullmatch(ctx, rx, s1) is not None) != negate
        return matches_const

    def matches(ctx: Ctx) -> bool:
        s1 = to_str(ctx, left(ctx))
        pattern = to_str(ctx, right(ctx))
        if s1 is None:
            return negate
        if pattern is None:
            raise ScriptRuntimeFault("regular expression is null")
        try:
            rx_ = compile_java(pattern)
        except re.error:
            raise ScriptRuntimeFault("invalid regular expression") from None
        return (regex_fullmatch(ctx, rx_, s1) is not None) != negate
    return matches


# -- statements ----------------------------------------------------------------------------------
def _string_for_assign(ctx: Ctx, v: Any) -> str | None:
    if v is VOID:
        raise ScriptRuntimeFault("Assigned value is VOID")
    s = to_str(ctx, v)
    if s is not None and len(s) > MAX_VALUE_CHARS:
        raise too_long()
    return s


def _compile_assign(node: A.Assign, dialect: str) -> Run:
    ev = compile_value(node.value)
    path = node.path
    first_wins = dialect == "4"
    key: object = path.steps[0][1].exact if path.simple else path.text.lower()
    if path.simple:
        tag = path.steps[0][1].exact
        if node.if_exists:
            def assign_simple_if(ctx: Ctx) -> None:
                ds = ctx.ds
                if tag in ds._dict:
                    assign_string(ds, tag, _string_for_assign(ctx, ev(ctx)))
            run: Run = assign_simple_if
        else:
            def assign_simple(ctx: Ctx) -> None:
                assign_string(ctx.ds, tag, _string_for_assign(ctx, ev(ctx)))
            run = assign_simple
    else:
        if_exists = node.if_exists

        def assign_path(ctx: Ctx) -> None:
            s = _string_for_assign(ctx, ev(ctx))
            targets = path.find(ctx.ds) if if_exists else path.targets_for_assign(ctx.ds)
            for container, t in targets:
                assign_string(container, t, s)
        run = assign_path
    if not first_wins:
        return run

    def assign_first_wins(ctx: Ctx) -> None:
        assigned = ctx.assigned
        if assigned is not None:
            if key in assigned:
                return
            assigned.add(key)
        run(ctx)
    return assign_first_wins


def _compile_delete(node: A.Delete) -> Run:
    path = node.path
    if path.simple:
        tag = path.steps[0][1].exact

        def delete_simple(ctx: Ctx) -> None:
            ds = ctx.ds
            if tag in ds._dict:
                del ds[tag]
        return delete_simple
    return lambda ctx: delete_path(ctx.ds, path)


def _remove_all_private(ds: Dataset) -> None:
    for tag in [t for t in ds._dict if (t >> 16) & 1]:
        del ds[tag]
    for seq in sequences_of(ds):
        for item in seq:
            _remove_all_private(item)


def compile_statement(node: A.Node, dialect: str) -> Run:
    if isinstance(node, A.Assign):
        return _compile_assign(node, dialect)
    if isinstance(node, A.Delete):
        return _compile_delete(node)
    if isinstance(node, A.Initialize):
        ev = compile_value(node.value)
        name = node.name

        def initialize(ctx: Ctx) -> None:
            v = ev(ctx)
            if v is VOID:
                raise ScriptRuntimeFault("Assigned value is VOID")
            sizes = ctx.var_chars
            sizes[name] = value_chars(capped(v))
            if sum(sizes.values()) > MAX_VARIABLE_CHARS:
                raise ScriptRuntimeFault(f"the script's variables would hold more than the limit of "
                                         f"{MAX_VARIABLE_CHARS:,} characters")
            ctx.vars[name] = v
        return initialize
    if isinstance(node, A.CallStatement):
        call = compile_value(node.call)
        return lambda ctx: None if call(ctx) else None
    if isinstance(node, A.Conditional):
        test = compile_condition(node.condition)
        then = compile_block([node.then], dialect)
        otherwise = compile_block([node.otherwise], dialect) if node.otherwise is not None else None

        def conditional(ctx: Ctx) -> None:
            if test(ctx):
                then(ctx)
            elif otherwise is not None:
                otherwise(ctx)
        return conditional
    if isinstance(node, A.IfBlock):
        branches = [(compile_condition(c), compile_block(body, dialect)) for c, body in node.branches]
        fallback = compile_block(node.otherwise, dialect) if node.otherwise is not None else None

        def if_block(ctx: Ctx) -> None:
            for test_, body in branches:
                if test_(ctx):
                    body(ctx)
                    return
            if fallback is not None:
                fallback(ctx)
        return if_block
    if isinstance(node, A.Echo):
        ev_echo = compile_value(node.value) if node.value is not None else None

        def echo(ctx: Ctx) -> None:
            v = to_str(ctx, ev_echo(ctx)) if ev_echo is not None else ""
            ctx.run.echo("null" if v is None else v)
        return echo
    if isinstance(node, A.Describe):
        name_d = node.name

        def describe(ctx: Ctx) -> None:
            ctx.vars.setdefault(name_d, None)
        return describe
    if isinstance(node, A.RemoveAllPrivateTags):
        return lambda ctx: _remove_all_private(ctx.ds)
    if isinstance(node, (A.Version, A.Export)):
        return lambda ctx: None
    raise TypeError(f"not a statement node: {type(node).__name__}")


def compile_block(nodes: list[A.Node], dialect: str) -> Run:
    """A statement list; a runtime fault is tagged with the line of the innermost statement."""
    code = [(n.line, compile_statement(n, dialect)) for n in nodes]

    def block(ctx: Ctx) -> None:
        line = 0
        try:
            for line, fn in code:
                if time.monotonic() > ctx.deadline:
                    raise _time_up()
                fn(ctx)
        except ScriptRuntimeFault as e:
            if getattr(e, "line", None) is None:
                e.line = line  # type: ignore[attr-defined]
            raise
    return block


class Script:
    """A parsed, checked and compiled DicomEdit script; apply it to any number of datasets."""

    def __init__(self, program: A.Program, text: str) -> None:
        self.program = program
        self.dialect = program.dialect
        self.version = program.version
        self.text = text
        self.code_meaning = CODE_MEANING[self.dialect]
        self._code: list[tuple[int, Run]] = [
            (n.line, compile_statement(n, self.dialect)) for n in program.statements
        ]
        self.inputs = _inputs(program)

    @property
    def input_names(self) -> list[str]:
        """The names of :attr:`inputs`, in script order."""
        return [v.name for v in self.inputs]

    def apply(self, dataset: Dataset, *, variables: dict[str, str] | None = None,
              run: RunContext | None = None, script_id: str = "1", record: bool = True) -> ApplyResult:
        """Run the script on ``dataset`` in place. Raises DicomEditRuntimeError (never a raw error)."""
        ctx = Ctx(dataset, dict(variables) if variables else {}, run if run is not None else RunContext(),
                  self.dialect)
        line = 0
        deadline = ctx.deadline
        try:
            for line, fn in self._code:
                if time.monotonic() > deadline:
                    raise _time_up()
                fn(ctx)
        except RejectFile:
            return ApplyResult(rejected=True)
        except ScriptRuntimeFault as e:
            raise DicomEditRuntimeError(str(e), getattr(e, "line", None) or line) from None
        except DicomEditError:
            raise
        except Exception as e:  # never let a raw Python error escape; no values in the message
            raise DicomEditRuntimeError(f"internal error ({type(e).__name__})", line) from e
        try:
            if record:
                append_code(dataset, script_id, "XNAT", self.code_meaning, "1.0")
            _sync_file_meta(dataset)
        except Exception as e:
            raise DicomEditRuntimeError(f"cannot record the edit ({type(e).__name__})", line) from e
        return ApplyResult()


def _sync_file_meta(ds: Dataset) -> None:
    """Keep (0002,0003) equal to (0008,0018), and (0002,0002) to (0008,0016), after the script changed
    the latter (XNAT's Group2Test.testGroup2SyncDE6)."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        return
    for tag, meta_tag in ((_SOP_INSTANCE_UID, _MEDIA_SOP_INSTANCE_UID), (_SOP_CLASS_UID, _MEDIA_SOP_CLASS_UID)):
        raw = ds._dict.get(tag)
        if raw is None or type(raw) is RawDataElement:
            continue  # absent, or never touched by the script (still undecoded)
        uid = element_string(ds, tag)
        if uid is not None and element_string(meta, meta_tag) != uid:
            elem = DataElement(meta_tag, "UI", UID(uid), already_converted=True)
            meta._dict[elem.tag] = elem


@dataclass(frozen=True)
class InputVariable:
    """A variable the script needs from whoever runs it (an uploader's field): ``describe``d, or read
    before the script sets it (seed 002's ``my_var``). ``label`` is the describe's label or the name."""

    name: str
    label: str
    hidden: bool = False


def walk_statements(nodes: list[A.Node]):
    """Every statement of ``nodes``, those inside if blocks and conditionals included, in script order."""
    for node in nodes:
        yield node
        if isinstance(node, A.IfBlock):
            for _cond, body in node.branches:
                yield from walk_statements(body)
            if node.otherwise:
                yield from walk_statements(node.otherwise)
        elif isinstance(node, A.Conditional):
            yield from walk_statements([n for n in (node.then, node.otherwise) if n is not None])


def _inputs(program: A.Program) -> list[InputVariable]:
    found: dict[str, InputVariable] = {}
    for node in walk_statements(program.statements):
        if isinstance(node, A.Describe):
            old = found.get(node.name)
            found[node.name] = InputVariable(node.name, node.label or (old.label if old else node.name),
                                             node.hidden or bool(old and old.hidden))
    for name in program.inputs:
        found.setdefault(name, InputVariable(name, name))
    return list(found.values())
