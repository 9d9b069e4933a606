#!/usr/bin/env python
"""The same flash sale as bench/flash_sale.py, fired at the peer Django ticket shop.

bench/peer/setup.sh installs and serves the peer (kkig/event-booking-api, see
bench/README.md). This script then:

1. seeds a fresh event with one ticket type of ``--capacity`` and ``--buyers``
   attendees with one access token each, through the peer's own models
   (``bench/peer/seed.py``, run with the peer's interpreter in its code tree);
2. checks the server answers one buyer's token (``GET /api/events/<id>/``);
3. warms every connection with one authenticated ``GET /api/users/me/bookings``,
   then fires one ``POST /api/bookings/`` of quantity 1 per buyer with
   ``--concurrency`` in flight (one thread and one ``http.client`` connection
   each; gunicorn's sync workers close after each response, so each request
   includes a TCP connect, as in flash_sale.py);
4. prints purchases/s, latency p50/p95/p99/max per status, answers by status and
   body, and the CPU seconds of the peer's gunicorn (its master and workers, by pid),
   of the PostgreSQL backends of its database and of everything else on the box;
5. checks the peer did not oversell: ``booked == min(buyers, capacity)``,
   ``available == capacity - booked``, 201s == booked. Exit 1 if a check fails.

Standard library only (runs with any Python 3.11+, e.g. EventFlow's venv), plus
flash_sale.py's HTTP and report helpers.

    bench/peer/setup.sh /work/.mirror/kkig+event-booking-api/repo
    .venv/bin/python bench/peer/run.py --buyers 1000 --capacity 1000      # every order a sale, one hot row
    .venv/bin/python bench/peer/run.py --buyers 1000 --capacity 100       # a sell-out
    bench/peer/setup.sh --stop
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH_DIR))

from flash_sale import (  # noqa: E402  (after the path above)
    Result,
    Target,
    cpu_delta,
    cpu_snapshot,
    fmt_latency,
    latency_summary,
    send,
)

SEED_SCRIPT = Path(__file__).resolve().parent / "seed.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Flash sale against the peer Django ticket shop served by bench/peer/setup.sh.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--url", default="http://127.0.0.1:18090", help="The peer's base URL.")
    parser.add_argument(
        "--peer-dir",
        default=os.environ.get("PEER_DIR", "/tmp/peer"),  # noqa: S108  (setup.sh's default)
        help="setup.sh's PEER_DIR.",
    )
    parser.add_argument("--buyers", type=int, default=1000, help="Buyers; each sends one booking of quantity 1.")
    parser.add_argument("--capacity", type=int, default=1000, help="Capacity of the event and its ticket type.")
    parser.add_argument("--concurrency", type=int, default=64, help="Requests in flight at once.")
    parser.add_argument("--timeout", type=float, default=60.0, help="Per-request socket timeout in seconds.")
    parser.add_argument("--json", metavar="FILE", help="Also write the summary as JSON to FILE.")
    args = parser.parse_args(argv)
    for name in ("buyers", "capacity", "concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def peer_python(args: argparse.Namespace, *command: str) -> dict:
    """Run seed.py with the peer's interpreter, in its tree, with the environment setup.sh wrote."""
    peer = Path(args.peer_dir)
    env_file = peer / "env"
    if not env_file.exists():
        raise SystemExit(f"error: {env_file} not found; run bench/peer/setup.sh first")
    shell = f'source "{env_file}" && exec "{peer}/venv/bin/python" "{SEED_SCRIPT}" ' + " ".join(command)
    out = subprocess.run(  # noqa: S603
        ["/bin/bash", "-c", shell], cwd=peer / "backend", check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout)


def peer_processes(args: argparse.Namespace) -> set[int]:
    """The peer's gunicorn master (its pid file) and its workers (children of the master)."""
    try:
        master = int((Path(args.peer_dir) / "gunicorn.pid").read_text().strip())
    except (OSError, ValueError):
        return set()
    pids = {master}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                raw = (entry / "stat").read_text()
                if int(raw[raw.rindex(")") + 2 :].split()[1]) == master:
                    pids.add(int(entry.name))
    return pids


def relabel(snapshot: dict | None, pids: set[int]) -> dict | None:
    if snapshot:
        for pid in pids & snapshot["processes"].keys():
            snapshot["processes"][pid] = ("peer gunicorn (master + workers)", snapshot["processes"][pid][1])
    return snapshot


def body_code(status: int, data: bytes) -> str:
    if status == 201:
        return ""
    try:
        body = json.loads(data)
    except ValueError:
        return "non-json"
    text = body[0] if isinstance(body, list) and body else body.get("detail", body) if isinstance(body, dict) else body
    return str(text)[:60]


