"""Scrape bursts while collection runs: every second 50 scrapers ask /metrics at the same moment.

The exporter runs on a big demo database (bench_perf's cached builders) with a writer adding rows
and, by default, every query on a 5 s interval so collection is always under way (``--interval
60s`` is the pack's own schedule). Two kinds of clients, each in a process of its own:

- bursts: one asyncio process holding 50 keep-alive connections; each second it sends the 50
  requests at once and times each until its whole body is read (as Prometheus replicas do, each
  on its own connection);
- wrk (``/usr/bin/wrk -c50 -t2 --latency``): 50 connections back to back, from outside Python, so
  its latency is bounded by the server's throughput; plain and with ``Accept-Encoding: gzip``.

Run: `.venv/bin/python bench/bench_storm.py [--sizes 100000] [--seconds 30] [--interval 5s]
[--clients bursts,bursts-gzip,wrk,wrk-gzip,bursts-healthy] [--roots /tmp/before,.]`. Prints
p50/p99/max and failures per client, the exporter's CPU and how many query-seconds ran per second
of each phase (collection under way). ``bursts-healthy`` times the same client on /-/healthy: the
machine's and the client's own share. ``--roots`` runs other checkouts' exporters one after the
other (e.g. `mkdir /tmp/before && git archive main pipeline_exporter | tar -x -C /tmp/before`).
The figures are in docs/performance.md ("Scrape bursts while collection runs").
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import bench_perf  # noqa: E402

SCRAPERS = 50
WRK = shutil.which("wrk") or "/usr/bin/wrk"


# --------------------------------------------------------------------------- burst client (own process)

async def _scrape(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, int]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
    await reader.readexactly(length)
    return status, length


async def _bursts(port: int, seconds: float, gzip: bool, path: str = "/metrics") -> dict:
    request = (f"GET {path} HTTP/1.1".encode() + b"\r\nHost: 127.0.0.1\r\nUser-Agent: Prometheus/3.0\r\n"
               + (b"Accept-Encoding: gzip\r\n" if gzip else b"") + b"\r\n")
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(SCRAPERS)]
    latencies: list[float] = []
    failures = {"status": 0, "error": 0}
    sizes: set[int] = set()

    async def one(i: int) -> None:
        t0 = time.perf_counter()
        try:
            status, size = await asyncio.wait_for(_scrape(*conns[i], request), 10)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, AttributeError, ValueError):
            failures["error"] += 1
            conns[i] = await asyncio.open_connection("127.0.0.1", port)
            return
        if status == 200:
            latencies.append(time.perf_counter() - t0)
            sizes.add(size)
        else:
            failures["status"] += 1

    deadline = time.monotonic() + seconds
    bursts = 0
    while time.monotonic() < deadline:
        tick = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(SCRAPERS)))
        bursts += 1
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    for _, writer in conns:
        writer.close()
    return {"latencies": latencies, "failures": failures, "bursts": bursts, "bytes": max(sizes, default=0)}


def client_main(port: int, seconds: float, gzip: bool, path: str) -> None:
    print(json.dumps(asyncio.run(_bursts(port, seconds, gzip, path))))


def burst_client(port: int, seconds: float, gzip: bool, path: str = "/metrics") -> dict:
    out = subprocess.run([sys.executable, __file__, "--client", str(port), "--seconds", str(seconds), "--path", path]
                         + (["--gzip"] if gzip else []), capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    ms = sorted(x * 1000 for x in result["latencies"])
    return {"p50": bench_perf.pct(ms, 50), "p99": bench_perf.pct(ms, 99), "max": max(ms, default=0.0),
            "n": len(ms), "failed": sum(result["failures"].values()), "bytes": result["bytes"],
            "rate": None}


# --------------------------------------------------------------------------- wrk (outside Python)

def _wrk_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(port: int, seconds: float, gzip: bool) -> dict:
    command = [WRK, "-c50", "-t2", f"-d{int(seconds)}s", "--latency", f"http://127.0.0.1:{port}/metrics"]
    if gzip:
        command[1:1] = ["-H", "Accept-Encoding: gzip"]
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    percentile = {p: _wrk_ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", text, re.M)}
    if "99" not in percentile:
        raise SystemExit(f"wrk said:\n{text}")
    latency = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", text)
    done = re.search(r"(\d+) requests in", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    failed = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, errors.groups())) if errors else 0)
    detail = " ".join(filter(None, [non2xx and f"non-2xx {non2xx.group(1)}", errors and errors.group(0)]))
    return {"p50": percentile["50"], "p99": percentile["99"], "max": _wrk_ms(latency.group(1)),
            "n": int(done.group(1)), "failed": failed, "detail": detail, "bytes": None,
            "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))}


# --------------------------------------------------------------------------- the exporter under test

def start_exporter(db: Path, folder: Path, interval: str, root: Path = REPO) -> tuple[subprocess.Popen, int]:
    config = folder / "storm.yml"
    config.write_text(f"defaults:\n  interval: {interval}\n" if interval else "{}\n")
    port = bench_perf.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline_exporter", "--config.file", str(config), "--database-url", f"sqlite:///{db}",
         "--web.listen-address", f"127.0.0.1:{port}", "--coverage-file", str(folder / "none.json"),
         "--e2e-report", str(folder / "none.xml"), "--log.level", "error"],
        cwd=root, start_new_session=True, env={**os.environ, "PYTHONPATH": str(root)})
    if not bench_perf.wait_for(lambda: bench_perf.get(port, "/-/ready", 2.0)[0] == 200, 900):
        os.killpg(proc.pid, signal.SIGKILL)
        raise SystemExit("the exporter never became ready")
    return proc, port


def query_total(port: int) -> float:
    """Seconds every query has run so far (retried: a 503 page has no figures)."""
    for _ in range(50):
        seconds = bench_perf.query_seconds(port)
        if seconds:
            return sum(seconds.values())
        time.sleep(0.2)
    return float("nan")


def phase(name: str, port: int, pid: int, run) -> dict:
    """Run one client; add the exporter's CPU and the seconds its queries ran meanwhile."""
    proc = psutil.Process(pid)
    cpu0, q0, t0 = sum(proc.cpu_times()[:2]), query_total(port), time.monotonic()
    result = run()
    wall = time.monotonic() - t0
    result["cpu"] = (sum(proc.cpu_times()[:2]) - cpu0) / wall
    result["collecting"] = (query_total(port) - q0) / wall
    result["name"] = name
    return result


