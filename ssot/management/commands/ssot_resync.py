"""ssot_resync [--full]: bring the mirror to the SSOT's head and say what it took."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from core.errors import SsotUnavailable
from ssot.sync import sync


class Command(BaseCommand):
    help = "Sync the ORM mirror with the SSOT (incremental; --full compares every file's blob SHA)."

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true", help="compare every file with the ledger")

    def handle(self, *args, full: bool, **options):
        try:
            report = sync(full=full)
        except SsotUnavailable as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(
            f"{report.mode} sync to {(report.head or '-')[:10]}: {report.files_read} files read, "
            f"{report.files_deleted} deleted, {report.rows_written} rows written, "
            f"{len(report.quarantined)} quarantined, in {report.seconds:.3f}s"
        )
        for path in report.quarantined:
            self.stdout.write(f"  quarantined: {path}")
