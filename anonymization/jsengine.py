"""A sandbox for the modality map's JavaScript boolean expressions (reference/xnat.md §6).

XNAT evaluates each expression with the JVM's JavaScript engine. xnatlite uses QuickJS (the ``quickjs``
package, a real embedded ECMAScript engine) with no I/O bindings at all, behind two fences:

1. Inside the engine: a fresh ``Context`` per request (nothing one file's evaluation leaves on
   ``globalThis`` reaches the next file), a CPU time limit per expression, a heap limit and a stack limit.
   These stop ``while(true){}``, allocation bombs and runaway recursion cheaply.
2. Around the engine: QuickJS's regular-expression engine does not check the interrupt handler, so a
   catastrophically backtracking regex (``/^(a+)+$/.test(...)``) would run for ever in-process. Evaluation
   therefore happens in a child process that the parent kills when a wall-clock deadline passes (and that
   arms ``SIGALRM`` with its default action, so it also dies on its own if the parent is gone). The next
   request starts a new child.

The child is started lazily and reused; one request (a list of expressions) costs a pipe round trip
plus a fresh context, about 0.2 ms. Requests are serialised by a lock, so one sandbox may be shared by
threads. Results never carry header values: only a status and the engine's error class.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Sequence

TIME_LIMIT_S = 0.1
MEMORY_LIMIT_B = 32 * 1024 * 1024
STACK_LIMIT_B = 256 * 1024
DEADLINE_SLACK_S = 1.0

# Result statuses.
TRUE, FALSE, NON_BOOLEAN, ERROR, TIMEOUT, NO_MEMORY = "true", "false", "non-boolean", "error", "timeout", "memory"


@dataclass(frozen=True)
class JsResult:
    status: str  # one of TRUE, FALSE, NON_BOOLEAN, ERROR, TIMEOUT, NO_MEMORY
    detail: str = ""  # the engine's error class (e.g. "SyntaxError"), never a value from the expression

    @property
    def ok(self) -> bool:
        return self.status in (TRUE, FALSE)


class JsSandbox:
    """Evaluates lists of JavaScript boolean expressions in a killable child process."""

    def __init__(self, *, time_limit: float = TIME_LIMIT_S, memory_limit: int = MEMORY_LIMIT_B) -> None:
        self.time_limit = time_limit
        self.memory_limit = memory_limit
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def evaluate(self, expressions: Sequence[str]) -> list[JsResult]:
        """Evaluate ``expressions`` in order in one fresh context; stop after the first one that is true or
        fails. The returned list is as long as the number evaluated (a failure is always last)."""
        if not expressions:
            return []
        request = json.dumps({"exprs": list(expressions)}).encode() + b"\n"
        deadline = self.time_limit * len(expressions) + DEADLINE_SLACK_S
        with self._lock:
            try:
                proc = self._ensure_started()
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(request)
                proc.stdin.flush()
                line = _readline_with_deadline(proc, deadline)
            except (OSError, ValueError, _Deadline):
                self._kill()
                return [JsResult(TIMEOUT, "deadline")]
        try:
            raw = json.loads(line)
            return [JsResult(str(status), str(detail)) for status, detail in raw]
        except (ValueError, TypeError):
            return [JsResult(ERROR, "protocol")]

    def close(self) -> None:
        with self._lock:
            self._kill()

    def __del__(self) -> None:  # best effort; the child also exits when its stdin closes
        try:
            self._kill()
        except Exception:  # noqa: BLE001
            pass

    # ------------------------------------------------------------------ child management

    def _ensure_started(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._proc = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__), "--worker",
             repr(self.time_limit), str(self.memory_limit), str(STACK_LIMIT_B),
             repr(self.time_limit + DEADLINE_SLACK_S / 2)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, close_fds=True,
        )
        return self._proc

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a SIGKILLed child always goes
            pass


class _Deadline(Exception):
    pass


def _readline_with_deadline(proc: subprocess.Popen[bytes], seconds: float) -> bytes:
    import selectors

    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        import time

        end = time.monotonic() + seconds
        while not buf.endswith(b"\n"):
            left = end - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise _Deadline()
            chunk = os.read(fd, 65536)
            if not chunk:  # the child died (its own alarm, or the heap fence)
                raise _Deadline()
            buf += chunk
    return buf


def check_syntax(expression: str) -> str | None:
    """None if ``expression`` compiles as a script, else the engine's error message (e.g. "SyntaxError:
    unexpected token in expression: ')'"). Compiles without running (``new Function``), in-process: parsing
    is linear in the expression's length and the stack is limited, so it cannot hang."""
    import quickjs

    ctx = quickjs.Context()
    ctx.set_memory_limit(MEMORY_LIMIT_B)
    ctx.set_max_stack_size(STACK_LIMIT_B)
    ctx.set_time_limit(TIME_LIMIT_S)
    try:
        ctx.eval("new Function(" + json.dumps(expression) + "); true")
    except Exception as exc:  # noqa: BLE001 - quickjs.JSException, StackOverflow
        return str(exc).splitlines()[0][:200] or type(exc).__name__
    return None


# ---------------------------------------------------------------------- the child


def _worker(time_limit: float, memory_limit: int, stack_limit: int, alarm: float) -> None:  # pragma: no cover
    import signal

    import quickjs

    # SIGALRM's default action ends the process, even while QuickJS holds the GIL in C code.
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    for line in stdin:
        try:
            exprs = json.loads(line)["exprs"]
        except (ValueError, KeyError, TypeError):
            stdout.write(b'[["error","protocol"]]\n')
            stdout.flush()
            continue
        ctx = quickjs.Context()
        ctx.set_memory_limit(memory_limit)
        ctx.set_max_stack_size(stack_limit)
        out: list[list[str]] = []
        for expr in exprs:
            ctx.set_time_limit(time_limit)  # the budget is per expression
            signal.setitimer(signal.ITIMER_REAL, alarm)
            try:
                value = ctx.eval(expr)
                res = [TRUE if value else FALSE, ""] if isinstance(value, bool) else [NON_BOOLEAN, ""]
            except Exception as exc:  # noqa: BLE001
                message = str(exc)
                kind = message.split(":", 1)[0].strip()[:40] or type(exc).__name__
                if "interrupted" in message:
                    res = [TIMEOUT, kind]
                elif "out of memory" in message or message.strip() in ("", "null"):
                    # QuickJS may fail to allocate even the error object: then the message is "null".
                    res = [NO_MEMORY, kind]
                else:
                    res = [ERROR, kind]
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            out.append(res)
            if res[0] != FALSE:
                break
        del ctx
        stdout.write(json.dumps(out).encode() + b"\n")
        stdout.flush()


if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == "--worker":  # pragma: no cover
    _worker(float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
