"""Django's PostgreSQL backend, with a health check that costs no round trip.

With ``CONN_HEALTH_CHECKS`` Django checks a persistent connection before a request
reuses it, by sending ``SELECT 1``: a round trip on every request, a statement more
than a purchase needs (issue 10). A server that restarted, failed over, or dropped an
idle connection closes its end of the socket, usually after a FATAL notice; the kernel
then reports the socket readable although we asked nothing. So an idle connection is
usable when libpq still counts it as open, it is not inside a transaction or in error,
and nothing is waiting to be read on it: a ``select()`` with no timeout, no network.

What this cannot see is a peer that vanished without closing (a cable cut, a host
powered off): the first query then fails as it would have after a passed ``SELECT 1``
too, and the connection is replaced on the next request.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        conn = self.connection
        if conn is None or conn.closed or conn.broken:
            return False
        if conn.pgconn.status != pq.ConnStatus.OK:
            return False
        if conn.pgconn.transaction_status not in (pq.TransactionStatus.IDLE, pq.TransactionStatus.INTRANS):
            return False
        try:
            readable, _writable, _errors = select.select([conn.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable
