"""Java regular expressions (java.util.regex) as Python ``re`` patterns, compiled once and cached."""
from __future__ import annotations

import re

_CACHE: dict[str, re.Pattern[str]] = {}
_POSIX = {
    "Lower": "a-z", "Upper": "A-Z", "ASCII": "\\x00-\\x7F", "Alpha": "a-zA-Z", "Digit": "0-9",
    "Alnum": "a-zA-Z0-9", "Punct": "!-/:-@\\[-`{-~", "Graph": "!-~", "Print": " -~", "Blank": " \\t",
    "Cntrl": "\\x00-\\x1F\\x7F", "XDigit": "0-9a-fA-F", "Space": " \\t\\n\\x0B\\f\\r",
}


def _translate(pattern: str) -> str:
    out: list[str] = []
    i = 0
    n = len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt in "pP" and i + 2 < n and pattern[i + 2] == "{":
                end = pattern.find("}", i + 3)
                name = pattern[i + 3:end] if end > 0 else ""
                name = name[2:] if name.startswith("Is") else name
                if name in _POSIX:
                    body = _POSIX[name]
                    neg = nxt == "P"
                    if in_class and not neg:
                        out.append(body)
                    else:
                        out.append(f"[{'^' if neg else ''}{body}]")
                    i = end + 1
                    continue
                raise re.error(f"unsupported character class \\{nxt}{{{name}}}")
            if nxt == "Q":
                end = pattern.find("\\E", i + 2)
                lit = pattern[i + 2:] if end < 0 else pattern[i + 2:end]
                out.append(re.escape(lit))
                i = n if end < 0 else end + 2
                continue
            if nxt == "h":
                out.append("[ \\t\\xA0\\u1680\\u180e\\u2000-\\u200a\\u202f\\u205f\\u3000]")
                i += 2
                continue
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
        elif c == "]" and in_class:
            in_class = False
        elif c == "(" and not in_class and pattern.startswith("(?<", i) and i + 3 < n \
                and pattern[i + 3] not in "=!":
            out.append("(?P<")
            i += 3
            continue
        out.append(c)
        i += 1
    return "".join(out)


def compile_java(pattern: str) -> re.Pattern[str]:
    """Compile a Java regex; raises re.error for patterns this engine cannot honour."""
    compiled = _CACHE.get(pattern)
    if compiled is None:
        compiled = re.compile(_translate(pattern))
        if len(_CACHE) < 4096:
            _CACHE[pattern] = compiled
    return compiled
