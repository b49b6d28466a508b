"""What daphne is told beyond its command line: Twisted parses no POST body into `request.args`.

Twisted's `Request.requestReceived` runs every POST's Content-Type through the email package and
parses an urlencoded or multipart body whole into `request.args`, which daphne never reads: it hands
the application the raw body, and Django parses it. That parse cost 0.5 ms of the 12 ms of CPU an API
message write takes on the 2-core machine (bench/write_load.py under py-spy), and a multipart upload
would be held a second time, parsed, before Django ever saw it. Twisted's own switch
(`parsePOSTFormSubmission=False`, Twisted 24.7+) turns it off. daphne makes its requests from the
module global `daphne.http_protocol.WebRequest` (`HTTPFactory.buildProtocol`): `install()`, called by
agentos_site/asgi.py as daphne loads the application, points that global at the subclass below.
Both library texts are fenced (agentos_site/tests/test_tripwires.py).
"""

from __future__ import annotations

from typing import Any

from daphne import http_protocol


class WebRequest(http_protocol.WebRequest):
    """daphne's request, with Twisted's form parsing off (the body reaches the application as sent)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["parsePOSTFormSubmission"] = False
        super().__init__(*args, **kwargs)


def install() -> None:
    """Make daphne's HTTP factory build `WebRequest` (idempotent)."""
    http_protocol.WebRequest = WebRequest
