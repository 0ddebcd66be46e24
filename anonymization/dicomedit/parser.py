"""Recursive-descent parser and checker for DicomEdit 6.x and 4.2 scripts."""
from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from . import ast as A
from .errors import DicomEditSyntaxError
from .limits import MAX_NESTING, MAX_SCRIPT_CHARS
from .registry import FUNCTIONS, UNSUPPORTED
from .lexer import KEYWORDS, TagToken, Token, tokenize
from .tagpath import ALL, TagMatcher, TagPath

KNOWN_VERSIONS = frozenset({"6.0", "6.1", "6.2", "6.3", "6.4", "6.5", "6.6", "6.7", "6.10"})
XNAT_VARIABLES = frozenset({"project", "subject", "session", "modalityLabel", "visit"})
"""Variables the caller supplies (XNAT's labels; ``visit``: the upload's visit, seed 000)."""
_COND_OPS = ("=", "!=", "~", "!~")
_PATH_START = ("TAG", "*", "+", ".")
_FIRST_STATEMENT = re.compile(r"\A(?:[ \t\f]*(?://[^\n]*)?\r?\n)*[ \t\f]*version(?![A-Za-z0-9_])")


def detect_dialect(text: str) -> str:
    """"6" when the first statement is ``version "..."``, else "4" (DicomEdit 4.2)."""
    return "6" if _FIRST_STATEMENT.match(text) else "4"


def parse_program(text: str, *, dialect: str | None = None, variables: Iterable[str] = (),
                  lookup_tables: Collection[str] | None = None) -> A.Program:
    """Parse and check ``text``. A variable read before anything sets it is a script input (listed in
    ``Program.inputs``), as DicomEdit's uploaders treat it. ``lookup_tables``: the names of the lookup
    tables the script may use (None: not checked)."""
    if dialect is None:
        dialect = detect_dialect(text)
    if dialect not in ("4", "6"):
        raise ValueError("dialect must be '4' or '6'")
    if len(text) > MAX_SCRIPT_CHARS:
        raise DicomEditSyntaxError(f"script is longer than the limit of {MAX_SCRIPT_CHARS:,} characters", 1, 1)
    parser = _Parser(tokenize(text), dialect, variables)
    parser.lookup_tables = lookup_tables
    return parser.program()


_PATH_CACHE: dict[tuple[str, str], TagPath] = {}


def parse_tagpath_text(text: str, dialect: str = "6") -> TagPath:
    """A tag path written as a string (``set``, ``delete``, ``retainPrivateTags`` ...)."""
    key = (text, dialect)
    path = _PATH_CACHE.get(key)
    if path is None:
        p = _Parser(tokenize(text), dialect, ())
        path = p.tagpath()
        if p.peek().kind != "EOF":
            t = p.peek()
            raise DicomEditSyntaxError(f"unexpected {t.describe()} in tag path", t.line, t.column)
        if len(_PATH_CACHE) < 4096:
            _PATH_CACHE[key] = path
    return path


