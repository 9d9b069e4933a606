"""The inventory ledger is append-only, and PostgreSQL enforces it."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION orders_inventoryentry_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'orders_inventoryentry is append-only (% refused)', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER orders_inventoryentry_append_only
    BEFORE UPDATE OR DELETE ON orders_inventoryentry
    FOR EACH ROW EXECUTE FUNCTION orders_inventoryentry_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS orders_inventoryentry_append_only ON orders_inventoryentry;
DROP FUNCTION IF EXISTS orders_inventoryentry_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("orders", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
