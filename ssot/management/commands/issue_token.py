"""issue_token USER [--days N]: the draft's one-time token, now a revocable API key (prints only the key)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ssot import credentials
from ssot.management.commands.apikey_create import create_key


class Command(BaseCommand):
    help = (
        f"Print a new API key for an existing active user, valid --days days (1 to {credentials.MAX_DAYS}, "
        f"default {credentials.DEFAULT_DAYS}); list and revoke it in the admin or with apikey_revoke."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--days", type=int, default=None, help=f"default {credentials.DEFAULT_DAYS}")

    def handle(self, *args: Any, username: str, days: int | None, **options: Any) -> None:
        new = create_key(username, name="issue_token", days=days)
        self.stderr.write(f"API key {new.key.key_id} for {username}, expires {new.key.expires_at:%Y-%m-%d}")
        self.stdout.write(new.plaintext)
