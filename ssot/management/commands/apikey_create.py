"""apikey_create USER [--name N] [--days D]: create an API key and print it (the only time it is shown)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ServiceError
from ssot import credentials


def create_key(username: str, *, name: str, days: int | None) -> credentials.NewKey:
    """The command's work, shared with `issue_token`: errors become CommandError."""
    model = get_user_model()
    user = model.objects.filter(**{model.USERNAME_FIELD: username}).first()
    if user is None:
        raise CommandError(f"No user {username!r}; create it first (manage.py createsuperuser).")
    try:
        return credentials.apikey_create(owner=user, name=name, days=days, actor="manage.py")
    except ServiceError as exc:
        raise CommandError(exc.detail) from None


class Command(BaseCommand):
    help = (
        f"Create an API key for an active user, valid --days days (1 to {credentials.MAX_DAYS}, default "
        f"{credentials.DEFAULT_DAYS}), and print it: it is shown this once and stored only as a hash."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="what the key is for (default: 'key of USER')")
        parser.add_argument("--days", type=int, default=None, help=f"default {credentials.DEFAULT_DAYS}")

    def handle(self, *args: Any, username: str, name: str, days: int | None, **options: Any) -> None:
        new = create_key(username, name=name, days=days)
        self.stderr.write(
            f"API key {new.key.key_id} for {username}, expires {new.key.expires_at:%Y-%m-%d}; "
            f"revoke with: manage.py apikey_revoke {new.key.key_id}"
        )
        self.stdout.write(new.plaintext)
