"""Rows mirrored before the strict reader that it refuses now (a document nested hundreds deep, a number
of thousands of digits) are removed with their ledger entries: the next sync reads their files again and
quarantines them with the reason, and no reader of the rows meets them meanwhile."""

from django.db import migrations

import amp

BATCH = 2000


def _refused(connection, table: str, column: str) -> list[int]:
    cast = f"{column}::text" if connection.vendor == "postgresql" else column
    refused = []
    last = 0
    with connection.cursor() as cursor:
        while True:
            # Raw text, never through JSONField: a row nested too deep is what must not be decoded here.
            cursor.execute(
                f"SELECT id, {cast} FROM {table} WHERE id > %s ORDER BY id LIMIT %s",  # noqa: S608
                [last, BATCH],
            )
            rows = cursor.fetchall()
            if not rows:
                return refused
            for pk, text in rows:
                try:
                    amp.loads(text if isinstance(text, str) else bytes(text))
                except amp.JsonRefused:
                    refused.append(pk)
            last = rows[-1][0]


def forget_refused_rows(apps, schema_editor) -> None:
    connection = schema_editor.connection
    ledger = apps.get_model("ssot", "SsotFile")
    forgotten = 0
    for name, column in (("Task", "document"), ("Message", "envelope")):
        model = apps.get_model("ssot", name)
        pks = _refused(connection, model._meta.db_table, column)
        for start in range(0, len(pks), BATCH):
            rows = model.objects.filter(pk__in=pks[start : start + BATCH])
            ledger.objects.filter(path__in=list(rows.values_list("ssot_path", flat=True))).delete()
            rows.delete()
        forgotten += len(pks)
    if forgotten:
        # The next sync is then a full one: it reads every file the ledger no longer lists.
        apps.get_model("ssot", "SyncState").objects.update(head="")


class Migration(migrations.Migration):
    dependencies = [
        ("ssot", "0003_bigint_columns"),
    ]

    operations = [
        migrations.RunPython(forget_refused_rows, migrations.RunPython.noop),
    ]
