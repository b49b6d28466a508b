"""ssot_verify: compare every SSOT file with its row; exit 1 and list the drift, or exit 0 when equal."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from ssot.models import AuditEntry
from ssot.stores.base import StoreError
from ssot.stores.factory import get_store
from ssot.verify import differences


class Command(BaseCommand):
    help = "Compare the ORM mirror with the SSOT; exit 1 on drift."

    def add_arguments(self, parser):
        parser.add_argument(
            "--shallow", action="store_true", help="compare blob SHAs only (no blob reads: cheap on GitHub)"
        )

    def handle(self, *args, shallow: bool, **options):
        try:
            found = differences(get_store(), deep=not shallow)
        except StoreError as exc:
            raise CommandError(f"SSOT unavailable: {exc}") from exc
        queued = AuditEntry.objects.filter(in_ssot=False).count()
        if queued:
            self.stdout.write(f"note: {queued} audit lines are queued for the next flush (not drift)")
        for line in found:
            self.stdout.write(f"DRIFT {line}")
        if found:
            self.stdout.write(f"{len(found)} differences")
            sys.exit(1)
        self.stdout.write("mirror equals the SSOT")
