"""Every model of ours that has a default order (what the API's lists, the admin's change lists and the
dashboard read in) is ordered totally, and by an index.

Totally: the order ends with a unique column, so pages cut from it by `LIMIT`/`OFFSET` never overlap or
leave a gap (ssot/tests/test_api_paging.py shows the fault on PostgreSQL). By an index: the first page of
a list reads a few index entries instead of sorting the whole table (the messages list sorted every
message on each request)."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db.models import Model

OURS = ("ssot", "monitoring", "webhooks")


def _ordered_models() -> list[type[Model]]:
    return [
        model
        for label in OURS
        for model in apps.get_app_config(label).get_models()
        if model._meta.ordering and not model._meta.proxy
    ]


def _names(fields: list[str] | tuple[str, ...]) -> list[str]:
    return [field.lstrip("-") for field in fields]


def test_there_are_ordered_models_to_check():
    assert len(_ordered_models()) >= 8


@pytest.mark.parametrize("model", _ordered_models(), ids=lambda model: model.__name__)
def test_the_default_order_ends_with_a_unique_column(model):
    last = model._meta.get_field(_names(model._meta.ordering)[-1].replace("pk", model._meta.pk.name))
    assert last.unique, f"{model.__name__} is ordered by {model._meta.ordering}, which can tie"


@pytest.mark.parametrize("model", _ordered_models(), ids=lambda model: model.__name__)
def test_the_default_order_is_read_from_an_index(model):
    ordering = _names(model._meta.ordering)
    indexed = [_names(index.fields) for index in model._meta.indexes if index.condition is None]
    indexed += [[field.name] for field in model._meta.get_fields() if getattr(field, "unique", False)]
    assert any(columns[: len(ordering)] == ordering or columns == ordering[:1] for columns in indexed), (
        f"{model.__name__} is ordered by {model._meta.ordering}, and no index starts with it"
    )
