"""manage.py anonymize SCRIPT SRC [SRC ...] --out OUTDIR [--var NAME=VALUE ...] [--dialect 4|6]

Exit 0 on success, 2 on a script syntax error (prints LINE:COL: message), 1 if any file failed (the
others still run). Files rejected by reject[] are not written. Outputs are written atomically.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from anonymization.dicomedit import DicomEditError, DicomEditSyntaxError, RunContext
from anonymization.services import dataset_anonymize, script_compile


def iter_sources(sources: list[str]) -> list[tuple[Path, Path]]:
    """(input file, output path relative to OUTDIR) for every file under the sources."""
    pairs: list[tuple[Path, Path]] = []
    for src in sources:
        root = Path(src)
        if root.is_dir():
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                pairs.append((path, path.relative_to(root)))
        else:
            pairs.append((root, Path(root.name)))
    return pairs


def write_atomically(ds: object, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            ds.save_as(fh)  # type: ignore[attr-defined]
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


class Command(BaseCommand):
    help = "Apply a DicomEdit script (6.x or 4.2) to DICOM files and write the results under --out."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("script", help="DicomEdit script file")
        parser.add_argument("sources", nargs="+", help="DICOM files or directories (recursive)")
        parser.add_argument("--out", required=True, help="output directory")
        parser.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                            help="script variable (project, subject, session, modalityLabel, ...)")
        parser.add_argument("--dialect", choices=["4", "6"], default=None,
                            help="force DicomEdit 4.2 or 6 (default: detect from the script)")

    def handle(self, *args: object, **options: object) -> None:
        variables: dict[str, str] = {}
        for item in options["var"]:  # type: ignore[union-attr]
            name, sep, value = str(item).partition("=")
            if not sep or not name:
                raise CommandError(f"--var expects NAME=VALUE, got {item!r}")
            variables[name] = value
        try:
            text = Path(str(options["script"])).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise CommandError(f"cannot read script: {e}") from None
        try:
            script = script_compile(text=text, dialect=options["dialect"],  # type: ignore[arg-type]
                                    variables=variables)
        except DicomEditSyntaxError as e:
            self.stderr.write(str(e))
            sys.exit(2)

        out = Path(str(options["out"]))
        run = RunContext(allow_get_url=getattr(settings, "DICOMEDIT_ALLOW_GET_URL", False),
                         echo=lambda s: self.stdout.write(s))
        written = rejected = failed = 0
        for source, relative in iter_sources(list(options["sources"])):  # type: ignore[arg-type]
            try:
                ds = dcmread(source)
                result = dataset_anonymize(script=script, dataset=ds, variables=variables, run=run)
                if result.rejected:
                    rejected += 1
                    continue
                write_atomically(ds, out / relative)
                written += 1
            except DicomEditError as e:
                failed += 1
                self.stderr.write(f"{source}: {e}")
            except (InvalidDicomError, OSError, ValueError, TypeError, AttributeError, KeyError) as e:
                failed += 1
                self.stderr.write(f"{source}: cannot process file ({type(e).__name__})")
        self.stdout.write(f"{written} written, {rejected} rejected, {failed} failed")
        if failed:
            sys.exit(1)
