"""heartbeat_check: one heartbeat check and one ACK scan, printing what changed; then due notifications."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from monitoring import notify, services


class Command(BaseCommand):
    help = "Run one heartbeat check and one ACK scan now, print what changed, and send due notifications."

    def add_arguments(self, parser):
        parser.add_argument("--no-notify", action="store_true", help="queue notifications without sending")

    def handle(self, *args, no_notify: bool, **options):
        report = services.run_checks()
        lines = report.lines()
        for line in lines:
            self.stdout.write(line)
        if not lines:
            self.stdout.write("no change")
        if not no_notify:
            sent = notify.notifications_send()
            if sent.sent or sent.retrying or sent.failed:
                self.stdout.write(
                    f"notifications: {sent.sent} sent, {sent.retrying} to retry, {sent.failed} given up"
                )
