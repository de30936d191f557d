"""The HTTP server's figures on the real process: scrapes per second with 100 scrapers, scrape latency
through 350 idle connections, RSS around a header flood, a locked start; and what the HTTP server
options weigh (import time, RSS). The tests pin the behaviour; this prints the numbers (they depend
on the machine) for docs/design.md.

Run: `.venv/bin/python bench/bench_http.py [--seconds 30] [--weigh-python /path/to/venv/bin/python]`.
The --weigh-python interpreter has aiohttp and waitress installed (e.g. `python3 -m venv /tmp/weigh &&
/tmp/weigh/bin/pip install aiohttp waitress`); without it those rows say so.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+)", text, re.M).group(1)) / 1024


def get(port: int, path: str, timeout: float = 30) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def start(db: Path, folder: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline_exporter", "--web.listen-address", f"127.0.0.1:{port}",
                             "--database-url", f"sqlite:///{db}", *extra], cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if get(port, "/-/healthy", 2)[0] == 200:
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the exporter did not start")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(30)


def scrapers(port: int, seconds: float, count: int = 100) -> str:
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    refused = [0]
    lock = threading.Lock()

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            try:
                conn.request("GET", "/metrics")
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            with lock:
                if response.status == 200:
                    latencies.append(time.monotonic() - t0)
                else:
                    refused[0] += 1
            if response.will_close:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ms = sorted(x * 1000 for x in latencies)
    return (f"{count} scrapers, {seconds:g} s: {len(ms) / seconds:.1f} complete scrapes/s, {refused[0]} refusals "
            f"(503), p50 {statistics.median(ms):.0f} ms, p99 {ms[int(len(ms) * 0.99) - 1]:.0f} ms")


def flood(port: int, idle: int = 350) -> str:
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(idle)]
    try:
        times = []
        for _ in range(20):
            t0 = time.monotonic()
            status, _ = get(port, "/metrics")
            assert status == 200, status
            times.append((time.monotonic() - t0) * 1000)
    finally:
        for sock in socks:
            sock.close()
    return f"scrape with {idle} idle connections open: p50 {statistics.median(times):.0f} ms, max {max(times):.0f} ms"


def header_flood(pid: int, port: int) -> str:
    before = rss_mib(pid)
    header = b"X-Flood: " + b"a" * 65536 + b"\r\n"

    def one() -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        try:
            sock.sendall(b"GET /metrics HTTP/1.1\r\n")
            for _ in range(98):
                sock.sendall(header)
        except OSError:
            pass
        sock.close()

    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    peak = rss_mib(pid)
    time.sleep(3)
    return (f"header flood (20 x 98 x 64 KiB): RSS {before:.0f} MiB before, {peak:.0f} just after, "
            f"{rss_mib(pid):.0f} 3 s later")


def locked_start(folder: Path) -> str:
    from tests.support.sqlite import small_db

    db = small_db(folder / "locked.db", 3)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    t0 = time.monotonic()
    proc, _ = start(db, folder)
    unlocked = time.monotonic() - t0
    stop(proc)
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        t0 = time.monotonic()
        proc, _ = start(db, folder)
        healthy = time.monotonic() - t0
        t1 = time.monotonic()
        stop(proc)
        return (f"locked table at start: /-/healthy after {healthy:.2f} s (unlocked: {unlocked:.2f} s), "
                f"SIGTERM honoured in {time.monotonic() - t1:.2f} s")
    finally:
        holder.execute("ROLLBACK")
        holder.close()


WEIGH = {
    "ours (asyncio, stdlib)": "import pipeline_exporter.httpserver",
    "aiohttp.web": "import aiohttp.web",
    "waitress": "import waitress",
    "wsgiref (the old server)": "import wsgiref.simple_server, socketserver",
}


def weigh(python: str, name: str, statement: str) -> str:
    # CPU time, not wall time: other processes' load on a shared machine does not count.
    code = ("import time, re; t0 = time.process_time(); " + statement + "; t = time.process_time() - t0; "
            "rss = int(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024; "
            "print(f'{t * 1000:.0f} {rss:.1f}')")
    runs = []
    for _ in range(7):
        out = subprocess.run([python, "-c", code], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
        if out.returncode:
            return f"{name}: not installed in {python}"
        runs.append(tuple(map(float, out.stdout.split())))
    base = subprocess.run([python, "-c", code.replace(statement, "pass")], capture_output=True, text=True)
    rss0 = float(base.stdout.split()[1])
    # The fastest of 7 runs: cold caches and the machine's other load only ever add time.
    return (f"{name}: import {min(r[0] for r in runs):.0f} ms, "
            f"RSS +{statistics.median(r[1] for r in runs) - rss0:.1f} MiB over a bare interpreter")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--sites", type=int, default=1500)
    parser.add_argument("--weigh-python", default=None)
    args = parser.parse_args()
    from pipeline_exporter.packs.method333.demo import build_demo

    print(f"# bench_http {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = folder / "sites.db"
        build_demo(db, sites=args.sites, seed=333, files_dir=folder)
        proc, port = start(db, folder, "--web.read-timeout", "60s")
        try:
            time.sleep(3)  # every query ran once
            print(flood(port))
            print(header_flood(proc.pid, port))
            print(scrapers(port, args.seconds))
        finally:
            stop(proc)
        print(locked_start(folder))
    print("import CPU time and weight (fastest of 7 runs; RSS over a bare interpreter):")
    for name, statement in WEIGH.items():
        python = sys.executable if name.startswith(("ours", "wsgiref")) else (args.weigh_python or sys.executable)
        print(weigh(python, name, statement))


if __name__ == "__main__":
    main()
