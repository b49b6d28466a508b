"""Rate limits (SPEC section 8), kept in the default cache: Redis when REDIS_URL is set, so every daphne
process shares them; the process's memory when embedded (one process).

- The API, per authenticated user: `ApiUserRateThrottle`, at `API_USER_RATE` (DRF's throttle, 429 with
  Retry-After through the exception handler).
- Webhook requests that fail verification, per source address: `UnverifiedLimiter`, a fixed window at
  `WEBHOOK_UNVERIFIED_RATE`. A verified delivery is never refused for rate; only failures count.

The source address is REMOTE_ADDR, unless `TRUSTED_PROXY_COUNT` (default 0) says that many reverse
proxies in front of us each append the address they saw to X-Forwarded-For: then it is the entry that
the outermost trusted proxy appended. Anything further left was written by the client and is ignored.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from rest_framework.throttling import UserRateThrottle

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """A rate such as 30/min as (requests, period in seconds), in DRF's notation (s, m, h, d)."""
    count, _, period = rate.partition("/")
    try:
        return int(count), _PERIODS[period.strip()[:1].lower()]
    except (ValueError, KeyError):
        raise ValueError(f"a rate is N/s, N/min, N/hour or N/day, not {rate!r}") from None


def client_address(request: HttpRequest) -> str:
    """The address a request came from, trusting exactly TRUSTED_PROXY_COUNT proxies."""
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if not forwarded:
        return remote
    return forwarded[-min(proxies, len(forwarded))]


class ApiUserRateThrottle(UserRateThrottle):
    """DRF's per-user throttle (anonymous requests by address) at `API_USER_RATE`, read per request."""

    scope = "user"

    def get_rate(self) -> str:
        return settings.API_USER_RATE


@dataclass(frozen=True)
class UnverifiedLimiter:
    """Counts a source address's failed verifications per fixed window; over the rate, it is refused."""

    scope: str = "webhook-unverified"

    def _window(self) -> tuple[str, int, float]:
        limit, period = parse_rate(settings.WEBHOOK_UNVERIFIED_RATE)
        now = time.time()
        window = int(now // period)
        return f"{window}", limit, (window + 1) * period - now

    def _key(self, address: str, window: str) -> str:
        return f"{self.scope}:{address}:{window}"

    def blocked(self, address: str) -> int | None:
        """Seconds until `address` may fail again, if it has used up this window; else None."""
        window, limit, left = self._window()
        if cache.get(self._key(address, window), 0) >= limit:
            return max(1, math.ceil(left))
        return None

    def failed(self, address: str) -> int | None:
        """Count one failed verification; seconds to wait if that went over the rate, else None."""
        window, limit, left = self._window()
        key = self._key(address, window)
        cache.add(key, 0, timeout=math.ceil(left) + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # the key expired between add and incr: this is the window's first failure
            cache.set(key, 1, timeout=math.ceil(left) + 1)
            count = 1
        if count > limit:
            return max(1, math.ceil(left))
        return None


unverified_limiter = UnverifiedLimiter()
