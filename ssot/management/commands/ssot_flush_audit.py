"""ssot_flush_audit: commit the queued audit lines to the SSOT in one commit."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from core.errors import ServiceError
from ssot.services import audit_flush


class Command(BaseCommand):
    help = "Commit queued audit lines (webhook receipts, CI events, rejected messages) in one SSOT commit."

    def handle(self, *args, **options):
        try:
            count = audit_flush()
        except ServiceError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(f"flushed {count} audit lines")
