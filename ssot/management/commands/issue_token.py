"""issue_token USER [--days N]: print a JWT access token for an existing, active user (and nothing else)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework_simplejwt.tokens import AccessToken

MAX_DAYS = 365


class Command(BaseCommand):
    help = "Print an access token for an existing active user, valid for --days days (1 to 365, default 1)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--days", type=int, default=1, help=f"lifetime in days, 1 to {MAX_DAYS} (default 1)"
        )

    def handle(self, *args: Any, username: str, days: int, **options: Any) -> None:
        if not 1 <= days <= MAX_DAYS:
            raise CommandError(f"--days must be from 1 to {MAX_DAYS}, not {days}.")
        user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f"No user {username!r}; create it first (manage.py createsuperuser).")
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive; no token is issued.")
        token = AccessToken.for_user(user)
        token.set_exp(lifetime=timedelta(days=days))
        self.stdout.write(str(token))
