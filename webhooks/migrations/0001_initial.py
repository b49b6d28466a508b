"""WebhookDelivery comes from the ssot app (its 0006): the model moves in Django's state only, over the
table ssot created (`ssot_webhookdelivery`); no row is copied. 0002 gives the table its own name."""

from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("ssot", "0005_mirrored_json_fields"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='WebhookDelivery',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('source', models.CharField(max_length=16)),
                        ('guid', models.CharField(max_length=128, unique=True)),
                        ('event', models.CharField(max_length=64)),
                        ('action', models.CharField(blank=True, default='', max_length=64)),
                        ('headers', models.JSONField(default=dict)),
                        ('body', models.BinaryField()),
                        ('state', models.CharField(choices=[('pending', 'Pending'), ('processing', 'Processing'), ('done', 'Done'), ('failed', 'Failed'), ('ignored', 'Ignored')], default='pending', max_length=16)),
                        ('attempts', models.PositiveIntegerField(default=0)),
                        ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                        ('error', models.TextField(blank=True, default='')),
                        ('received_at', models.DateTimeField(auto_now_add=True)),
                        ('processed_at', models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        'db_table': 'ssot_webhookdelivery',
                        'verbose_name_plural': 'webhook deliveries',
                        'ordering': ['-received_at'],
                        'indexes': [models.Index(fields=['state', 'next_attempt_at'], name='webhook_state_next'), models.Index(fields=['event', '-received_at'], name='webhook_event_time')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
