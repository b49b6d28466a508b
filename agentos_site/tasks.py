"""django-q2 entry point of the site's upkeep (`manage.py setup_schedules` registers it)."""

from __future__ import annotations

import logging

from agentos_site import prune as pruning

log = logging.getLogger(__name__)


def prune() -> dict[str, int]:
    """Delete the database-only rows past their age or count (agentos_site/prune.py)."""
    report = pruning.prune()
    log.info("%s", pruning.describe(report))
    return report.as_dict()
