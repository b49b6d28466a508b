"""SSOT stores: a local bare git repository or a GitHub repository, behind one interface."""

from ssot.stores.base import (
    Change,
    Entry,
    Store,
    StoreConflict,
    StoreError,
    StoreNotFound,
    StoreUnavailable,
    git_blob_sha,
)

__all__ = [
    "Change",
    "Entry",
    "Store",
    "StoreConflict",
    "StoreError",
    "StoreNotFound",
    "StoreUnavailable",
    "git_blob_sha",
]
