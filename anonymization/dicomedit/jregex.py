"""Java regular expressions (java.util.regex) as patterns of the ``regex`` module, compiled once and cached.

``regex`` rather than ``re``: it recognises many catastrophically backtracking patterns (``^(a+)+$``)
and answers them at once, and every match takes a timeout, so a script's time limit really stops a
pattern that does backtrack (issue 16 item 8). The translation below produces ``re`` syntax, which
``regex`` (in its default, ``re``-compatible mode) reads the same way.
"""
from __future__ import annotations

import re
import time
from typing import Any

import regex

_CACHE: dict[str, re.Pattern[str]] = {}
_POSIX = {
    "Lower": "a-z", "Upper": "A-Z", "ASCII": "\\x00-\\x7f", "Alpha": "a-zA-Z", "Digit": "0-9",
    "Alnum": "a-zA-Z0-9", "Punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"), "Graph": "\\x21-\\x7e",
    "Print": "\\x20-\\x7e", "Blank": " \\t", "Cntrl": "\\x00-\\x1f\\x7f", "XDigit": "0-9a-fA-F",
    "Space": " \\t\\n\\x0b\\f\\r", "javaLowerCase": "a-z", "javaUpperCase": "A-Z", "IsAlphabetic": "a-zA-Z",
}
# Java's \h: horizontal whitespace.
_H = "[ \\t\\xa0\\u1680\\u180e\\u2000-\\u200a\\u202f\\u205f\\u3000]"


def java_regex_to_python(pattern: str) -> str:
    """Translate the Java-only constructs scripts and filters use: ``\\p{Posix}``/``\\P{..}``, ``\\Q..\\E``,
    ``(?<name>..)``, ``\\k<name>``, ``\\z``/``\\Z``, ``\\h``, a leading ``]`` in a class. Anything else goes
    to ``re`` as is. Raises re.error for a construct Python cannot honour (``\\P{..}`` inside a class)."""
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == "Q":
                end = pattern.find("\\E", i + 2)
                end = n if end < 0 else end
                out.append(re.escape(pattern[i + 2:end]))
                i = end + 2
                continue
            if nxt in "pP" and i + 2 < n and pattern[i + 2] == "{":
                close = pattern.find("}", i + 3)
                name = pattern[i + 3:close] if close > 0 else ""
                name = name[2:] if name.startswith("Is") and name[2:] in _POSIX else name
                if name not in _POSIX or (nxt == "P" and in_class):
                    raise re.error(f"unsupported class \\{nxt}{{{name}}}")
                inner = _POSIX[name]
                out.append(inner if in_class else f"[{'^' if nxt == 'P' else ''}{inner}]")
                i = close + 1
                continue
            if nxt == "k" and pattern.startswith("<", i + 2) and not in_class:
                close = pattern.find(">", i + 3)
                if close > 0:
                    out.append(f"(?P={pattern[i + 3:close]})")
                    i = close + 1
                    continue
            if not in_class and nxt in "zZh":
                out.append({"z": "\\Z", "Z": "(?=\\n?\\Z)", "h": _H}[nxt])
                i += 2
                continue
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
            out.append(c)
            i += 1
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):  # a leading ] is literal
                out.append("\\]")
                i += 1
            continue
        elif c == "(" and pattern.startswith("(?<", i) and not pattern.startswith(("(?<=", "(?<!"), i):
            out.append("(?P<")
            i += 3
            continue
        out.append(c)
        i += 1
    return "".join(out)


class RegexTimeout(Exception):
    """A match ran past its deadline and was stopped."""


def compile_java(pattern: str) -> Any:
    """Compile a Java regex (a ``regex`` pattern); raises re.error for patterns this engine cannot honour."""
    compiled = _CACHE.get(pattern)
    if compiled is None:
        try:
            compiled = regex.compile(java_regex_to_python(pattern))
        except regex.error as e:
            raise re.error(getattr(e, "msg", None) or str(e)) from None
        if len(_CACHE) < 4096:
            _CACHE[pattern] = compiled
    return compiled


def _timeout(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise RegexTimeout()
    return left


def fullmatch(rx: Any, s: str, deadline: float) -> Any:
    """``rx.fullmatch(s)`` (Java ``String.matches``), stopped with RegexTimeout at ``deadline``."""
    try:
        return rx.fullmatch(s, timeout=_timeout(deadline))
    except TimeoutError:
        raise RegexTimeout() from None


def search(rx: Any, s: str, deadline: float) -> Any:
    """``rx.search(s)`` (Java ``Matcher.find``), stopped with RegexTimeout at ``deadline``."""
    try:
        return rx.search(s, timeout=_timeout(deadline))
    except TimeoutError:
        raise RegexTimeout() from None
