"""The moved WebhookDelivery takes the table name of its app (a rename: every row stays), and its content
type follows it, so that the permissions groups were granted on it, and the admin's log, keep pointing
at it."""

from django.db import IntegrityError, migrations, transaction


def _relabel(apps, schema_editor, old: str, new: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    alias = schema_editor.connection.alias
    try:
        with transaction.atomic(using=alias):
            ContentType.objects.using(alias).filter(app_label=old, model="webhookdelivery").update(app_label=new)
    except IntegrityError:
        # Both exist (a stale type made by hand): left as Django's own RenameContentType leaves it, for
        # `remove_stale_contenttypes` to settle.
        pass
    ContentType.objects.clear_cache()


def forwards(apps, schema_editor) -> None:
    _relabel(apps, schema_editor, "ssot", "webhooks")


def backwards(apps, schema_editor) -> None:
    _relabel(apps, schema_editor, "webhooks", "ssot")


class Migration(migrations.Migration):

    dependencies = [
        ("webhooks", "0001_initial"),
        ("ssot", "0006_webhookdelivery_to_webhooks"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelTable(name="webhookdelivery", table=None),
        migrations.RunPython(forwards, backwards),
    ]
