"""Full-text search on PostgreSQL: a trigger keeps Event.search_vector current, a GIN index serves it.

The 'simple' configuration does not stem, so titles and venues in any
language match; the catalogue searches with prefix queries. On SQLite the
column stays NULL and the catalogue falls back to plain substring search.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION events_event_search_vector_update() RETURNS trigger AS $$
BEGIN
    NEW.search_vector :=
        setweight(to_tsvector('simple', coalesce(NEW.title, '')), 'A') ||
        setweight(to_tsvector('simple', coalesce(NEW.venue_name, '') || ' ' || coalesce(NEW.city, '')), 'B') ||
        setweight(to_tsvector('simple', coalesce(NEW.description, '')), 'C');
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER events_event_search_vector
    BEFORE INSERT OR UPDATE OF title, description, venue_name, city ON events_event
    FOR EACH ROW EXECUTE FUNCTION events_event_search_vector_update();

UPDATE events_event SET title = title;

CREATE INDEX events_event_search_vector_gin ON events_event USING gin (search_vector);
"""

BACKWARD = """
DROP INDEX IF EXISTS events_event_search_vector_gin;
DROP TRIGGER IF EXISTS events_event_search_vector ON events_event;
DROP FUNCTION IF EXISTS events_event_search_vector_update();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("events", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
