"""WebhookDelivery now belongs to the webhooks app (webhooks 0001): gone from ssot's state only; the table
and its rows stay where they are, for webhooks to take over."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("ssot", "0005_mirrored_json_fields"),
        ("webhooks", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="WebhookDelivery")],
            database_operations=[],
        ),
    ]