def line(r: dict) -> str:
    rate = f", {r['rate']:.0f} req/s" if r["rate"] else ""
    size = f", page {r['bytes'] / 1024:.0f} KiB" if r["bytes"] else ""
    detail = f" ({r['detail']})" if r.get("detail") else ""
    return (f"  {r['name']:<22} p50 {r['p50']:7.1f} ms  p99 {r['p99']:7.1f} ms  max {r['max']:7.1f} ms  "
            f"{r['n']:6d} scrapes, {r['failed']} failed{detail}{rate}{size}; exporter CPU {r['cpu'] * 100:.0f}%, "
            f"query seconds per second {r['collecting']:.2f}")


CLIENTS = {
    "bursts": lambda port, seconds: burst_client(port, seconds, False),
    "bursts-gzip": lambda port, seconds: burst_client(port, seconds, True),
    # the same client on a tiny page answered by the pool: the machine's own latency
    "bursts-healthy": lambda port, seconds: burst_client(port, seconds, False, "/-/healthy"),
    "wrk": lambda port, seconds: wrk(port, seconds, False),
    "wrk-gzip": lambda port, seconds: wrk(port, seconds, True),
}


def run_size(sites: int, seconds: float, interval: str, indexes: str, clients: list[str], root: Path) -> list[dict]:
    db = bench_perf.demo_db(sites, indexes)
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_exporter(db, Path(tmp), interval, root)
        results = []
        try:
            total = seconds * len(clients) + 30
            wproc, queue = bench_perf.start_writer(db, total)
            for client in clients:
                results.append(phase(client, port, proc.pid, functools.partial(CLIENTS[client], port, seconds)))
                print(line(results[-1]), flush=True)
            wproc.terminate()
            wproc.join()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", default="5s", help="every query's interval ('' for the pack's own)")
    parser.add_argument("--indexes", choices=("plausible", "full"), default="plausible")
    parser.add_argument("--clients", default="bursts,bursts-gzip,wrk,wrk-gzip")
    parser.add_argument("--roots", default=str(REPO),
                        help="comma-separated checkouts whose pipeline_exporter to run, one after the other "
                             "(e.g. an unpacked `git archive main pipeline_exporter` beside this one)")
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--gzip", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--path", default="/metrics", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        client_main(args.client, args.seconds, args.gzip, args.path)
        return 0
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    print(f"# bench_storm {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit {head.stdout.strip()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; {SCRAPERS} scrapers, {args.seconds:g} s each, "
          f"query interval {args.interval or 'the pack own'}, {args.indexes} indexes")
    for sites in (int(s) for s in args.sizes.split(",")):
        for root in args.roots.split(","):
            print(f"{sites:,} sites, {root}:", flush=True)
            run_size(sites, args.seconds, args.interval, args.indexes, args.clients.split(","), Path(root))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
