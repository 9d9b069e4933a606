#!/usr/bin/env python
"""Slow and idle clients: does ``/api/v1/health`` still answer while N sockets hold half-sent requests?

Runs on this machine without Docker, from the project root::

    .venv/bin/python bench/idle_sockets.py                        # 0, 2, 3 and 200 idle sockets, both targets
    .venv/bin/python bench/idle_sockets.py --targets nginx --idle 0,1000
    .venv/bin/python bench/idle_sockets.py --json /tmp/idle.json  # also save the results

The nginx target needs the ``nginx`` binary (Debian: ``apt-get install nginx``).
``--targets gunicorn`` runs without it. The whole run takes about 10 minutes.
Most of that is bare gunicorn with 200 idle sockets, where every probe waits
out its ``--timeout``.

What it does:

1. Makes a temporary directory with an embedded SQLite database and runs
   ``manage.py migrate`` there. The environment is DEBUG=false, a random
   SECRET_KEY, ALLOWED_HOSTS=127.0.0.1,localhost, no Redis and no broker.
2. For each target it starts fresh processes, each in its own session:

   * ``gunicorn``: gunicorn exactly as the Dockerfile's CMD starts it
     (``gunicorn eventflow.wsgi -c deploy/gunicorn.conf.py``), plus
     ``--bind 127.0.0.1:PORT`` (default 18801). WEB_CONCURRENCY=3 as in
     docker-compose.yml.
   * ``nginx``: that gunicorn, plus nginx (default port 18802) in front of it.
     The site config is ``deploy/nginx/templates/default.conf.template``,
     rendered like the official image's entrypoint does it: ``envsubst`` of the
     variables defined in the container's environment only, here
     EVENTFLOW_UPSTREAM=127.0.0.1:PORT and NGINX_LOCAL_RESOLVERS. It is
     included by a main config that copies the image's ``nginx.conf``
     (``worker_processes auto``, ``worker_connections 1024``), but with the pid
     file, logs and temp directories in the temporary directory. nginx runs in
     the foreground as a child process.

3. For each N in ``--idle`` (default 0, 2, 3, 200) it opens N sockets to the
   target. Each one sends ``GET /api/v1/health HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n``,
   never finishes the header, and stays open. After one second it times
   ``--requests`` (20) sequential ``GET /api/v1/health`` from a fresh
   connection each. Every request has a ``--timeout`` of 20 s, so a stall is
   measured, not waited out forever. N=0 is the baseline. N=3 is as many
   idle sockets as gunicorn has workers. It then records how many idle
   sockets were still open once the probes were done. For the next
   ``--hold-check`` seconds (15) it watches whether the server drops them
   (closes them, or answers them with an error). nginx should drop them at
   ``client_header_timeout``. Last, it closes them and waits until the target
   answers quickly again.
4. Prints a Markdown table: target, idle sockets, successful probes, p50/max
   latency over all probes (a timed-out probe counts as the time it waited),
   failures, idle sockets still open, sockets the server closed, and the
   gunicorn worker timeouts logged during the scenario.

Every process it starts is stopped, and the temporary directory removed
(unless ``--keep-tmp``), also on Ctrl-C, SIGTERM or an error. Standard library
only. Run it with the project's venv, so gunicorn and Django are importable.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import secrets
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
GUNICORN_CONF = "deploy/gunicorn.conf.py"
NGINX_TEMPLATE = PROJECT_DIR / "deploy" / "nginx" / "templates" / "default.conf.template"
HEALTH = "/api/v1/health"
PARTIAL_REQUEST = b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # the blank line never comes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Idle-socket benchmark: bare gunicorn vs nginx in front (no Docker needed).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--idle", default="0,2,3,200", help="Comma-separated numbers of idle sockets, one scenario each."
    )
    parser.add_argument("--requests", type=int, default=20, help="Sequential probes per scenario.")
    parser.add_argument("--timeout", type=float, default=20.0, help="Per-probe socket timeout in seconds.")
    parser.add_argument("--targets", default="gunicorn,nginx", help="Comma-separated: gunicorn, nginx.")
    parser.add_argument("--gunicorn-port", type=int, default=18801)
    parser.add_argument("--nginx-port", type=int, default=18802)
    parser.add_argument("--web-concurrency", type=int, default=3, help="WEB_CONCURRENCY for gunicorn.")
    parser.add_argument(
        "--hold-check", type=float, default=15.0, help="Seconds to watch whether the server drops idle sockets."
    )
    parser.add_argument("--json", metavar="FILE", help="Also write the results as JSON.")
    parser.add_argument("--keep-tmp", action="store_true", help="Keep the temporary directory (logs, configs).")
    args = parser.parse_args(argv)
    args.idle = [int(n) for n in args.idle.split(",") if n.strip()]
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if unknown := set(args.targets) - {"gunicorn", "nginx"}:
        parser.error(f"unknown target(s): {', '.join(sorted(unknown))}")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- Processes ------------------------------------------------------------------------------------


class Processes:
    """Children started in their own session; all of them are stopped on exit."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], *, env: dict[str, str], logfile: Path) -> subprocess.Popen:
        with open(logfile, "ab") as out:
            proc = subprocess.Popen(  # noqa: S603 - fixed argument lists built by this script
                cmd,
                cwd=PROJECT_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append((name, proc))
        return proc

    def stop_all(self) -> None:
        while self.procs:
            _name, proc = self.procs.pop()
            stop(proc)


def _group_members(pgid: int) -> list[int]:
    """Live processes in process group ``pgid`` (Linux /proc), e.g. workers a master left behind."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def stop(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM the master (gunicorn and nginx both stop their workers), then SIGKILL what is left of its group."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for pid in _group_members(proc.pid):  # the group is the child's own session
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT leftovers don't count
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# --- HTTP probes --------------------------------------------------------------------------------------


@dataclass
class Probe:
    elapsed: float
    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


def probe(
    port: int, timeout: float, headers: dict[str, str] | None = None
) -> tuple[Probe, http.client.HTTPResponse | None]:
    """One GET /api/v1/health from a fresh connection, timed from connect to the last body byte."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", HEALTH, headers=headers or {})
        resp = conn.getresponse()
        resp.read()
        return Probe(time.perf_counter() - start, resp.status), resp
    except (OSError, http.client.HTTPException) as exc:
        return Probe(time.perf_counter() - start, None, type(exc).__name__), None
    finally:
        conn.close()


