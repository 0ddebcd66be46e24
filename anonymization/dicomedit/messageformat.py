"""java.text.MessageFormat.format for string arguments, as DicomEdit's ``format`` uses it.

Rules: ``'`` starts/ends a quoted literal section, ``''`` is one quote; ``{n}`` inserts argument n (its
string; ``null`` for a null argument; the literal ``{n}`` text when n is past the last argument);
``{n,number}``, ``{n,number,integer}``, ``{n,number,percent}`` and simple DecimalFormat patterns
(``0``, ``#``, ``,``, ``.``) format numeric strings the way Java's default (US) locale does.
"""
from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

Part = str | tuple[int, str | None, str | None]


class MessageFormatError(ValueError):
    pass


def compile_pattern(pattern: str) -> tuple[Part, ...]:
    parts: list[Part] = []
    buf: list[str] = []
    i = 0
    n = len(pattern)
    quoted = False
    while i < n:
        c = pattern[i]
        if c == "'":
            if i + 1 < n and pattern[i + 1] == "'":
                buf.append("'")
                i += 2
                continue
            quoted = not quoted
            i += 1
            continue
        if quoted:
            buf.append(c)
            i += 1
            continue
        if c == "{":
            depth = 1
            j = i + 1
            inner_quoted = False
            while j < n and depth:
                cj = pattern[j]
                if cj == "'":
                    inner_quoted = not inner_quoted
                elif not inner_quoted:
                    if cj == "{":
                        depth += 1
                    elif cj == "}":
                        depth -= 1
                j += 1
            if depth:
                raise MessageFormatError("Unmatched braces in the pattern.")
            body = pattern[i + 1:j - 1]
            fields = [f.strip() for f in body.split(",", 2)]
            try:
                index = int(fields[0])
            except ValueError:
                raise MessageFormatError(f"can't parse argument number: {fields[0]}") from None
            if index < 0:
                raise MessageFormatError(f"negative argument number: {index}")
            ftype = fields[1].lower() if len(fields) > 1 else None
            style = fields[2] if len(fields) > 2 else None
            if ftype not in (None, "number"):
                raise MessageFormatError(f"unsupported format type: {fields[1]}")
            if buf:
                parts.append("".join(buf))
                buf = []
            parts.append((index, ftype, style))
            i = j
            continue
        if c == "}":
            raise MessageFormatError("Unmatched braces in the pattern.")
        buf.append(c)
        i += 1
    if buf:
        parts.append("".join(buf))
    return tuple(parts)


def format_compiled(parts: tuple[Part, ...], args: list[str | None]) -> str:
    out: list[str] = []
    nargs = len(args)
    for part in parts:
        if type(part) is str:
            out.append(part)
            continue
        index, ftype, style = part  # type: ignore[misc]
        if index >= nargs:
            out.append("{" + str(index) + "}")
            continue
        arg = args[index]
        if arg is None:
            out.append("null")
        elif ftype is None:
            out.append(arg)
        else:
            out.append(_format_number(arg, style))
    return "".join(out)


def message_format(pattern: str, args: list[str | None]) -> str:
    return format_compiled(compile_pattern(pattern), args)


def _format_number(arg: str, style: str | None) -> str:
    try:
        value = Decimal(arg.strip())
    except InvalidOperation:
        raise MessageFormatError("Cannot format given Object as a Number") from None
    if style is None:
        return _decimal(value, 1, 0, 3, True)
    s = style.strip().lower()
    if s == "integer":
        return _decimal(value, 1, 0, 0, True)
    if s == "percent":
        return _decimal(value * 100, 1, 0, 0, True) + "%"
    return _pattern_number(value, style.strip())


def _pattern_number(value: Decimal, pattern: str) -> str:
    if any(ch not in "0#,." for ch in pattern) or pattern.count(".") > 1:
        raise MessageFormatError(f"unsupported number pattern: {pattern}")
    int_part, _, frac_part = pattern.partition(".")
    grouping = "," in int_part
    min_int = int_part.count("0")
    min_frac = frac_part.count("0")
    max_frac = min_frac + frac_part.count("#")
    return _decimal(value, min_int, min_frac, max_frac, grouping)


def _decimal(value: Decimal, min_int: int, min_frac: int, max_frac: int, grouping: bool) -> str:
    q = Decimal(1).scaleb(-max_frac)
    rounded = value.quantize(q, rounding=ROUND_HALF_EVEN)
    negative = rounded < 0
    text = f"{abs(rounded):f}"
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    if len(frac) < min_frac:
        frac = frac + "0" * (min_frac - len(frac))
    whole = whole.lstrip("0")
    whole = whole.rjust(min_int, "0")
    if grouping and len(whole) > 3:
        groups = []
        while len(whole) > 3:
            groups.insert(0, whole[-3:])
            whole = whole[:-3]
        whole = ",".join([whole, *groups])
    out = whole + ("." + frac if frac else "")
    if negative and any(ch not in "0.," for ch in out):
        out = "-" + out
    return out
