"""webhooks_replay [--failed] [GUID ...] [--since WHEN]: process stored deliveries again, and tell."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from webhooks.models import WebhookDelivery
from webhooks.processing import process_delivery

_RELATIVE = re.compile(r"(\d+)\s*([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(value: str) -> datetime:
    """An ISO 8601 time (UTC if it has no offset) or an age such as 30m, 2h, 1d."""
    if match := _RELATIVE.fullmatch(value.strip()):
        return timezone.now() - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CommandError(
            f"--since takes an ISO 8601 time or an age like 30m, 2h, 1d; not {value!r}"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Re-run the processing of failed webhook deliveries, or of the ones named by GUID."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("guids", nargs="*", metavar="GUID", help="deliveries to re-run, in any state")
        parser.add_argument("--failed", action="store_true", help="every failed delivery")
        parser.add_argument("--since", help="only deliveries received since (ISO 8601 time, or 30m, 2h, 1d)")

    def handle(self, *args, guids: list[str], failed: bool, since: str | None, **options) -> None:
        if not (guids or failed or since):
            raise CommandError("Say which deliveries: --failed, --since WHEN, or GUIDs.")
        chosen = WebhookDelivery.objects.all()
        missing: list[str] = []
        if since:
            chosen = chosen.filter(received_at__gte=parse_since(since))
        if guids:
            chosen = chosen.filter(guid__in=guids)
            missing = sorted(set(guids) - set(chosen.values_list("guid", flat=True)))
            for guid in missing:
                self.stderr.write(f"{guid}: no such delivery")
        if failed:
            chosen = chosen.filter(state=WebhookDelivery.State.FAILED)
        rows = list(chosen.order_by("received_at", "pk").values_list("pk", "guid", "event", "state"))
        outcomes: dict[str, int] = {}
        for pk, guid, event, before in rows:
            after = process_delivery(pk, force=True)
            outcomes[after] = outcomes.get(after, 0) + 1
            delivery = WebhookDelivery.objects.get(pk=pk)
            self.stdout.write(f"{guid} {event}: {before} -> {after} ({delivery.error or 'no note'})")
        summary = ", ".join(f"{count} {state}" for state, count in sorted(outcomes.items())) or "nothing"
        self.stdout.write(f"replayed {len(rows)} deliveries: {summary}")
        if outcomes.get(WebhookDelivery.State.FAILED) or missing:
            raise CommandError("some deliveries did not go through; see above")