def wait_until_fast(port: int, what: str, *, limit: float = 120.0, fast: float = 1.0) -> None:
    """Wait until three probes in a row answer 200 in under ``fast`` seconds."""
    deadline = time.monotonic() + limit
    streak = 0
    while time.monotonic() < deadline:
        result, _ = probe(port, timeout=min(5.0, fast * 5))
        streak = streak + 1 if result.ok and result.elapsed < fast else 0
        if streak >= 3:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} on port {port} did not answer {HEALTH} quickly within {limit:.0f} s")


# --- The stack ---------------------------------------------------------------------------------------


def app_env(tmp: Path, web_concurrency: int) -> dict[str, str]:
    """The environment gunicorn and migrate get: embedded SQLite, nothing else to reach."""
    data_dir = tmp / "data"
    (tmp / "static").mkdir()
    env = dict(os.environ)
    env.update(
        DATA_DIR=str(data_dir),
        STATIC_ROOT=str(tmp / "static"),  # exists, so WhiteNoise does not warn; finders serve the files
        DATABASE_URL=f"sqlite:///{data_dir / 'db.sqlite3'}",
        REDIS_URL="",
        CELERY_BROKER_URL="",
        CELERY_TASK_ALWAYS_EAGER="true",
        DEBUG="false",
        HTTPS="false",
        SECURE_SSL_REDIRECT="false",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        WEB_CONCURRENCY=str(web_concurrency),
        # gunicorn's control socket goes to $XDG_RUNTIME_DIR; keep it away from other gunicorns on the box.
        XDG_RUNTIME_DIR=str(tmp),
        PYTHONDONTWRITEBYTECODE="1",
    )
    for key in ("NUM_PROXIES", "GUNICORN_CMD_ARGS", "FORWARDED_ALLOW_IPS"):
        env.pop(key, None)
    return env


def gunicorn_bin() -> str:
    candidate = Path(sys.executable).parent / "gunicorn"
    found = str(candidate) if candidate.exists() else shutil.which("gunicorn")
    if not found:
        raise SystemExit("gunicorn not found: run this with the project's venv (.venv/bin/python)")
    return found


def start_gunicorn(procs: Processes, tmp: Path, env: dict[str, str], port: int) -> Path:
    logfile = tmp / f"gunicorn-{port}.log"
    cmd = [gunicorn_bin(), "eventflow.wsgi", "-c", GUNICORN_CONF, "--bind", f"127.0.0.1:{port}"]
    log(f"starting: {' '.join(cmd)}")
    procs.start("gunicorn", cmd, env=env, logfile=logfile)
    wait_until_fast(port, "gunicorn", limit=60)
    return logfile


