"""apikey_revoke ID: revoke an API key at once (its id is the part after `agos_`, or the whole key)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import NotFound
from ssot import credentials


class Command(BaseCommand):
    help = "Revoke an API key by its id; it stops working at once in every process."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key_id", help="the key's id (the 12 characters after agos_)")

    def handle(self, *args: Any, key_id: str, **options: Any) -> None:
        try:
            key = credentials.apikey_revoke(key_id=credentials.key_id_of(key_id), actor="manage.py")
        except NotFound as exc:
            raise CommandError(exc.detail) from None
        self.stdout.write(f"API key {key.key_id} ({key.name}, of {key.owner.get_username()}) is revoked.")
