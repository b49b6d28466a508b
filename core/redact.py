"""What an error may say to a client: no filesystem path, no credentials in a URL (issue 15).

Messages of the stores and the sync are written for the operator's log; before one reaches an answer,
the dashboard or /api/sync/ it goes through `public`.
"""

from __future__ import annotations

import re

# scheme://user:password@host -> scheme://[credentials]@host
URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@:]+(?::[^/\s@]*)?@")
# An absolute path of two parts or more (/srv/agentos/var/ssot.git), not a URL's path (after "host/").
ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/-])/(?:[\w.~-]+/)+[\w.~-]*")
PATH_PLACEHOLDER = "[path]"


def public(text: str) -> str:
    """`text` with URL credentials and absolute filesystem paths replaced by placeholders."""
    text = URL_CREDENTIALS.sub(r"\1[credentials]@", text)
    return ABSOLUTE_PATH.sub(PATH_PLACEHOLDER, text)