def local_resolvers() -> str:
    """NGINX_LOCAL_RESOLVERS as the image's 15-local-resolvers.envsh computes it."""
    servers = []
    with contextlib.suppress(OSError):
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                servers.append(f"[{parts[1]}]" if ":" in parts[1] else parts[1])
    return " ".join(servers) or "127.0.0.1"


def envsubst(template: str, variables: dict[str, str]) -> str:
    """``envsubst "$defined_envs"``: replace ``$NAME`` and ``${NAME}`` for defined NAMEs only."""
    if shutil.which("envsubst"):
        shell_format = " ".join(f"${{{name}}}" for name in variables)
        return subprocess.run(  # noqa: S603
            [shutil.which("envsubst"), shell_format],
            input=template,
            env=variables,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return variables[name] if name in variables else match.group(0)

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", replace, template)


def start_nginx(procs: Processes, tmp: Path, port: int, upstream_port: int) -> Path:
    nginx = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
    if not nginx:
        raise SystemExit("nginx not found: apt-get install nginx (or run with --targets gunicorn)")
    prefix = tmp / "nginx"
    (prefix / "conf.d").mkdir(parents=True)
    if os.geteuid() == 0:
        # nginx's workers run as "nobody" under a root master. They need to reach the temp directories.
        tmp.chmod(0o711)
        prefix.chmod(0o755)

    # What the official image's container environment defines (plus its own ENV, which the template does not use).
    variables = {
        "EVENTFLOW_UPSTREAM": f"127.0.0.1:{upstream_port}",
        "NGINX_LOCAL_RESOLVERS": local_resolvers(),
        "HOME": "/root",
        "HOSTNAME": platform.node(),
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    }
    site = envsubst(NGINX_TEMPLATE.read_text(), variables)
    if leftover := re.findall(r"\$\{[A-Z_]+\}", site):
        raise SystemExit(f"template variables left unrendered: {leftover}")
    site = re.sub(r"\blisten\s+8080\b", f"listen 127.0.0.1:{port}", site)  # the container's port -> a loopback port
    (prefix / "conf.d" / "default.conf").write_text(site)

    mime = "include /etc/nginx/mime.types;" if Path("/etc/nginx/mime.types").exists() else ""
    (prefix / "nginx.conf").write_text(
        f"""# Mirrors the official image's /etc/nginx/nginx.conf; paths moved into {prefix}.
worker_processes auto;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log notice;
events {{
    worker_connections 1024;
}}
http {{
    {mime}
    default_type application/octet-stream;
    log_format main '$remote_addr - $remote_user [$time_local] "$request" '
                    '$status $body_bytes_sent "$http_referer" '
                    '"$http_user_agent" "$http_x_forwarded_for"';
    access_log {prefix}/access.log main;
    sendfile on;
    keepalive_timeout 65;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/conf.d/*.conf;
}}
"""
    )
    cmd = [nginx, "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")]
    check = subprocess.run([*cmd, "-t"], capture_output=True, text=True, check=False)  # noqa: S603
    if check.returncode != 0:
        raise SystemExit(f"nginx -t failed:\n{check.stderr}")
    log(f"starting: {' '.join(cmd)}")
    procs.start("nginx", cmd, env={"PATH": os.environ.get("PATH", "")}, logfile=prefix / "stdout.log")
    wait_until_fast(port, "nginx", limit=30)
    return prefix