def fire(args: argparse.Namespace, target: Target, seed: dict) -> tuple[list[Result], float, dict, float]:
    tokens = seed["tokens"]
    workers = min(args.concurrency, len(tokens))
    results: list[Result] = []
    lock = threading.Lock()
    next_job = iter(range(len(tokens)))
    clock = {"t0": 0.0}
    warmed = threading.Barrier(workers + 1)
    go = threading.Barrier(workers + 1, action=lambda: clock.__setitem__("t0", time.perf_counter()))
    body_of = {"event_id": seed["event_id"], "items": [{"ticket_type_id": seed["ticket_type_id"], "quantity": 1}]}
    body = json.dumps(body_of).encode()

    def worker(index: int) -> None:
        conn = target.connection()
        try:
            with contextlib.suppress(Exception):  # warm-up, best effort: the run reports real failures
                send(conn, target, "GET", "/api/users/me/bookings", tokens[index])
            warmed.wait()
            go.wait()
            t0, local = clock["t0"], []
            while True:
                with lock:
                    i = next(next_job, None)
                if i is None:
                    break
                start = time.perf_counter()
                try:
                    status, data = send(conn, target, "POST", "/api/bookings/", tokens[i], body)
                    code = body_code(status, data)
                except Exception as exc:
                    status, code = 0, type(exc).__name__
                local.append(Result(status, code, start - t0, time.perf_counter() - start))
            with lock:
                results.extend(local)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    warmed.wait()
    pids = peer_processes(args)
    before = relabel(cpu_snapshot(), pids)
    go.wait()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - clock["t0"]
    after = relabel(cpu_snapshot(), pids | peer_processes(args))
    cpu, busy = cpu_delta(before, after) if before and after else ({}, 0.0)
    return sorted(results, key=lambda r: r.started), wall, cpu, busy


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    target = Target(args.url, args.timeout)
    print(f"Seeding one event and ticket type of {args.capacity} and {args.buyers} buyers in the peer ...", flush=True)
    started = time.perf_counter()
    seed = peer_python(args, "seed", "--buyers", str(args.buyers), "--capacity", str(args.capacity))
    print(f"  event {seed['event_id']}, ticket type {seed['ticket_type_id']} ({time.perf_counter() - started:.1f} s)")

    conn = target.connection()
    try:
        status, data = send(conn, target, "GET", f"/api/events/{seed['event_id']}/", seed["tokens"][0])
    except OSError as exc:
        print(f"error: cannot reach the peer at {args.url}: {exc}", file=sys.stderr)
        return 2
    finally:
        conn.close()
    if status != 200:
        print(f"error: GET /api/events/{seed['event_id']}/ answered {status}: {data[:300]!r}", file=sys.stderr)
        return 2

    print(
        f"Firing {args.buyers} bookings at {args.url}, {min(args.concurrency, args.buyers)} in flight ...", flush=True
    )
    results, wall, cpu, busy = fire(args, target, seed)
    ok = [r for r in results if r.status == 201]
    last_201 = max((r.started + r.latency for r in ok), default=0.0)
    by_status: dict[str, list[float]] = defaultdict(list)
    for r in results:
        by_status[str(r.status)].append(r.latency)
    summary = {
        "peer": "kkig/event-booking-api",
        "commit": (Path(args.peer_dir) / "COMMIT").read_text().strip(),
        "buyers": args.buyers,
        "capacity": args.capacity,
        "concurrency": min(args.concurrency, args.buyers),
        "wall_seconds": wall,
        "requests_per_second": len(results) / wall if wall else 0.0,
        "purchases": len(ok),
        "purchases_per_second": len(ok) / wall if wall else 0.0,
        "purchases_per_second_while_selling": len(ok) / last_201 if last_201 else 0.0,
        "latency": latency_summary([r.latency for r in results]),
        "latency_by_status": {s: latency_summary(v) for s, v in sorted(by_status.items())},
        "responses": dict(Counter(f"{r.status} {r.code}".strip() for r in results).most_common()),
        "cpu_seconds": dict(sorted(cpu.items(), key=lambda item: -item[1])),
        "machine_busy_fraction": busy,
    }

    print()
    print(
        f"Peer flash sale ({summary['peer']} @ {summary['commit'][:7]}): {args.buyers} buyers, 1 ticket type x "
        f"capacity {args.capacity}, concurrency {summary['concurrency']}"
    )
    print(f"  wall time            {wall:8.2f} s")
    print(f"  requests/s           {summary['requests_per_second']:8.1f}")
    print(
        f"  purchases/s          {summary['purchases_per_second']:8.1f}   (201s over the whole run; "
        f"{summary['purchases_per_second_while_selling']:.1f}/s until the last 201 at {last_201:.2f} s)"
    )
    print(f"  latency, all         {fmt_latency(summary['latency'])}")
    for status, lat in summary["latency_by_status"].items():
        print(f"  latency, {status:<11} {fmt_latency(lat)}")
    print("  responses")
    for key, count in summary["responses"].items():
        print(f"    {count:6d}  {key}")
    if cpu:
        print(f"  CPU during the run   machine busy {busy:.0%} of {os.cpu_count()} cores; CPU seconds by process:")
        for name, seconds in list(summary["cpu_seconds"].items())[:8]:
            print(f"    {seconds:7.2f} s  ({seconds / wall:4.2f} cores)  {name}")
        peer_cpu = cpu.get("peer gunicorn (master + workers)", 0.0)
        per_201 = f", per 201 {peer_cpu / len(ok) * 1000:.1f} ms" if ok else ""
        print(f"  peer gunicorn CPU per request {peer_cpu / max(len(results), 1) * 1000:.1f} ms{per_201}")
        print(
            "  (the peer runs with CONN_MAX_AGE 0: its PostgreSQL backends live one request each and are "
            "counted under 'processes that exited')"
        )

    state = peer_python(args, "check", "--event", str(seed["event_id"]), "--ticket-type", str(seed["ticket_type_id"]))
    expected = min(args.buyers, args.capacity)
    checks = {
        f"booked {state['booked']} <= capacity {args.capacity} (no oversell)": state["booked"] <= args.capacity,
        f"booked {state['booked']} == min(buyers, capacity) = {expected}": state["booked"] == expected,
        f"available {state['available']} == capacity - booked = {args.capacity - state['booked']}": state["available"]
        == args.capacity - state["booked"],
        f"201 responses {len(ok)} == booked {state['booked']}": len(ok) == state["booked"],
    }
    summary["checks"] = {text: ok_ for text, ok_ in checks.items()}
    print("Oversell check")
    for text, passed in checks.items():
        print(f"  {'ok  ' if passed else 'FAIL'}  {text}")
    passed = all(checks.values())
    print("PASS" if passed else "FAIL: see the checks above")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
