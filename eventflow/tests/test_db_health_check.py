"""The PostgreSQL backend's health check: no round trip, and a connection the server closed is replaced."""

from __future__ import annotations

import select
from unittest import mock

import psycopg
import pytest
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def _admin():
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"] or None, dbname="postgres", autocommit=True
    )


def test_a_live_connection_is_usable_without_sending_anything():
    connection.ensure_connection()
    with mock.patch.object(connection.connection, "cursor", side_effect=AssertionError("a round trip")):
        assert connection.is_usable()


def test_a_connection_the_server_ended_is_not_usable_and_is_replaced():
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    with _admin() as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
    # the server's notice and the close reach the socket: wait for them (an event, not a clock)
    assert select.select([connection.connection.fileno()], [], [], 10)[0]
    assert not connection.is_usable()
    connection.health_check_done = False
    connection.close_if_health_check_failed()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


def test_a_connection_left_in_a_failed_transaction_is_not_usable():
    connection.ensure_connection()
    raw = connection.connection
    raw.autocommit = False
    with pytest.raises(psycopg.errors.DivisionByZero):
        raw.execute("SELECT 1 / 0")
    assert not connection.is_usable()
    raw.rollback()
    raw.autocommit = True
    assert connection.is_usable()
