"""prune: delete the database-only rows past their age or count (SPEC section 15; agentos_site/prune.py)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from agentos_site.prune import describe, prune


class Command(BaseCommand):
    help = (
        "Delete processed webhook deliveries and sent or failed notifications older than "
        "PRUNE_WEBHOOKS_DAYS / PRUNE_NOTIFICATIONS_DAYS, and django-q2 task records past their bound. "
        "Nothing of the SSOT is touched."
    )

    def handle(self, *args, **options):
        self.stdout.write(describe(prune()))