class _Parser:
    def __init__(self, tokens: list[Token], dialect: str, variables: Iterable[str]) -> None:
        self.toks = tokens
        self.i = 0
        self.dialect = dialect
        self.defined: set[str] = set(XNAT_VARIABLES) | set(variables)
        self.version: str | None = None
        self.inputs: dict[str, A.Var] = {}  # read before set: the uploader asks for them
        self.depth = 0
        self.lookup_tables: Collection[str] | None = None

    def enter(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail(tok, f"nested too deeply (more than {MAX_NESTING} levels)")

    # -- token helpers ------------------------------------------------------------------------
    def peek(self, k: int = 0) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self) -> Token:
        t = self.toks[self.i]
        if t.kind != "EOF":
            self.i += 1
        return t

    def fail(self, tok: Token, message: str) -> DicomEditSyntaxError:
        return DicomEditSyntaxError(message, tok.line, tok.column)

    def expect(self, kind: str, what: str) -> Token:
        t = self.peek()
        if t.kind != kind:
            raise self.fail(t, f"unexpected {t.describe()}: expected {what}")
        return self.next()

    def skip_newlines(self) -> None:
        while self.peek().kind == "NEWLINE":
            self.i += 1

    def is_word(self, word: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t.kind == "ID" and t.value == word

    # -- script -------------------------------------------------------------------------------
    def program(self) -> A.Program:
        statements: list[A.Node] = []
        self.skip_newlines()
        first = True
        while self.peek().kind != "EOF":
            stmt = self.statement(first=first)
            first = False
            statements.append(stmt)
            t = self.peek()
            if t.kind not in ("NEWLINE", "EOF"):
                raise self.fail(t, f"unexpected {t.describe()}: expected end of line")
            self.skip_newlines()
        program = A.Program(self.dialect, self.version, statements)
        program.inputs = list(self.inputs)
        return program

    def block(self) -> list[A.Node]:
        self.enter(self.peek())
        self.expect("{", "'{'")
        body: list[A.Node] = []
        self.skip_newlines()
        while self.peek().kind != "}":
            if self.peek().kind == "EOF":
                raise self.fail(self.peek(), "unexpected end of script: expected '}'")
            body.append(self.statement())
            t = self.peek()
            if t.kind not in ("NEWLINE", "}"):
                raise self.fail(t, f"unexpected {t.describe()}: expected end of line or '}}'")
            self.skip_newlines()
        self.next()
        self.depth -= 1
        return body

    def statement(self, first: bool = False) -> A.Node:
        t = self.peek()
        if t.kind == "ID" and t.value in KEYWORDS:
            word = t.value
            if word == "version":
                return self.version_stmt(first)
            if word == "describe":
                return self.describe()
            if word == "export":
                self.next()
                name = self.expect("ID", "a variable name").value
                field = self.expect("STRING", "a string").value
                self.defined.add(name)
                return A.Export(t.line, t.column, name, field)
            if word == "removeAllPrivateTags":
                if self.dialect == "4":
                    raise self.fail(t, "removeAllPrivateTags is not available in DicomEdit 4.2")
                self.next()
                return A.RemoveAllPrivateTags(t.line, t.column)
            if word == "if":
                if self.dialect == "4":
                    raise self.fail(t, "if blocks are not available in DicomEdit 4.2")
                return self.if_block()
        return self.action(allow_conditional=True)

    def version_stmt(self, first: bool) -> A.Node:
        t = self.next()
        if self.dialect == "4":
            raise self.fail(t, "version statement must be the first statement")
        s = self.expect("STRING", "a version string")
        if s.value not in KNOWN_VERSIONS:
            raise self.fail(s, f'unsupported version "{s.value}"')
        if first:
            self.version = s.value
        return A.Version(t.line, t.column, s.value)

    def describe(self) -> A.Node:
        t = self.next()
        name_tok = self.expect("ID", "a variable name")
        if name_tok.value in KEYWORDS:
            raise self.fail(name_tok, f"'{name_tok.value}' is a keyword, not a variable name")
        label = None
        hidden = False
        if self.peek().kind == "STRING":
            label = self.next().value
        while self.peek().kind == "ID" and self.peek().value in ("hidden", "const", "immutable"):
            hidden = hidden or self.next().value == "hidden"
        self.defined.add(name_tok.value)
        return A.Describe(t.line, t.column, name_tok.value, label, hidden)

    def if_block(self) -> A.Node:
        t = self.next()
        branches = [(self.paren_condition(), self.block())]
        otherwise = None
        while True:
            k = 0
            while self.peek(k).kind == "NEWLINE":
                k += 1
            if self.is_word("elseif", k):
                self.i += k + 1
                branches.append((self.paren_condition(), self.block()))
                continue
            if self.is_word("else", k):
                self.i += k + 1
                otherwise = self.block()
            break
        return A.IfBlock(t.line, t.column, branches, otherwise)

    def paren_condition(self) -> A.Condition:
        self.expect("(", "'('")
        left = self.value()
        cond = self.condition_rest(left, allow_bare=True)
        self.expect(")", "')'")
        return cond

    def condition_rest(self, left: A.Node, *, allow_bare: bool) -> A.Condition:
        t = self.peek()
        if t.kind in _COND_OPS:
            if self.dialect == "4" and t.kind in ("!=", "!~"):
                raise self.fail(t, f"operator '{t.kind}' is not available in DicomEdit 4.2")
            self.next()
            right = self.value()
            return A.Condition(left.line, left.column, left, t.kind, right)
        if allow_bare and isinstance(left, A.Call):
            return A.Condition(left.line, left.column, left, None, None)
        raise self.fail(t, f"unexpected {t.describe()}: expected a condition operator (=, !=, ~, !~)")

    def action(self, allow_conditional: bool = False) -> A.Node:
        t = self.peek()
        kind = t.kind
        if kind == "-":
            self.next()
            path = self.tagpath()
            return A.Delete(t.line, t.column, path)
        if kind in _PATH_START:
            path = self.tagpath()
            op = self.peek()
            if op.kind in (":=", "?="):
                self.next()
                if path.ends_with_item:
                    raise self.fail(t, "cannot assign a value to a sequence item")
                return A.Assign(t.line, t.column, path, self.value(), op.kind == "?=")
            if not allow_conditional:
                raise self.fail(op, f"unexpected {op.describe()}: expected ':=' or '?='")
            return self.conditional(self.tag_value(path, t), t)
        if kind == "ID":
            word = t.value
            if word == "echo":
                self.next()
                if self.peek().kind in ("NEWLINE", "EOF", "}", ":"):
                    return A.Echo(t.line, t.column, None)
                return A.Echo(t.line, t.column, self.value())
            if word in KEYWORDS:
                raise self.fail(t, f"unexpected keyword '{word}': expected an action")
            nxt = self.peek(1).kind
            if nxt == ":=":
                self.next()
                self.next()
                value = self.value()
                self.defined.add(word)
                return A.Initialize(t.line, t.column, word, value)
            if nxt == "[":
                call = self.call()
                if allow_conditional and self.peek().kind in (*_COND_OPS, "?", ":"):
                    return self.conditional(call, t)
                return A.CallStatement(t.line, t.column, call)
            if not allow_conditional or nxt not in _COND_OPS:
                after = self.peek(1)
                raise self.fail(after, f"unexpected {after.describe()}: expected ':=', '[' or a condition operator")
        if not allow_conditional:
            raise self.fail(t, f"unexpected {t.describe()}: expected an action")
        if kind in ("ID", "STRING", "NUMBER"):
            return self.conditional(self.value(), t)
        raise self.fail(t, f"unexpected {t.describe()}: expected a statement")

    def conditional(self, left: A.Node, start: Token) -> A.Node:
        if self.dialect == "4":
            cond = self.condition_rest(left, allow_bare=False)
            self.expect(":", "':' and an action")
            return A.Conditional(start.line, start.column, cond, self.action(), None)
        cond = self.condition_rest(left, allow_bare=True)
        self.expect("?", "'?' and an action")
        then = self.action()
        otherwise = None
        if self.peek().kind == ":":
            self.next()
            otherwise = self.action()
        return A.Conditional(start.line, start.column, cond, then, otherwise)

    # -- values -------------------------------------------------------------------------------
    def tag_value(self, path: TagPath, t: Token) -> A.Node:
        if not path.singular:
            raise self.fail(t, f"tag path {path.text} matches multiple tags and cannot be used as a value")
        if path.ends_with_item:
            raise self.fail(t, f"tag path {path.text} names a sequence item and cannot be used as a value")
        return A.TagValue(t.line, t.column, path)

    def value(self, as_arg: bool = False) -> A.Node:
        t = self.peek()
        kind = t.kind
        if kind == "STRING":
            self.next()
            return A.Str(t.line, t.column, t.value)
        if kind == "NUMBER":
            self.next()
            return A.Num(t.line, t.column, t.value)
        if kind in _PATH_START:
            path = self.tagpath()
            if as_arg:
                return A.PathArg(t.line, t.column, path)
            return self.tag_value(path, t)
        if kind == "{":
            return self.list_value()
        if kind == "ID":
            word = t.value
            if self.dialect == "4" and word == "new" and self.is_word("UID", 1):
                self.i += 2
                return A.NewUID(t.line, t.column)
            if word in KEYWORDS:
                raise self.fail(t, f"unexpected keyword '{word}': expected a value")
            if self.peek(1).kind == "[":
                return self.call()
            self.next()
            if word not in self.defined and word not in self.inputs:
                self.inputs[word] = A.Var(t.line, t.column, word)
            return A.Var(t.line, t.column, word)
        raise self.fail(t, f"unexpected {t.describe()}: expected a value")

    def list_value(self) -> A.Node:
        t = self.next()
        if self.dialect == "4":
            raise self.fail(t, "lists are not available in DicomEdit 4.2")
        self.enter(t)
        items = self._values_until("}")
        self.depth -= 1
        return A.ListLit(t.line, t.column, items)

    def _values_until(self, close: str) -> list[A.Node]:
        """Comma-separated values (newlines allowed around them) up to and including ``close``."""
        items: list[A.Node] = []
        self.skip_newlines()
        if self.peek().kind != close:
            while True:
                items.append(self.value(as_arg=True))
                self.skip_newlines()
                if self.peek().kind == ",":
                    self.next()
                    self.skip_newlines()
                    continue
                break
        self.expect(close, f"',' or '{close}'")
        return items

    def call(self) -> A.Call:
        name_tok = self.next()
        name = name_tok.value
        spec = FUNCTIONS.get(name)
        if name in UNSUPPORTED:
            raise self.fail(name_tok, f"function '{name}' is not supported by xnatlite")
        if spec is None or self.dialect not in spec.dialects:
            raise self.fail(name_tok, f"unknown function '{name}'")
        self.expect("[", "'['")
        self.enter(name_tok)
        args = self._values_until("]")
        self.depth -= 1
        n = len(args)
        if n < spec.min_args or (spec.max_args is not None and n > spec.max_args):
            raise self.fail(name_tok, f"{name} takes {spec.arity_text()}, got {n}")
        for idx, arg in enumerate(args):
            if spec.is_path_arg(idx) and isinstance(arg, A.Str):
                try:
                    path = parse_tagpath_text(arg.value, self.dialect)
                except DicomEditSyntaxError as e:
                    raise DicomEditSyntaxError(f"bad tag path in string: {e.message}",
                                               arg.line, arg.column) from None
                args[idx] = A.PathArg(arg.line, arg.column, path)
        spec.check(args, self.fail, name_tok)
        if name == "lookup" and self.lookup_tables is not None and isinstance(args[0], A.Str) \
                and args[0].value not in self.lookup_tables:
            raise self.fail(args[0], f"lookup: there is no lookup table '{args[0].value}'")
        return A.Call(name_tok.line, name_tok.column, name, args)

    # -- tag paths ----------------------------------------------------------------------------
    def tagpath(self) -> TagPath:
        steps: list[tuple[object, ...]] = []
        parts: list[str] = []
        start = self.peek()
        while True:
            t = self.next()
            if t.kind == "TAG":
                matcher = self.matcher(t)
                index: int | None = None
                text = t.text
                if self.peek().kind == "[":
                    self.next()
                    it = self.next()
                    if it.kind == "%":
                        index = ALL
                    elif it.kind == "NUMBER" and it.text.isdigit():
                        index = int(it.text)
                    else:
                        raise self.fail(it, f"unexpected {it.describe()}: expected an item number or '%'")
                    self.expect("]", "']'")
                    text += f"[{it.text}]"
                steps.append(("tag", matcher, index))
                parts.append(text)
            elif t.kind in ("*", "+", "."):
                steps.append(({"*": "star", "+": "plus", ".": "dot"}[t.kind],))
                parts.append(t.kind)
            else:
                raise self.fail(t, f"unexpected {t.describe()}: expected a tag")
            if self.peek().kind == "/":
                self.next()
                if len(steps) >= MAX_NESTING:
                    raise self.fail(start, f"tag path nested too deeply (more than {MAX_NESTING} levels)")
                continue
            break
        if steps[-1][0] != "tag":
            raise self.fail(start, "a tag path must end with a tag")
        if self.dialect == "4" and (len(steps) > 1 or steps[0][2] is not None):
            raise self.fail(start, "sequence paths are not available in DicomEdit 4.2")
        return TagPath(tuple(steps), "/".join(parts))

    def matcher(self, t: Token) -> TagMatcher:
        tag: TagToken = t.value  # type: ignore[assignment]
        last = tag.group[-1]
        odd = last in "13579bBdDfF#"
        if tag.creator is not None:
            if self.dialect == "4":
                raise self.fail(t, "private creator names in tags are DicomEdit 6 only")
            if not odd and last not in "Xx":
                raise self.fail(t, f"tag {t.text} has a private creator but an even (public) group")
        # An odd group with a 4-digit element addresses a private element by number, in DE6 too
        # (XNAT's own DE6 tests delete "(2001,1019)" and set "(00e1,0010)").
        return TagMatcher(tag.group, tag.creator, tag.element, t.text)