def nginx_checks(port: int, gunicorn_log: Path) -> list[str]:
    """A few facts about the rendered config, so a broken template shows up in the output."""
    lines = []
    rid = f"idle-bench-{secrets.token_hex(4)}"
    result, resp = probe(port, timeout=5, headers={"X-Request-ID": rid})
    if resp is not None:
        lines.append(
            f"GET {HEALTH}: {resp.status}; Server: {resp.getheader('Server')!r}; X-Request-ID echoed: "
            f"{resp.getheader('X-Request-ID') == rid}"
        )
    else:
        lines.append(f"GET {HEALTH}: failed ({result.error})")
    time.sleep(0.3)
    logged = [line for line in gunicorn_log.read_text(errors="replace").splitlines() if rid in line]
    lines.append(f"gunicorn access log line for it: {logged[-1].strip() if logged else 'missing'}")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(
            b"POST /api/v1/events/1/image HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: 7340032\r\n\r\n"
        )
        head = s.recv(4096).decode(errors="replace")
    lines.append(f"7 MiB upload (headers only): {_status_and_type(head)}")
    refusals = {
        "3 MiB JSON body to /auth/login (headers only)": (
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 3145728\r\n\r\n"
        ),
        "3 MiB image upload (headers only)": (
            b"POST /api/v1/events/1/image HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
            b"Content-Length: 3145728\r\n\r\n"
        ),
        "10,000-byte request line": b"GET /api/v1/events?q=" + b"x" * 10_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "20,000-byte header": b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
        + b"x" * 20_000
        + b"\r\n\r\n",
        "malformed request line": b"GET /\x01 HTTP/9\r\nHost: 127.0.0.1\r\n\r\n",
    }
    for label, raw in refusals.items():
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(raw)
            try:
                head = s.recv(4096).decode(errors="replace")
            except TimeoutError:  # nginx accepted the headers and is waiting for the body
                lines.append(f"{label}: accepted, nginx waits for the body")
                continue
        lines.append(f"{label}: {_status_and_type(head)}")
    return lines


def _status_and_type(head: str) -> str:
    status_line = head.split("\r\n", 1)[0] or "(no answer)"
    ctype = re.search(r"(?im)^content-type:\s*(\S+)", head)
    return f"{status_line}; {ctype.group(1) if ctype else 'no content-type'}"


# --- Scenarios -----------------------------------------------------------------------------------------


@dataclass
class Scenario:
    target: str
    idle: int
    probes: list[Probe] = field(default_factory=list)
    idle_opened: int = 0
    idle_open_after_probes: int = 0
    idle_closed_by_server: int = 0
    closed_after_s: float | None = None  # median time from opening to the server closing it
    worker_timeouts: int = 0

    @property
    def ok(self) -> int:
        return sum(p.ok for p in self.probes)

    @property
    def p50(self) -> float:
        return statistics.median(p.elapsed for p in self.probes)

    @property
    def max(self) -> float:
        return max(p.elapsed for p in self.probes)

    @property
    def failures(self) -> str:
        kinds: dict[str, int] = {}
        for p in self.probes:
            if not p.ok:
                kind = p.error or f"HTTP {p.status}"
                kinds[kind] = kinds.get(kind, 0) + 1
        return ", ".join(f"{n} {kind}" for kind, n in kinds.items()) or "none"


def open_idle(port: int, n: int) -> list[tuple[socket.socket, float]]:
    sockets = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(PARTIAL_REQUEST)
        s.setblocking(False)
        sockets.append((s, time.monotonic()))
    return sockets


def still_open(s: socket.socket) -> bool:
    """Still waiting for the rest of its request: nothing to read, no EOF.

    Any bytes mean the server gave up on it too: gunicorn answers a worker it
    killed for its timeout with an error response before the socket closes.
    """
    try:
        s.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def watch_closes(sockets: list[tuple[socket.socket, float]], seconds: float) -> list[float]:
    """Seconds from opening to the server closing, for each idle socket it closes within ``seconds``."""
    closed: list[float] = []
    if not sockets or seconds <= 0:
        return closed
    sel = selectors.DefaultSelector()
    for s, opened in sockets:
        if still_open(s):
            sel.register(s, selectors.EVENT_READ, opened)
    deadline = time.monotonic() + seconds
    while sel.get_map() and (left := deadline - time.monotonic()) > 0:
        for key, _ in sel.select(timeout=left):
            if not still_open(key.fileobj):
                closed.append(time.monotonic() - key.data)
                sel.unregister(key.fileobj)
    sel.close()
    return closed


def count_worker_timeouts(gunicorn_log: Path, offset: int) -> int:
    with open(gunicorn_log, "rb") as fh:
        fh.seek(offset)
        return fh.read().count(b"WORKER TIMEOUT")


