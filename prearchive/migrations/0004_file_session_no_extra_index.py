"""PrearchiveFile.session: no index of its own (the unique (session, sop_instance_uid) index serves every
look-up by session); one b-tree insert less per stored file. Django's AlterField keeps the old index, so
the index is dropped by name."""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "prearchive_prearchivefile_session_id_f97de578"


class Migration(migrations.Migration):

    dependencies = [
        ('prearchive', '0003_session_overwrite'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='prearchivefile',
                    name='session',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name='files', to='prearchive.prearchivesession'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{INDEX}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{INDEX}" ON "prearchive_prearchivefile" ("session_id")',
                ),
            ],
        ),
    ]
