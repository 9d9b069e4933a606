#!/usr/bin/env python
"""The flash sale with EventFlow scaled out: K gunicorn "nodes" behind a local load balancer.

Issue 10 (target 6) asks for the flash sale "with 2 or 3 web server processes on
different ports behind a local load balancer, sharing PostgreSQL and Redis". This
script starts ``--nodes`` K gunicorn processes of this tree (``eventflow.wsgi``,
``--workers-per-node`` W sync workers each, ports ``--base-port``, +1, ...), all with
the caller's environment (``DATABASE_URL``, ``REDIS_URL``, ``SECRET_KEY``, ...), puts a
round-robin load balancer in front on ``--lb-port``, runs ``bench/flash_sale.py``
against the load balancer's URL with every option this script does not know passed
through, then stops everything it started (also on an error, Ctrl-C or SIGTERM) and
exits with flash_sale.py's exit code.

The load balancer is nginx when the ``nginx`` binary is there (Debian:
``apt-get install nginx-light``; config generated under a temp dir, one worker
process, round robin, the proxy headers of ``deploy/nginx``, no per-address
connection limit since all the load comes from one address), else a small asyncio
TCP round-robin proxy in this process (``--lb python`` forces it). The nodes get
``NUM_PROXIES=1``, as behind deploy/nginx, so the app reads the client address from
the ``X-Forwarded-For`` entry the balancer appends (the TCP proxy adds none, so
there the address is the proxy's, 127.0.0.1, as with NUM_PROXIES=0).

Note: nginx keeps the client's connection alive, so unlike direct runs against
gunicorn's sync workers, the load generator does not reconnect for every request;
nginx opens a new connection to a node per request instead.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/eventflow_bench REDIS_URL=redis://127.0.0.1:6379/10
    export SECRET_KEY=...   # the same for the nodes and flash_sale.py, which this script runs with this env
    .venv/bin/python bench/scale_out.py --nodes 2 --workers-per-node 2 -- --buyers 1000 --capacity 100 --vacuum
    .venv/bin/python bench/scale_out.py --nodes 3 --workers-per-node 1 --buyers 20000 --capacity 5000

Per node it prints the requests the balancer sent there (nginx's log of the upstream
address; not with the TCP proxy, which counts connections instead).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
FLASH_SALE = PROJECT_DIR / "bench" / "flash_sale.py"


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        description="Run bench/flash_sale.py against K EventFlow gunicorn nodes behind a local load balancer. "
        "Options not listed here go to flash_sale.py.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--nodes", type=int, default=2, help="gunicorn processes K, one port each.")
    parser.add_argument("--workers-per-node", type=int, default=2, help="Sync workers W per node.")
    parser.add_argument("--threads", type=int, default=0, help="gunicorn --threads per worker (0: sync workers).")
    parser.add_argument("--base-port", type=int, default=18111, help="Port of node 1; node k gets base + k - 1.")
    parser.add_argument("--lb-port", type=int, default=18110, help="The load balancer's port.")
    parser.add_argument("--lb", choices=["auto", "nginx", "python"], default="auto", help="Which load balancer.")
    parser.add_argument("--lb-workers", type=int, default=1, help="nginx worker processes.")
    parser.add_argument("--keep-logs", action="store_true", help="Keep the temp dir with the logs and config.")
    args, rest = parser.parse_known_args(argv)
    if rest and rest[0] == "--":
        rest = rest[1:]
    if any(a == "--url" or a.startswith("--url=") for a in rest):
        parser.error("--url is set by this script (the load balancer's URL)")
    if args.nodes < 1 or args.workers_per_node < 1:
        parser.error("--nodes and --workers-per-node must be at least 1")
    return args, rest


def wait_for_port(port: int, proc: subprocess.Popen | None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process for port {port} exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f} s")


def check_health(url: str) -> None:
    """The app answers through the balancer (any HTTP answer from /api/v1/health will do: 200 or 503)."""
    try:
        with urllib.request.urlopen(url + "/api/v1/health", timeout=10) as response:  # noqa: S310 (our URL)
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    print(f"  GET {url}/api/v1/health -> {status}")


# --- Load balancers --------------------------------------------------------------------------------

NGINX_CONF = """\
# Generated by bench/scale_out.py.
worker_processes {workers};
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
daemon off;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    log_format upstream '$upstream_addr $status';
    access_log {tmp}/nginx-access.log upstream buffer=64k flush=1s;
    upstream eventflow {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        keepalive_timeout 75s;
        keepalive_requests 100000;
        location / {{
            proxy_pass http://eventflow;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 5s;
            proxy_read_timeout 120s;
            proxy_send_timeout 120s;
        }}
    }}
}}
"""


def start_nginx(args: argparse.Namespace, tmp: Path, ports: list[int]) -> subprocess.Popen:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    servers = "\n".join(f"        server 127.0.0.1:{port};" for port in ports)
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=args.lb_workers, tmp=tmp, servers=servers, port=args.lb_port))
    return subprocess.Popen(  # noqa: S603
        [nginx, "-c", str(conf), "-p", str(tmp)], stdout=subprocess.DEVNULL, stderr=open(tmp / "nginx.out", "wb")
    )


class TcpRoundRobin:
    """A minimal TCP load balancer: each accepted connection goes to the next node, bytes copied both ways."""

    def __init__(self, port: int, ports: list[int]) -> None:
        self.port, self.targets = port, itertools.cycle(ports)
        self.connections: Counter = Counter()
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        port = next(self.targets)
        self.connections[port] += 1
        try:
            node_reader, node_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(self._pipe(client_reader, node_writer), self._pipe(node_reader, client_writer))

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024, reuse_address=True)
        )
        self.started.set()
        with contextlib.suppress(RuntimeError):
            self.loop.run_forever()
        server.close()

    def start(self) -> None:
        self.thread.start()
        self.started.wait(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


# --- Main --------------------------------------------------------------------------------------------


def stop_process(proc: subprocess.Popen, name: str) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGQUIT if name == "nginx" else signal.SIGTERM)  # nginx: SIGQUIT, graceful
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    args, passthrough = parse_args(argv)
    if not os.environ.get("DATABASE_URL"):
        print("error: set DATABASE_URL (and REDIS_URL, SECRET_KEY): the nodes must share them", file=sys.stderr)
        return 2
    lb = args.lb
    if lb == "auto":
        lb = "nginx" if (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()) else "python"
    gunicorn = Path(sys.executable).parent / "gunicorn"
    if not gunicorn.exists():
        print(f"error: no gunicorn next to {sys.executable}; run this with the project's venv", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="eventflow-scale-out-"))
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / sub).mkdir()
    children: list[tuple[str, subprocess.Popen]] = []
    proxy: TcpRoundRobin | None = None
    ports = [args.base_port + k for k in range(args.nodes)]
    node_env = {**os.environ, "NUM_PROXIES": "1" if lb == "nginx" else "0"}

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_signal)
    code = 1
    try:
        worker_args = ["--threads", str(args.threads)] if args.threads else []
        for k, port in enumerate(ports, start=1):
            command = [
                str(gunicorn),
                "eventflow.wsgi",
                *("--workers", str(args.workers_per_node), "--bind", f"127.0.0.1:{port}"),
                *worker_args,
                "--no-control-socket",
            ]
            log = open(tmp / f"node-{k}.log", "wb")  # noqa: SIM115 (closed with the process, at exit)
            proc = subprocess.Popen(command, cwd=PROJECT_DIR, env=node_env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
            children.append((f"node {k}", proc))
        for (_name, proc), port in zip(children, ports, strict=True):
            wait_for_port(port, proc)
        if lb == "nginx":
            proc = start_nginx(args, tmp, ports)
            children.append(("nginx", proc))
            wait_for_port(args.lb_port, proc)
        else:
            proxy = TcpRoundRobin(args.lb_port, ports)
            proxy.start()
        url = f"http://127.0.0.1:{args.lb_port}"
        mode = f"{args.threads} threads" if args.threads else "sync"
        print(
            f"{args.nodes} node(s) x {args.workers_per_node} gunicorn worker(s) ({mode}) on ports "
            f"{', '.join(map(str, ports))}; {lb} load balancer on {url}; logs in {tmp}",
            flush=True,
        )
        check_health(url)
        command = [sys.executable, str(FLASH_SALE), "--url", url, *passthrough]
        print("$ " + " ".join(command[1:]), flush=True)
        sale = subprocess.Popen(command, cwd=PROJECT_DIR)  # noqa: S603
        children.append(("flash_sale.py", sale))
        code = sale.wait()
    except KeyboardInterrupt as exc:
        print(f"interrupted ({exc}); stopping", file=sys.stderr)
        code = 130
    except RuntimeError as exc:
        print(f"error: {exc}; logs in {tmp}", file=sys.stderr)
        args.keep_logs = True
        code = 2
    finally:
        signal.signal(signal.SIGTERM, previous)
        if proxy is not None:
            proxy.stop()
        for name, proc in reversed(children):
            stop_process(proc, name)
        report_distribution(tmp, proxy)
        if args.keep_logs:
            print(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return code


def report_distribution(tmp: Path, proxy: TcpRoundRobin | None) -> None:
    if proxy is not None:
        counts = proxy.connections
        what = "connections"
    else:
        access = tmp / "nginx-access.log"
        if not access.exists():
            return
        counts = Counter(line.split()[0] for line in access.read_text().splitlines() if line.strip())
        what = "requests"
    if counts:
        print(f"Load balancer: {what} per node: " + ", ".join(f"{node} {n}" for node, n in sorted(counts.items())))


if __name__ == "__main__":
    sys.exit(main())
