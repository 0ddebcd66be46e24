"""The anonymization the uploader runs before intake, as the XNAT Desktop Client does on the desktop: the
site-wide script (when enabled), then the project's (when enabled), with the chosen labels and the values
the user typed for the scripts' ``describe``d variables; then the pixel template of the scan. Files go to
intake with ``prevent_anon`` so the site script is not run twice (seed 003).

``makeSessionLabel[...]`` is an uploader-only function (reference/dicomedit.md §5): it is replaced by the
chosen session label before the script is compiled.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .labels import LabelError, script_session_expression, script_with_label

MSG_SCRIPT = "The {which} anonymization script does not compile ({detail})."


class ScriptProblem(Exception):
    """A script that cannot be used; nothing is imported with it (fail closed)."""


@dataclass
class Variable:
    name: str
    label: str
    hidden: bool


@dataclass
class ScriptSet:
    texts: list[tuple[str, str]] = field(default_factory=list)  # (which, text), site first

    @property
    def session_expression(self) -> str | None:
        try:
            return script_session_expression(text for _which, text in self.texts)
        except LabelError:
            return None


def scripts_for(*, project) -> ScriptSet:
    from xnatlite.selectors import site_config_get

    config = site_config_get()
    texts = []
    if config.enable_sitewide_anonymization_script:
        # Even an empty one: it adds its (0012,0064) item, as intake's pass does (seed 000).
        texts.append(("site-wide", config.sitewide_anonymization_script))
    if project.anon_script_enabled and project.anon_script.strip():
        texts.append(("project", project.anon_script))
    return ScriptSet(texts=texts)


def _compile(which: str, text: str, label: str = ""):
    from anonymization.dicomedit import DicomEditError
    from anonymization.services import script_compile

    try:
        return script_compile(text=script_with_label(text, label))
    except (DicomEditError, LabelError) as exc:
        raise ScriptProblem(MSG_SCRIPT.format(which=which, detail=str(exc).splitlines()[0][:160])) from None


def describe_variables(*, scripts: ScriptSet) -> list[Variable]:
    """Every variable the scripts ask for, in script order: those declared with ``describe`` (hidden ones
    flagged) and those read before the script sets them (seed 002's ``my_var``): the engine's
    ``Script.inputs``."""
    found: dict[str, Variable] = {}
    for which, text in scripts.texts:
        script = _compile(which, text)
        for var in script.inputs:
            if var.name not in found:
                found[var.name] = Variable(var.name, var.label, var.hidden)
            elif var.hidden:
                found[var.name].hidden = True
    return list(found.values())


class Anonymizer:
    """Compiled scripts for one session (labels fixed), applied file by file."""

    def __init__(self, *, scripts: ScriptSet, label: str, variables: dict[str, str]):
        self.compiled = [(which, _compile(which, text, label)) for which, text in scripts.texts]
        self.variables = dict(variables)
        from anonymization.dicomedit import RunContext
        from xnatlite.selectors import dicomedit_allow_get_url

        self.echoes: list[str] = []  # what the scripts echo: for the session's processing record, never stdout
        from anonymization.services import lookup_tables_for

        self.run = RunContext(echo=self.echoes.append, allow_get_url=dicomedit_allow_get_url(),
                              lookup_tables=lookup_tables_for(project_id=self.variables.get("project") or None))

    def take_echoes(self) -> list[str]:
        lines, self.echoes[:] = list(self.echoes), []
        return lines

    def apply(self, ds) -> bool:
        """Run every script on ``ds`` in place; False when a script rejected the file."""
        for n, (_which, script) in enumerate(self.compiled, start=1):
            result = script.apply(ds, variables=self.variables, run=self.run, script_id=str(n))
            if result.rejected:
                return False
        return True


def pixel_script(rectangles: list[list[int]]):
    """A DicomEdit script of one ``alterPixels`` rectangle per template rectangle (l, t, r, b; exclusive
    right/bottom), the same operation as the engine's alterPixels."""
    from anonymization.services import script_compile

    lines = ['version "6.1"']
    for left, top, right, bottom in rectangles:
        lines.append(f'alterPixels["rectangle", "l={left}, t={top}, r={right}, b={bottom}", "solid", "v=0"]')
    return script_compile(text="\n".join(lines) + "\n")
