"""The one error hierarchy of the services; core.api_errors turns it into HTTP answers."""

from __future__ import annotations

from collections.abc import Sequence


class ServiceError(Exception):
    """An error the caller caused or must be told about; `status` is its HTTP answer."""

    status = 400
    code = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class Conflict(ServiceError):
    """The same id with other content, or a concurrent change that outlived every retry."""

    status = 409
    code = "conflict"


class WrongState(Conflict):
    code = "wrong_state"


class StaleSha(Conflict):
    code = "stale"


class ReasonRequired(ServiceError):
    status = 422
    code = "reason_required"


class Invalid(ServiceError):
    """Invalid input, with every violation as {"path", "message"}."""

    status = 422
    code = "invalid"

    def __init__(self, detail: str, errors: Sequence[dict[str, str]] = ()) -> None:
        super().__init__(detail)
        self.errors = list(errors)


class SsotUnavailable(ServiceError):
    """The SSOT could not be read or written; nothing was changed.

    `retry_after`: seconds after which trying again may succeed (sent as `Retry-After`), when known.
    """

    status = 503
    code = "ssot_unavailable"

    def __init__(self, detail: str, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class SsotBusy(SsotUnavailable):
    """The SSOT could not take the change within SSOT_WRITE_WAIT_SEC (its write lock, the write budget or
    GitHub's rate limit); nothing was changed, and `Retry-After` says when to try again."""

    code = "ssot_busy"


class SyncFailed(SsotUnavailable):
    """A sync stopped on a failure that is not the SSOT's (the database, most likely); it is recorded in
    SyncState and the next sync tries again. Nothing a file holds causes one: such a file is quarantined."""

    code = "sync_failed"
