#!/usr/bin/python3
"""Scale: N concurrent idle WebSockets through one Switchyard on this machine.

    bench/scale.py [--conns 100000] [--out bench/results] [--json]

One process may hold at most ~19,900 sockets here (the open-file limit is
20,000 and cannot be raised), so everything is spread:

- Switchyard: enough workers that each holds at most ~8,000 tunnels (16,000
  sockets); worker_connections caps each, and a full worker stops accepting
  so the others take the rest;
- backends: sy-backend processes of at most ~17,000 connections each, one
  upstream group over all of them;
- clients: sy-load ws-idle processes of at most ~17,000 connections each,
  each from its own loopback source addresses (127.0.0.2, ...), since one
  source address reaches one destination through ~28,000 ports.

It opens every connection, measures the proxy's total RSS (master and
workers) with all of them open, then sends one message on every connection
and checks every echo. Exit code 0 only if all N opened and echoed.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import proxies as px  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("BUILD", REPO / "build")).resolve()

PER_WORKER = 8000
PER_BACKEND = 17000
PER_CLIENT = 17000


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slab_kib() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Slab:"):
                return int(line.split()[1])
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=100000)
    ap.add_argument("--out", default=None, help="write scale.md and scale.json there")
    ap.add_argument("--timeout", type=float, default=300, help="seconds for the whole run")
    a = ap.parse_args()
    n = a.conns
    deadline = time.monotonic() + a.timeout
    work = Path(tempfile.mkdtemp(prefix="syscale-"))
    (work / "logs").mkdir()
    workers = max(1, math.ceil(n / PER_WORKER))
    nback = max(1, math.ceil(n / PER_BACKEND))
    nclient = max(1, math.ceil(n / PER_CLIENT))
    procs: list[subprocess.Popen] = []
    result = {"conns": n, "workers": workers, "backends": nback, "client_processes": nclient}
    try:
        ports = []
        for _ in range(nback):
            port = free_port()
            b = subprocess.Popen([str(BUILD / "bench" / "sy-backend"), "--port", str(port)],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            procs.append(b)
            if b.stdout.readline().strip() != "ready":
                raise RuntimeError("a backend did not start")
            ports.append(port)
        listen = free_port()
        servers = "\n".join(f"        server 127.0.0.1:{p};" for p in ports)
        (work / "sy.conf").write_text(f"""
worker_processes {workers};
worker_rlimit_nofile 20000;
error_log logs/error.log warn;
pid logs/sy.pid;
events {{ worker_connections {PER_WORKER + 500}; }}
http {{
    access_log off;
    upstream backends {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{listen} backlog=8192;
        location /ws/ {{ proxy_pass http://backends; }}
    }}
}}
""")
        sy = subprocess.Popen([str(BUILD / "switchyard"), "-p", f"{work}/", "-c",
                               str(work / "sy.conf"), "-g", "daemon off;"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=open(work / "stderr", "wb"))
        procs.append(sy)
        px.wait_port(listen)
        t0 = time.monotonic()
        while len(px._pids_of(sy.pid)) < workers + 1 and time.monotonic() < t0 + 10:
            time.sleep(0.05)  # polling the process table: no event to wait on
        base = px.rss_kib(px._pids_of(sy.pid))
        result["rss_kib_before"] = base
        slab0 = slab_kib()

        # clients: each its own source addresses (127.0.0.2 + 3k .. +3k+2)
        t_open = time.monotonic()
        clients = []
        left = n
        for i in range(nclient):
            k = min(PER_CLIENT, left)
            left -= k
            lo, hi = 2 + 3 * i, 4 + 3 * i
            c = subprocess.Popen(
                [str(BUILD / "bench" / "sy-load"), "ws-idle", "--url",
                 f"ws://127.0.0.1:{listen}/ws/idle", "--conns", str(k),
                 "--bind-from", f"127.0.0.{lo}-127.0.0.{hi}", "--inflight", "100",
                 "--hold", str(int(a.timeout)), "--timeout", "120"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append(c)
            clients.append((c, k))
        opened = errors = 0
        for c, k in clients:
            line = c.stdout.readline()  # blocks until that client opened all
            if not line:
                raise RuntimeError(f"a client died: {c.stderr.read()[-2000:]}")
            first = json.loads(line)
            opened += first.get("opened", 0)
            errors += first.get("errors", 0)
        result["open_seconds"] = round(time.monotonic() - t_open, 1)
        result["opened"] = opened
        result["open_errors"] = errors
        pids = px._pids_of(sy.pid)
        rss = px.rss_kib(pids)
        result["rss_kib_open"] = rss
        result["kib_per_conn"] = round((rss - base) / max(opened, 1), 2)
        # Kernel memory (slab) for the 4 sockets of each connection: client,
        # proxy's two, backend's; the whole machine's, so only indicative.
        result["kernel_kib_per_conn_4_sockets"] = round((slab_kib() - slab0) / max(opened, 1), 2)
        result["proxy_processes"] = len(pids)

        # every connection says something and gets it back
        for c, _ in clients:
            c.stdin.write("go\n")
            c.stdin.flush()
        echoed = 0
        for c, _ in clients:
            out, err = c.communicate(timeout=max(10, deadline - time.monotonic()))
            final = json.loads(out.strip().splitlines()[-1])
            echoed += final.get("echoed", 0)
            errors += final.get("errors", 0)
        result["echoed"] = echoed
        result["errors"] = errors
        log = (work / "logs" / "error.log").read_text(errors="replace")
        result["proxy_alerts"] = sum(1 for ln in log.splitlines() if "[alert]" in ln
                                     or "[emerg]" in ln or "[crit]" in ln)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    ok = result.get("opened") == n and result.get("echoed") == n
    result["ok"] = ok
    print(json.dumps(result))
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "scale.json").write_text(json.dumps(result, indent=1) + "\n")
        gb = result.get("rss_kib_open", 0) / (1 << 20)
        (out / "scale.md").write_text(
            f"# Scale: {n:,} idle WebSockets through one Switchyard\n\n"
            f"| | |\n| --- | --- |\n"
            f"| workers | {workers} |\n"
            f"| opened | {result.get('opened', 0):,} in {result.get('open_seconds')} s |\n"
            f"| echoed at the end | {result.get('echoed', 0):,} |\n"
            f"| errors | {result.get('errors', 0)} |\n"
            f"| proxy RSS, all open (master + workers) | {result.get('rss_kib_open', 0):,} KiB "
            f"({gb:.2f} GiB) |\n"
            f"| proxy RSS before | {result.get('rss_kib_before', 0):,} KiB |\n"
            f"| per connection | {result.get('kib_per_conn')} KiB |\n"
            f"| kernel (slab) per connection, its 4 sockets | "
            f"{result.get('kernel_kib_per_conn_4_sockets')} KiB |\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
