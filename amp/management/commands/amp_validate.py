"""`manage.py amp_validate FILE...`: print each file's AMP/1.0 verdict; exit 1 unless all are valid."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from amp.validation import ROOT, AmpValidationError, Violation, validate_json


def file_violations(path: Path) -> list[Violation]:
    """Return the violations of the message file at `path`; reading problems are violations at `$`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [Violation(ROOT, f"cannot read file: {exc.strerror or exc}")]
    try:
        validate_json(data)
    except AmpValidationError as exc:
        return exc.errors
    return []


class Command(BaseCommand):
    help = "Validate AMP/1.0 message files; exit 0 if all are valid, 1 otherwise."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", metavar="FILE", help="JSON file holding one AMP/1.0 message")

    def handle(self, *args: object, files: list[str], **options: object) -> None:
        invalid = 0
        for name in files:
            errors = file_violations(Path(name))
            if not errors:
                self.stdout.write(f"OK  {name}")
                continue
            invalid += 1
            self.stdout.write(f"INVALID  {name}")
            for error in errors:
                self.stdout.write(f"  - {error}")
        if invalid:
            raise CommandError(f"{invalid} of {len(files)} files are not valid AMP/1.0", returncode=1)
