"""Tokenizer shared by both dialects (DicomEdit 6 and 4.2).

Tokens carry 1-based line and column. Line continuation (a backslash at the end of a line) is handled
here, inside and outside strings, so positions in the original text stay exact.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import DicomEditSyntaxError

KEYWORDS = frozenset(
    {"echo", "describe", "hidden", "const", "immutable", "export", "removeAllPrivateTags", "version",
     "if", "elseif", "else"}
)

_TAG_START = re.compile(r"\(([0-9A-Fa-fXx#@]{4})[ \t]*,")
_TAG = re.compile(
    r"\(([0-9A-Fa-fXx#@]{4})[ \t]*,[ \t]*(?:\{([^}\n]*)\})?([0-9A-Fa-fXx#@]+)[ \t]*\)"
)
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WS = re.compile(r"[ \t\f]+")
_CONTINUATION = re.compile(r"\\[ \t]*\r?\n")
_CREATOR = re.compile(r"[A-Za-z][A-Za-z0-9 \-_.:]*\Z")

_PUNCT2 = {":=", "?=", "!=", "!~"}
_PUNCT1 = set("-?:=~[],{}()/*+.%")


@dataclass(slots=True)
class Token:
    kind: str  # NEWLINE STRING NUMBER ID TAG EOF, or the punctuation itself
    value: object
    line: int
    column: int
    text: str = ""

    def describe(self) -> str:
        if self.kind == "EOF":
            return "end of script"
        if self.kind == "NEWLINE":
            return "end of line"
        if self.kind == "STRING":
            return "string"
        if self.kind == "NUMBER":
            return f"number {self.text}"
        if self.kind == "ID":
            return f"'{self.text}'"
        if self.kind == "TAG":
            return f"tag {self.text}"
        return f"'{self.kind}'"


@dataclass(frozen=True, slots=True)
class TagToken:
    group: str  # 4 chars, hex digits or wildcards
    creator: str | None
    element: str  # 4 chars (public or DE4 numeric private) or 2 chars (after a creator)


def tokenize(text: str) -> list[Token]:
    """Split a script into tokens; raise DicomEditSyntaxError on a lexical fault."""
    tokens: list[Token] = []
    pos = 0
    line = 1
    line_start = 0
    n = len(text)
    append = tokens.append
    while pos < n:
        ch = text[pos]
        col = pos - line_start + 1
        if ch in " \t\f":
            pos = _WS.match(text, pos).end()
            continue
        if ch == "\r" and text.startswith("\r\n", pos):
            pos += 1
            continue
        if ch == "\n":
            append(Token("NEWLINE", None, line, col))
            pos += 1
            line += 1
            line_start = pos
            continue
        if ch == "\\":
            m = _CONTINUATION.match(text, pos)
            if m:
                pos = m.end()
                line += 1
                line_start = pos
                continue
            raise DicomEditSyntaxError("unexpected character '\\'", line, col)
        if ch == "/" and text.startswith("//", pos):
            end = text.find("\n", pos)
            pos = n if end < 0 else end
            continue
        if ch == '"':
            start_line = line
            value, pos, line, line_start = _string(text, pos, line, line_start, col)
            append(Token("STRING", value, start_line, col, '"'))
            continue
        if ch == "(":
            if _TAG_START.match(text, pos):
                m = _TAG.match(text, pos)
                if not m:
                    raise DicomEditSyntaxError("malformed tag: expected (gggg,eeee) or (gggg,{creator}ee)", line, col)
                tag = _tag_token(m, line, col)
                append(Token("TAG", tag, line, col, m.group(0)))
                pos = m.end()
                continue
            append(Token("(", None, line, col, "("))
            pos += 1
            continue
        if ch.isdigit() or (ch == "-" and pos + 1 < n and text[pos + 1].isdigit()):
            m = _NUMBER.match(text, pos)
            append(Token("NUMBER", m.group(0), line, col, m.group(0)))
            pos = m.end()
            continue
        if ch.isalpha() or ch == "_":
            m = _ID.match(text, pos)
            word = m.group(0)
            append(Token("ID", word, line, col, word))
            pos = m.end()
            continue
        two = text[pos:pos + 2]
        if two in _PUNCT2:
            append(Token(two, None, line, col, two))
            pos += 2
            continue
        if ch in _PUNCT1:
            append(Token(ch, None, line, col, ch))
            pos += 1
            continue
        if ch == "!":
            raise DicomEditSyntaxError("unexpected character '!': expected '!=' or '!~'", line, col)
        raise DicomEditSyntaxError(f"unexpected character {ch!r}", line, col)
    append(Token("EOF", None, line, pos - line_start + 1))
    return tokens


def _string(text: str, pos: int, line: int, line_start: int, col: int) -> tuple[str, int, int, int]:
    """Scan a string literal starting at the opening quote.

    Backslash-newline is a continuation (both removed); ``\\\\`` becomes one backslash; any other
    escape is kept as its two characters (as DicomEdit's visitor does).
    """
    start_line = line
    out: list[str] = []
    i = pos + 1
    n = len(text)
    while True:
        if i >= n:
            raise DicomEditSyntaxError("unterminated string", start_line, col)
        c = text[i]
        if c == '"':
            return "".join(out), i + 1, line, line_start
        if c == "\\":
            m = _CONTINUATION.match(text, i)
            if m:
                i = m.end()
                line += 1
                line_start = i
                continue
            nxt = text[i + 1] if i + 1 < n else ""
            if nxt == "\\":
                out.append("\\")
                i += 2
                continue
            if nxt in ("\n", ""):
                raise DicomEditSyntaxError("unterminated string", start_line, col)
            out.append(c + nxt)
            i += 2
            continue
        if c == "\n" or c == "\r":
            raise DicomEditSyntaxError("unterminated string", start_line, col)
        out.append(c)
        i += 1


def _tag_token(m: re.Match[str], line: int, col: int) -> TagToken:
    group, creator, element = m.group(1), m.group(2), m.group(3)
    if creator is not None:
        creator = creator.strip()
        if not _CREATOR.match(creator):
            raise DicomEditSyntaxError(f"malformed private creator '{creator}'", line, col)
        if len(element) != 2:
            raise DicomEditSyntaxError(
                "malformed private tag: expected 2 hex digits after the creator", line, col
            )
    elif len(element) != 4:
        raise DicomEditSyntaxError("malformed tag: expected (gggg,eeee) or (gggg,{creator}ee)", line, col)
    return TagToken(group, creator, element)
