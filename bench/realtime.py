#!/usr/bin/env python
"""WebSockets during a flash sale: N subscribers on one event while buyers race for its tickets.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/eventflow_rt_bench REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python bench/realtime.py [--subscribers 1000] [--buyers 3000] [--tickets 2000] \\
        [--concurrency 16] [--web-workers 2] [--push-ms 1000]

What it does, all on this machine:

1. Creates its own database if missing and migrates it; seeds a published event with one ticket
   type of ``--tickets`` (no per-buyer limit) and ``--buyers`` accounts with an access token each.
2. Starts the servers as production runs them: Daphne (``eventflow.asgi``) for the WebSockets and
   gunicorn (``eventflow.wsgi``, ``--web-workers`` sync workers) for ``POST /orders``, both on the
   Redis channel layer and PostgreSQL. Each gunicorn worker has its own publisher thread: the
   coalescing across processes (the Redis claim) is part of what is measured.
3. A subscriber process (``--role subscribers``: asyncio and the ``websockets`` client) opens
   ``--subscribers`` sockets on ``/ws/events/{id}/`` and timestamps every message it receives.
4. Once they are all open, ``--concurrency`` threads each with a keep-alive HTTP connection
   place one order of one ticket per buyer, as fast as gunicorn answers.
5. Reports the sale (purchases/s), the messages per subscriber, whether every subscriber saw the
   final count, messages delivered per second, and the delay from commit to receipt.

Delay: a push carries a count (``available``); the purchase that brought the stock to that count
is the (tickets - available)-th order by ``created_at`` (the order row's insert, a few ms before
its commit, so the delay is over-stated by that much). Delay = receipt time - that time, for
every message each subscriber received. Coalescing alone accounts for up to ``--push-ms``.
Each run leaves its event, orders and users behind (a scratch database).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VENV_BIN = Path(sys.executable).parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--buyers", type=int, default=3000)
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--push-ms", type=int, default=1000, help="REALTIME_STOCK_PUSH_MS of the servers")
    parser.add_argument("--role", default="main", choices=["main", "subscribers"])
    parser.add_argument("--ws-url", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- The subscriber process ---------------------------------------------------------------------


async def subscribers(url: str, count: int, out: str) -> None:
    import websockets

    received: list[list[tuple[float, str]]] = [[] for _ in range(count)]
    opened = 0
    all_open = asyncio.Event()
    stop = asyncio.Event()
    sale_over = asyncio.Event()
    last_message = [time.monotonic()]
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, sale_over.set)

    async def one(i: int, ready: asyncio.Event) -> None:
        nonlocal opened
        async with websockets.connect(url, open_timeout=60, ping_interval=None, max_queue=None) as ws:
            opened += 1
            ready.set()
            if opened == count:
                all_open.set()
            while True:
                reader = asyncio.ensure_future(ws.recv())
                stopper = asyncio.ensure_future(stop.wait())
                done, _ = await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if reader in done:
                    received[i].append((time.time(), reader.result()))
                    last_message[0] = time.monotonic()
                    stopper.cancel()
                else:
                    reader.cancel()
                    return

    tasks = []
    for start in range(0, count, 50):  # 50 handshakes at a time, each wave once the last is open
        wave = [asyncio.Event() for _ in range(start, min(count, start + 50))]
        tasks.extend(asyncio.ensure_future(one(start + k, ready)) for k, ready in enumerate(wave))
        await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in wave)), timeout=60)
    await asyncio.wait_for(all_open.wait(), timeout=120)
    print("ready", flush=True)
    await sale_over.wait()
    # Then until the pushes stop: 3 s without a message on any socket (or 120 s at most).
    deadline = time.monotonic() + 120
    while time.monotonic() - last_message[0] < 3 and time.monotonic() < deadline and not stop.is_set():
        await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    Path(out).write_text(json.dumps(received))


# --- The main process ---------------------------------------------------------------------------


def setup_django(push_ms: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventflow.settings")
    os.environ["REALTIME_STOCK_PUSH_MS"] = str(push_ms)
    import django

    django.setup()


def seed(args: argparse.Namespace) -> tuple[int, int, list[str]]:
    from django.core.management import call_command
    from rest_framework_simplejwt.tokens import AccessToken

    from bench.common import attendees, event_on_sale

    call_command("migrate", "--noinput", verbosity=0)
    tag = f"rt{int(time.time())}"
    event, tier = event_on_sale(tag, "Realtime", price_cents=4900, tickets=args.tickets, max_per_order=10)
    buyers = attendees(tag, "rt-buyer", args.buyers)
    return event.pk, tier.pk, [str(AccessToken.for_user(user)) for user in buyers]


def wait_for(port: int, path: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not come up")


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (FileNotFoundError, IndexError):
            pass
    return total


def process_tree(pid: int) -> list[int]:
    """``pid`` and its children (gunicorn's workers)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return [pid, *children]


def sale(port: int, event_id: int, tier_id: int, tokens: list[str], concurrency: int) -> tuple[dict, float, float]:
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    queue = list(enumerate(tokens))
    body = json.dumps({"event": event_id, "items": [{"ticket_type": tier_id, "quantity": 1}]})

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                if not queue:
                    return
                _, token = queue.pop()
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            for _attempt in range(3):
                try:
                    conn.request("POST", "/api/v1/orders", body, headers)
                    response = conn.getresponse()
                    response.read()
                    break
                except (http.client.HTTPException, OSError):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            with lock:
                statuses[response.status] = statuses.get(response.status, 0) + 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses, started, time.time()


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def main() -> int:
    args = parse_args()
    if args.role == "subscribers":
        asyncio.run(subscribers(args.ws_url, args.subscribers, args.out))
        return 0
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
        raise SystemExit("Set DATABASE_URL (PostgreSQL, a scratch database) and REDIS_URL (a scratch db).")
    from bench.common import ensure_database

    ensure_database(os.environ["DATABASE_URL"])
    setup_django(args.push_ms)
    event_id, tier_id, tokens = seed(args)
    print(f"event {event_id}: {args.tickets} tickets, {len(tokens)} buyers, {args.subscribers} subscribers")

    env = {
        **os.environ,
        "REALTIME_STOCK_PUSH_MS": str(args.push_ms),
        "THROTTLE_USER_RATE": "100000/min",
        "THROTTLE_ANON_RATE": "100000/min",
        "LOG_LEVEL": "ERROR",
        "DEBUG": "false",
    }
    ws_port, web_port = free_port(), free_port()
    procs = []
    try:
        daphne = subprocess.Popen(  # noqa: S603 (fixed command)
            [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(ws_port), "-v", "0", "eventflow.asgi:application"],
            cwd=ROOT,
            env=env,
        )
        procs.append(daphne)
        web = subprocess.Popen(  # noqa: S603 (fixed command)
            [
                str(VENV_BIN / "gunicorn"),
                "eventflow.wsgi",
                "-c",
                "deploy/gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{web_port}",
                "--workers",
                str(args.web_workers),
                "--access-logfile",
                "/dev/null",
            ],
            cwd=ROOT,
            env={**env, "WEB_CONCURRENCY": str(args.web_workers)},
        )
        procs.append(web)
        wait_for(ws_port, "/api/v1/health")
        wait_for(web_port, "/api/v1/health")

        out = str(Path(tempfile.mkdtemp(prefix="eventflow-rt-bench-")) / "received.json")
        subs = subprocess.Popen(  # noqa: S603 (our own interpreter and script)
            [
                sys.executable,
                __file__,
                "--role",
                "subscribers",
                "--subscribers",
                str(args.subscribers),
                "--ws-url",
                f"ws://127.0.0.1:{ws_port}/ws/events/{event_id}/",
                "--out",
                out,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(subs)
        opened_at = time.monotonic()
        assert subs.stdout.readline().strip() == "ready"
        print(f"{args.subscribers} sockets open in {time.monotonic() - opened_at:.1f} s")

        cpu_before = {"daphne": cpu_seconds([daphne.pid]), "gunicorn": cpu_seconds(process_tree(web.pid))}
        statuses, started, ended = sale(web_port, event_id, tier_id, tokens, args.concurrency)
        subs.send_signal(signal.SIGUSR1)  # the sale is over: it stops once the pushes do
        subs.wait(timeout=180)
        cpu_after = {"daphne": cpu_seconds([daphne.pid]), "gunicorn": cpu_seconds(process_tree(web.pid))}
        received = json.loads(Path(out).read_text())
        shutil.rmtree(Path(out).parent)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    from django.db import connection

    from orders.models import Order

    created = [
        ts.timestamp()
        for ts in Order.objects.filter(event_id=event_id).order_by("created_at").values_list("created_at", flat=True)
    ]
    sold = len(created)
    final = args.tickets - sold
    connection.close()

    counts, delays, final_seen, kinds = [], [], 0, {}
    for messages in received:
        counts.append(len(messages))
        last = None
        for t, text in messages:
            message = json.loads(text)
            kinds[message["type"]] = kinds.get(message["type"], 0) + 1
            if message["type"] != "stock.updated":
                continue
            last = message["data"]["available"]
            k = args.tickets - last  # the k-th purchase brought the count here
            if 1 <= k <= sold:
                delays.append((t - created[k - 1]) * 1000)
        final_seen += last == final
    duration = ended - started
    delivered = sum(counts)
    first_t = min((m[0][0] for m in received if m), default=started)
    last_t = max((m[-1][0] for m in received if m), default=ended)
    report = {
        "sale": {
            "purchases": sold,
            "responses": statuses,
            "seconds": round(duration, 2),
            "purchases_per_s": round(sold / duration, 1),
        },
        "subscribers": args.subscribers,
        "messages_per_subscriber": {
            "min": min(counts),
            "median": statistics.median(counts),
            "max": max(counts),
        },
        "message_types": kinds,
        "saw_final_available": f"{final_seen}/{args.subscribers} (final available {final})",
        "delivered": delivered,
        "delivered_per_s": round(delivered / max(0.001, last_t - first_t), 1),
        "delay_ms": {
            "p50": round(pct(delays, 50), 1),
            "p95": round(pct(delays, 95), 1),
            "max": round(max(delays), 1),
        }
        if delays
        else None,
        "last_message_after_sale_s": round(last_t - ended, 2),
        "server_cpu_s": {k: round(cpu_after[k] - cpu_before[k], 2) for k in cpu_before},
        "push_ms": args.push_ms,
    }
    print(json.dumps(report, indent=2))
    return 0 if final_seen == args.subscribers else 1


if __name__ == "__main__":
    sys.exit(main())