def run_scenario(target: str, port: int, n_idle: int, args: argparse.Namespace, gunicorn_log: Path) -> Scenario:
    result = Scenario(target=target, idle=n_idle)
    log_offset = gunicorn_log.stat().st_size
    idle = open_idle(port, n_idle)
    result.idle_opened = len(idle)
    try:
        time.sleep(1.0 if n_idle else 0.0)  # let the server take them in
        for i in range(args.requests):
            p, _ = probe(port, args.timeout)
            result.probes.append(p)
            log(
                f"  {target:8} idle={n_idle:<4} probe {i + 1:2}/{args.requests}: "
                f"{p.status or p.error} in {p.elapsed * 1000:.1f} ms"
            )
        result.idle_open_after_probes = sum(still_open(s) for s, _ in idle)
        closed = watch_closes(idle, args.hold_check if n_idle else 0)
        already_closed = result.idle_opened - result.idle_open_after_probes
        result.idle_closed_by_server = already_closed + len(closed)
        result.closed_after_s = statistics.median(closed) if closed else None
    finally:
        for s, _ in idle:
            s.close()
    wait_until_fast(port, target, limit=180)  # the next scenario starts from a responsive server
    result.worker_timeouts = count_worker_timeouts(gunicorn_log, log_offset)
    return result


# --- Report ----------------------------------------------------------------------------------------------


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def machine() -> dict[str, str]:
    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    nginx_version = ""
    with contextlib.suppress(OSError):
        nginx_version = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False).stderr.strip()  # noqa: S603
    from importlib.metadata import version

    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "gunicorn": version("gunicorn"),
        "django": version("django"),
        "nginx": nginx_version.removeprefix("nginx version: "),
    }


def table(results: list[Scenario]) -> str:
    header = (
        "| target | idle sockets | probes OK | p50 | max | failures | idle sockets still open after the probes "
        f"| idle sockets dropped by the server (median age) | gunicorn WORKER TIMEOUTs |\n|{'---|' * 9}"
    )
    rows = [header]
    for r in results:
        target = "gunicorn (bare)" if r.target == "gunicorn" else "nginx → gunicorn"
        closed = "—" if not r.idle else f"{r.idle_closed_by_server}/{r.idle}"
        if r.closed_after_s is not None:
            closed += f" ({r.closed_after_s:.1f} s)"
        still = "—" if not r.idle else f"{r.idle_open_after_probes}/{r.idle}"
        rows.append(
            f"| {target} | {r.idle} | {r.ok}/{len(r.probes)} | {fmt_s(r.p50)} | {fmt_s(r.max)} | {r.failures} "
            f"| {still} | {closed} | {r.worker_timeouts} |"
        )
    return "\n".join(rows)


# --- Main -------------------------------------------------------------------------------------------------


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop the children


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    ports = [args.gunicorn_port] + ([args.nginx_port] if "nginx" in args.targets else [])
    if busy := [p for p in ports if not port_free(p)]:
        log(f"port(s) already in use: {busy}; pick others with --gunicorn-port/--nginx-port")
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="eventflow-idle-"))
    procs = Processes()
    results: list[Scenario] = []
    info = machine()
    checks: list[str] = []
    try:
        env = app_env(tmp, args.web_concurrency)
        log(f"temporary directory: {tmp}")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=PROJECT_DIR, env=env, check=True
        )
        for target in args.targets:
            gunicorn_log = start_gunicorn(procs, tmp, env, args.gunicorn_port)
            port = args.gunicorn_port
            if target == "nginx":
                start_nginx(procs, tmp, args.nginx_port, args.gunicorn_port)
                port = args.nginx_port
                checks = nginx_checks(port, gunicorn_log)
                for line in checks:
                    log(f"nginx check: {line}")
            for _ in range(10):  # warm-up: every worker has loaded the URLconf and the views
                probe(port, args.timeout)
            for n in args.idle:
                results.append(run_scenario(target, port, n, args, gunicorn_log))
            procs.stop_all()
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        procs.stop_all()
        if args.keep_tmp:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"\n{info['date']}: {info['cpus']} CPUs ({info['cpu']}), Linux {info['kernel']}, Python {info['python']}, "
        f"gunicorn {info['gunicorn']} ({args.web_concurrency} sync workers, {GUNICORN_CONF}), "
        f"Django {info['django']}, nginx {info['nginx'] or 'n/a'}"
    )
    print(
        f"{args.requests} sequential GET {HEALTH} per row, fresh connection each, timeout {args.timeout:g} s; "
        f"idle sockets sent {PARTIAL_REQUEST!r} and nothing more.\n"
    )
    print(table(results))
    if checks:
        print("\nnginx checks:\n" + "\n".join(f"- {line}" for line in checks))
    if args.json:
        payload = {
            "machine": info,
            "args": {k: v for k, v in vars(args).items() if k != "json"},
            "nginx_checks": checks,
            "results": [
                {**asdict(r), "ok": r.ok, "p50_s": r.p50, "max_s": r.max, "failures": r.failures} for r in results
            ],
        }
        Path(args.json).write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
