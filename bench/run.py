#!/usr/bin/python3
"""Side-by-side benchmark: Switchyard, nginx, HAProxy, Caddy, h2o and a floor.

    bench/run.py [--quick] [--rounds N] [--duration S] [--out DIR]
                 [--baseline BINARY] [--metrics] [--only KEYS] [--proxies NAMES]

All proxies run at once on their own ports in front of one C backend
(bench/tools/sy-backend), each with one worker. For every round, every
scenario is run against every proxy in turn (the order rotates each round),
so drift on this shared machine hits all of them alike. Per run it records:

- throughput (ops/s) and latency (p50/p99) as the load tool reports them;
- proxy CPU per operation: utime+stime of all the proxy's processes (and
  threads) from /proc, before and after the run, divided by the operations;
- proxy syscalls per operation: `perf stat -e raw_syscalls:sys_enter`
  attached to the proxy's processes for the run;
- for idle-connection scenarios, the growth of the proxy's RSS per
  connection (each such run starts from a freshly started proxy).

"floor" is bench/tools/sy-floor: a featureless epoll TCP relay (no HTTP, no
TLS, no logs), the lower bound of what a proxy can cost on this machine.

A scenario runs only on the proxies that have what it needs (TLS, HTTP/2,
RFC 8441 WebSockets over HTTP/2; the last two are probed on the running
proxy), so a peer without a feature is a "n/a" cell, not a failure.

--baseline BINARY adds a second Switchyard, "switchyard-before", run from
BINARY with the same configuration in the same rounds: results.md then
has a before/after table (new ÷ before per scenario) for a refactor.

--metrics adds "switchyard-metrics": this build with a `metrics` location
(Prometheus) in each server, the traffic on the other locations; results.md
then has a "Metrics overhead" table against the --baseline binary when one
is given (a build from before the metrics), else against plain "switchyard".

Results: DIR/results.md (medians with min–max over the rounds, and the ratio
of Switchyard to each peer), DIR/results.json, DIR/cpu-per-op.png.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import proxies as px  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("BUILD", REPO / "build")).resolve()


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- load tools

def parse_wrk_time(v: str) -> float:
    """wrk's '1.23ms' / '456.00us' / '1.02s' in microseconds."""
    m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
    if not m:
        return float("nan")
    x = float(m.group(1))
    return x * {"us": 1, "ms": 1e3, "s": 1e6, "m": 60e6}[m.group(2)]


def run_wrk(url: str, conns: int, seconds: float, headers=()) -> dict:
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "10s"]
    for h in headers:
        argv += ["-H", h]
    r = subprocess.run(argv + [url], capture_output=True, text=True, timeout=seconds + 60)
    out = r.stdout
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if r.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed: {out}\n{r.stderr}")
    dur = float(m.group(2)) * {"s": 1, "ms": 1e-3, "m": 60}.get(m.group(3), 1)
    res = {"ops": int(m.group(1)), "seconds": dur}
    for q, key in (("50%", "p50_us"), ("99%", "p99_us")):
        mm = re.search(rf"^\s+{q}\s+(\S+)", out, re.M)
        res[key] = parse_wrk_time(mm.group(1)) if mm else float("nan")
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["errors"] = (sum(int(x) for x in errs.groups()) if errs else 0) + \
        (int(non2xx.group(1)) if non2xx else 0)
    return res


def run_h2load(url: str, conns: int, streams: int, seconds: float) -> dict:
    """h2load over TLS (ALPN h2), timed; it gives no percentiles, only the
    mean time per request."""
    argv = ["h2load", "-t1", f"-c{conns}", f"-m{streams}", "-D", str(max(1, round(seconds))), url]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    out = r.stdout
    fin = re.search(r"finished in ([\d.]+)(\w+),", out)
    req = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, "
                    r"(\d+) errored, (\d+) timeout", out)
    codes = re.search(r"status codes: (\d+) 2xx", out)
    if r.returncode != 0 or not fin or not req or not codes:
        raise RuntimeError(f"h2load failed: {out[-2000:]}\n{r.stderr[-2000:]}")
    dur = float(fin.group(1)) * {"s": 1, "ms": 1e-3, "m": 60}.get(fin.group(2), 1)
    ok = int(codes.group(1))
    res = {"ops": ok, "seconds": dur,
           "errors": sum(int(x) for x in req.groups()[1:]) + int(req.group(1)) - ok}
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out)
    res["mean_us"] = parse_wrk_time(mean.group(1)) if mean else float("nan")
    if res["ops"] == 0:
        raise RuntimeError(f"h2load: no successful request: {out[-2000:]}")
    return res


def run_h2(mode: str, url: str, seconds: float, *args) -> dict:
    """bench/tools/sy-h2 (RFC 8441 WebSocket echo over HTTP/2)."""
    argv = [str(BUILD / "bench" / "sy-h2"), mode, "--url", url, "--duration", str(seconds),
            *map(str, args)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    try:
        res = json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise RuntimeError(f"sy-h2 {mode} failed: {r.stdout}\n{r.stderr}")
    if not res.get("ops"):
        raise RuntimeError(f"sy-h2 {mode}: no echo: {r.stdout}\n{r.stderr}")
    return res


def run_load(mode: str, url: str, seconds: float, *args) -> dict:
    argv = [str(BUILD / "bench" / "sy-load"), mode, "--url", url, "--duration", str(seconds),
            "--allow-errors", *map(str, args)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    try:
        res = json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise RuntimeError(f"sy-load {mode} failed: {r.stdout}\n{r.stderr}")
    return res


# ---------------------------------------------------------------- measuring

class SyscallCounter:
    """perf stat attached to the proxy's processes for one run."""

    def __init__(self, pids: list[int], out: Path):
        self.out = out
        self.p = None
        try:
            self.p = subprocess.Popen(
                ["perf", "stat", "-e", "raw_syscalls:sys_enter", "-x", ",", "-o", str(out),
                 "-p", ",".join(map(str, pids))],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.2)  # perf attaches asynchronously; nothing to wait on
        except FileNotFoundError:
            self.p = None

    def stop(self) -> float:
        if not self.p:
            return float("nan")
        self.p.send_signal(signal.SIGINT)
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return float("nan")
        for line in self.out.read_text().splitlines():
            parts = line.split(",")
            if len(parts) > 2 and "raw_syscalls:sys_enter" in parts[2]:
                try:
                    return float(parts[0])
                except ValueError:
                    return float("nan")
        return float("nan")


def measured(proxy: px.Proxy, work: Path, fn) -> dict:
    pids = proxy.pids()
    sc = SyscallCounter(pids, work / f"perf-{proxy.name}.txt")
    c0 = px.cpu_seconds(pids)
    res = fn()
    c1 = px.cpu_seconds(pids)
    calls = sc.stop()
    ops = max(res.get("ops", 0), 1)
    res["cpu_s"] = c1 - c0
    res["cpu_us_per_op"] = (c1 - c0) * 1e6 / ops
    res["syscalls_per_op"] = calls / ops
    res["ops_per_s"] = res.get("ops", 0) / max(res.get("seconds", 1e-9), 1e-9)
    return res


# ---------------------------------------------------------------- scenarios

class Scenario:
    """One row group of the table. `run(proxy)` returns a dict of metrics."""
    needs: frozenset = frozenset()  # proxy features: "tls", "h2", "ws_h2", "gzip"
    fresh = False  # restart the proxy first (idle-memory scenarios)

    def __init__(self, key, title, metrics):
        self.key, self.title, self.metrics = key, title, metrics


IDLE_SETTLE_S = 5.5


class IdleRun:
    """An idle-connection run: opened by the scenario, measured by finish()
    once the connections have been idle IDLE_SETTLE_S (the caller waits:
    --quick waits once for all proxies, their RSS being independent)."""

    def __init__(self, p, url: str, conns: int, tool: str, mode: str):
        self.p = p
        self.before = px.rss_kib(p.pids())
        self.proc = subprocess.Popen([str(BUILD / "bench" / tool), mode, "--url", url,
                                      "--conns", str(conns), "--hold", "120"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        try:
            self.first = json.loads(line)
        except json.JSONDecodeError:
            self.abort()
            raise RuntimeError(f"{tool} {mode}: no report: {line!r}")

    def abort(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def finish(self) -> dict:
        # Idle connections are long-lived: measured once they have been idle a
        # moment (Switchyard returns freed burst memory every 5 s), the same
        # wait for every proxy.
        after = px.rss_kib(self.p.pids())
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        out, _ = self.proc.communicate(timeout=120)
        final = json.loads(out.strip().splitlines()[-1])
        opened = self.first.get("opened", 0)
        return {"opened": opened, "echoed": final.get("echoed", 0),
                "errors": final.get("errors", 0),
                "kib_per_conn": (after - self.before) / max(opened, 1), "rss_kib": after}


QUICK = False  # --quick: a shorter warm-up (it is repeated before every idle run)


def warm_up(p):
    """The same warm-up for every proxy: HTTP and WebSocket paths touched."""
    if QUICK and shutil.which("h2load"):  # wrk cannot run under 1 s; h2load counts requests
        subprocess.run(["h2load", "--h1", "-t1", "-c20", "-n4000", f"http://127.0.0.1:{p.port}/"],
                       capture_output=True, timeout=60)
        run_load("ws-echo", f"ws://127.0.0.1:{p.port}/ws/echo", 0.2, "--conns", 20)
        return
    run_wrk(f"http://127.0.0.1:{p.port}/", 20, 1)
    run_load("ws-echo", f"ws://127.0.0.1:{p.port}/ws/echo", 0.5, "--conns", 20)


def scenarios(d: float, idle_conns: int):
    S = []

    def add(key, title, metrics, tls=False, fresh=False, needs=()):
        def deco(fn):
            s = Scenario(key, title, metrics)
            s.needs = frozenset(needs) | ({"tls"} if tls else set())
            s.fresh, s.run = fresh, fn
            S.append(s)
            return fn
        return deco

    @add("http_ka", "HTTP/1.1 keep-alive GET, 100 B, 50 conns",
         ["cpu_us_per_op", "syscalls_per_op", "ops_per_s", "p50_us", "p99_us"])
    def _(p, work):
        return measured(p, work, lambda: run_wrk(f"http://127.0.0.1:{p.port}/", 50, d))

    @add("https_ka", "HTTPS keep-alive GET, 100 B, 50 conns",
         ["cpu_us_per_op", "syscalls_per_op", "ops_per_s", "p50_us", "p99_us"], tls=True)
    def _(p, work):
        return measured(p, work, lambda: run_wrk(f"https://127.0.0.1:{p.tls_port}/", 50, d))

    @add("http_close", "HTTP new connection per request, 50 conns",
         ["cpu_us_per_op", "syscalls_per_op", "ops_per_s", "p99_us"])
    def _(p, work):
        return measured(p, work, lambda: run_wrk(f"http://127.0.0.1:{p.port}/", 50, d,
                                                 headers=("Connection: close",)))

    @add("http_1m", "HTTP 1 MiB responses, 8 conns",
         ["cpu_s_per_gb", "gb_per_s", "syscalls_per_op"])
    def _(p, work):
        r = measured(p, work, lambda: run_wrk(f"http://127.0.0.1:{p.port}/1m", 8, d))
        gb = r["ops"] * (1 << 20) / 1e9
        r["cpu_s_per_gb"] = r["cpu_s"] / gb if gb else float("nan")
        r["gb_per_s"] = gb / r["seconds"]
        return r

    # Compression: the same proxied 32 KiB text/plain, gzip level 1 (nginx's
    # default) in the same nginx file, so the CPU per response is the
    # compressor's plus the proxying; only proxies configured for it.
    @add("http_gzip", "HTTP/1.1 gzip of a proxied 32 KiB text, level 1, 20 conns",
         ["cpu_us_per_op", "syscalls_per_op", "ops_per_s", "p99_us"], needs={"gzip"})
    def _(p, work):
        return measured(p, work, lambda: run_wrk(f"http://127.0.0.1:{p.port}/gz", 20, d,
                                                 headers=("Accept-Encoding: gzip",)))

    # The proxy cache: every request a HIT from the same proxy_cache_path
    # configuration (the first one fills it), 100 B and 1 MiB responses.
    @add("cache_hit", "HTTP/1.1 cache HIT, 100 B, 50 conns",
         ["cpu_us_per_op", "syscalls_per_op", "ops_per_s", "p50_us", "p99_us"], needs={"cache"})
    def _(p, work):
        run_wrk(f"http://127.0.0.1:{p.port}/cached/", 1, 0.2)  # fill
        return measured(p, work, lambda: run_wrk(f"http://127.0.0.1:{p.port}/cached/", 50, d))

    @add("cache_hit_1m", "HTTP/1.1 cache HIT, 1 MiB, 8 conns",
         ["cpu_s_per_gb", "gb_per_s", "syscalls_per_op"], needs={"cache"})
    def _(p, work):
        run_wrk(f"http://127.0.0.1:{p.port}/cached/1m", 1, 0.2)  # fill
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{p.port}/cached/1m") as resp:
            got = len(resp.read())
        if got != 1 << 20:
            raise RuntimeError(f"/cached/1m answered {got} bytes, not 1 MiB")
        r = measured(p, work, lambda: run_wrk(f"http://127.0.0.1:{p.port}/cached/1m", 8, d))
        gb = r["ops"] * (1 << 20) / 1e9
        r["cpu_s_per_gb"] = r["cpu_s"] / gb if gb else float("nan")
        r["gb_per_s"] = gb / r["seconds"]
        return r

    @add("ws_handshake", "WebSocket handshake + close, 20 conns",
         ["cpu_us_per_op", "syscalls_per_op", "ops_per_s", "p99_us"])
    def _(p, work):
        return measured(p, work, lambda: run_load("ws-handshake", f"ws://127.0.0.1:{p.port}/ws/hs",
                                                  d, "--conns", 20))

    @add("ws_echo", "WebSocket echo, 100 conns, 64 B",
         ["cpu_us_per_op", "syscalls_per_op", "ops_per_s", "p50_us", "p99_us"])
    def _(p, work):
        return measured(p, work, lambda: run_load("ws-echo", f"ws://127.0.0.1:{p.port}/ws/echo",
                                                  d, "--conns", 100, "--size", 64))

    @add("ws_bulk", "WebSocket bulk upload, 64 KiB frames, 1 conn",
         ["cpu_s_per_gb", "gb_per_s", "syscalls_per_op"])
    def _(p, work):
        r = measured(p, work, lambda: run_load("ws-bulk", f"ws://127.0.0.1:{p.port}/ws/sink",
                                               d, "--conns", 1, "--size", 65536))
        gb = r.get("bytes", 0) / 1e9
        r["cpu_s_per_gb"] = r["cpu_s"] / gb if gb else float("nan")
        r["gb_per_s"] = gb / r["seconds"] if r.get("seconds") else float("nan")
        # per 64 KiB frame
        r["syscalls_per_op"] = r["syscalls_per_op"]
        return r

    @add("ws_paced", "WebSocket echo paced at 10k msg/s, 100 conns",
         ["p50_us", "p99_us", "cpu_us_per_op"])
    def _(p, work):
        return measured(p, work, lambda: run_load("ws-paced", f"ws://127.0.0.1:{p.port}/ws/echo",
                                                  d, "--conns", 100, "--rate", 10000, "--size", 64))

    def idle(p, url, tool="sy-load", mode="ws-idle"):
        return IdleRun(p, url, idle_conns, tool, mode)

    @add("ws_idle", f"idle ws:// connections ({idle_conns})", ["kib_per_conn", "rss_kib"],
         fresh=True)
    def _(p, work):
        return idle(p, f"ws://127.0.0.1:{p.port}/ws/echo")

    @add("wss_idle", f"idle wss:// connections, TLS at the proxy ({idle_conns})",
         ["kib_per_conn", "rss_kib"], tls=True, fresh=True)
    def _(p, work):
        return idle(p, f"wss://127.0.0.1:{p.tls_port}/ws/echo")

    # HTTP/2: on each proxy's TLS listener that offers h2 by ALPN (h2_port)
    @add("h2_get_tls", "HTTP/2 GET over TLS, 100 B, 10 conns × 10 streams",
         ["cpu_us_per_op", "syscalls_per_op", "ops_per_s", "mean_us"], needs={"h2"})
    def _(p, work):
        return measured(p, work, lambda: run_h2load(f"https://127.0.0.1:{p.h2_port}/", 10, 10, d))

    @add("h2_idle", f"idle HTTP/2 connections over TLS, SETTINGS exchanged ({idle_conns})",
         ["kib_per_conn", "rss_kib"], needs={"h2"}, fresh=True)
    def _(p, work):
        return idle(p, f"https://127.0.0.1:{p.h2_port}/", tool="sy-h2", mode="idle")

    @add("ws_h2_echo", "WebSocket over HTTP/2 (RFC 8441) echo, 10 conns × 10 streams, 64 B",
         ["cpu_us_per_op", "syscalls_per_op", "ops_per_s", "p50_us", "p99_us"], needs={"ws_h2"})
    def _(p, work):
        return measured(p, work, lambda: run_h2("ws-echo", f"https://127.0.0.1:{p.h2_port}/ws/echo",
                                                d, "--conns", 10, "--streams", 10, "--size", 64))

    return S


METRIC_TITLES = {
    "cpu_us_per_op": ("proxy CPU per op", "µs", "low"),
    "syscalls_per_op": ("proxy syscalls per op", "", "low"),
    "ops_per_s": ("throughput", "ops/s", "high"),
    "p50_us": ("p50 latency", "µs", "low"),
    "p99_us": ("p99 latency", "µs", "low"),
    "cpu_s_per_gb": ("proxy CPU per GB", "s", "low"),
    "gb_per_s": ("throughput", "GB/s", "high"),
    "kib_per_conn": ("proxy RSS per connection", "KiB", "low"),
    "rss_kib": ("proxy RSS with them open", "KiB", "low"),
    "mean_us": ("mean latency", "µs", "low"),
}

# Targets (issue: "Benchmarks ... performance at the physical floor"): a
# factor of the floor's figure, or an absolute bound.
TARGETS = {
    ("http_ka", "cpu_us_per_op"): ("floor", 1.10),
    ("ws_handshake", "cpu_us_per_op"): ("floor", 1.10),
    ("ws_echo", "cpu_us_per_op"): ("floor", 1.05),
    ("ws_bulk", "cpu_s_per_gb"): ("floor", 1.10),
    ("ws_bulk", "gb_per_s"): ("min", 1.5),
    ("ws_idle", "kib_per_conn"): ("max", 1.0),
    ("wss_idle", "kib_per_conn"): ("max", 8.0),
    ("ws_paced", "p99_us"): ("max", 1000.0),
    # the proxy cache (issue 15): CPU per hit at most nginx's, same configuration
    ("cache_hit", "cpu_us_per_op"): ("nginx", 1.0),
    ("cache_hit_1m", "cpu_s_per_gb"): ("nginx", 1.0),
}


# ---------------------------------------------------------------- report

def fmt(v: float) -> str:
    if v != v:  # nan
        return "—"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def summarize(values: list[float]):
    vals = [v for v in values if v == v]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals)


def report(results, names, scen, meta, out: Path):
    lines = [f"# Benchmark results — {meta['date']}", "",
             f"Machine: {meta['machine']}. Rounds: {meta['rounds']}, {meta['duration']} s per run. "
             "Medians, with min–max over the rounds; one worker per proxy; proxy CPU is "
             "utime+stime of all its processes; syscalls from `perf stat`.", "",
             "Versions: " + ", ".join(f"{n} {meta['versions'].get(n, '')}" for n in names), ""]
    peers = [n for n in names if n not in ("switchyard", BEFORE)]
    feats = meta.get("features", {})

    def lacks(n, s):  # the proxy cannot run the scenario: "n/a", not a failure
        return n in feats and not s.needs <= set(feats[n])

    head = "| scenario | metric | " + " | ".join(names) + " | " + \
        " | ".join(f"sy ÷ {n}" for n in peers) + " | target |"
    lines += [head, "|" + " --- |" * (3 + len(names) + len(peers))]
    verdicts = []
    for s in scen:
        for m in s.metrics:
            title, unit, better = METRIC_TITLES[m]
            cells, med = [], {}
            for n in names:
                st = summarize([r.get(m, float("nan")) for r in results[s.key].get(n, [])])
                if st is None:
                    cells.append("n/a" if lacks(n, s) else "—")
                    continue
                med[n] = st[0]
                rng = f" ({fmt(st[1])}–{fmt(st[2])})" if len(results[s.key][n]) > 1 else ""
                cells.append(f"{fmt(st[0])}{rng}")
            ratios = []
            for n in peers:
                if "switchyard" in med and n in med and med[n]:
                    ratios.append(f"{med['switchyard'] / med[n]:.2f}")
                else:
                    ratios.append("—")
            target = ""
            t = TARGETS.get((s.key, m))
            if t and "switchyard" in med:
                kind, x = t
                sy = med["switchyard"]
                if kind == "floor" and med.get("floor"):
                    ok = sy <= x * med["floor"]
                    target = f"≤ {x} × floor: {'met' if ok else 'MISSED'} ({sy / med['floor']:.2f}×)"
                elif kind in names and kind not in ("switchyard", "floor") and med.get(kind):
                    ok = sy <= x * med[kind]  # a factor of a peer's figure
                    target = f"≤ {x} × {kind}: {'met' if ok else 'MISSED'} ({sy / med[kind]:.2f}×)"
                elif kind == "max":
                    ok = sy <= x
                    target = f"≤ {fmt(x)}: {'met' if ok else 'MISSED'}"
                elif kind == "min":
                    ok = sy >= x
                    target = f"≥ {fmt(x)}: {'met' if ok else 'MISSED'}"
                else:
                    ok = None
                if ok is not None:
                    verdicts.append((s.key, m, ok))
            label = f"{title}" + (f" ({unit})" if unit else "")
            lines.append(f"| {s.title} | {label} | " + " | ".join(cells) + " | " +
                         " | ".join(ratios) + f" | {target} |")
    lacking = "; ".join(f"{n}: {', '.join(sorted(set(NEEDS_ALL) - set(f)))}"
                        for n, f in feats.items() if set(NEEDS_ALL) - set(f))
    lines += ["", "Ratios below 1 mean Switchyard needs less (CPU, syscalls, memory, "
              "latency) or, for throughput, moves less." +
              (f" n/a: the proxy lacks what the scenario needs ({lacking})." if lacking else ""),
              ""]
    if BEFORE in names and "switchyard" in names:
        lines += before_after(results, scen)
    if METRICS in names:
        base = BEFORE if BEFORE in names else "switchyard"
        lines += before_after(
            results, scen, base, METRICS, "Metrics overhead",
            f"`{METRICS}` is this build with a `metrics` location in each server (the "
            f"traffic goes to the others), `{base}` " +
            ("the --baseline binary (before the metrics existed)" if base == BEFORE else
             "this build without the location (it counts all the same)") +
            ", run in the same rounds. Above 1 is a cost of the metrics for CPU, syscalls, "
            "memory and latency; differences within the min–max ranges are noise.")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    chart(results, names, scen, out)
    return verdicts


BEFORE = "switchyard-before"  # the --baseline binary
METRICS = "switchyard-metrics"  # --metrics: this build with a `metrics` location
NEEDS_ALL = ("tls", "h2", "ws_h2")


def before_after(results, scen, before: str = BEFORE, after: str = "switchyard",
                 title: str = "Before/after", intro: str = "") -> list[str]:
    """The refactor table: Switchyard now against --baseline, same rounds
    (or any two of the proxies run, `after` against `before`)."""
    lines = [f"## {title}", "",
             intro or
             f"`switchyard` is this build, `{BEFORE}` the --baseline binary, run in the same "
             "rounds with the same configuration. after ÷ before above 1 is a regression for "
             "costs (CPU, syscalls, memory, latency), an improvement for throughput. With a "
             "few rounds on a shared machine, differences within the min–max ranges are noise.",
             "", f"| scenario | metric | {before} | {after} | after ÷ before |",
             "| --- | --- | --- | --- | --- |"]
    for s in scen:
        for m in s.metrics:
            title, unit, _ = METRIC_TITLES[m]
            cells = []
            for n in (before, after):
                runs = results[s.key].get(n, [])
                st = summarize([r.get(m, float("nan")) for r in runs])
                cells.append(st)
            if not cells[0] or not cells[1]:
                continue
            txt = [f"{fmt(st[0])}" + (f" ({fmt(st[1])}–{fmt(st[2])})" if st[1] != st[2] else "")
                   for st in cells]
            ratio = f"{cells[1][0] / cells[0][0]:.2f}" if cells[0][0] else "—"
            label = f"{title}" + (f" ({unit})" if unit else "")
            lines.append(f"| {s.key} | {label} | {txt[0]} | {txt[1]} | {ratio} |")
    return lines + [""]


def chart(results, names, scen, out: Path):
    """CPU per operation of each proxy relative to nginx, per scenario."""
    rows = []
    for s in scen:
        m = "cpu_us_per_op" if "cpu_us_per_op" in s.metrics else \
            "cpu_s_per_gb" if "cpu_s_per_gb" in s.metrics else "kib_per_conn"
        med = {}
        for n in names:
            st = summarize([r.get(m, float("nan")) for r in results[s.key].get(n, [])])
            if st:
                med[n] = st[0]
        if "nginx" not in med or not med["nginx"]:
            continue
        # a ratio <= 0 (a garbage-collected heap shrinking under the test)
        # cannot be drawn on the log scale: left out
        vals = [med.get(n, float("nan")) / med["nginx"] for n in names]
        rows.append((s.key, [v if v > 0 else float("nan") for v in vals]))
    if not rows:
        return
    dat = out / "cpu-per-op.dat"
    dat.write_text("scenario " + " ".join(names) + "\n" + "\n".join(
        s + " " + " ".join("NaN" if v != v else f"{v:.4f}" for v in vals) for s, vals in rows) + "\n")
    plot = f"""
set terminal pngcairo size 1200,600 font ",10" noenhanced
set output '{out / 'cpu-per-op.png'}'
set title "Proxy cost per operation relative to nginx = 1 (CPU; RSS per connection for the idle rows), log scale, lower is better"
set logscale y
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key outside right top
set xtics rotate by -30
set ylabel "relative to nginx"
set grid ytics
plot for [i=2:{len(names) + 1}] '{dat}' using i:xtic(1) title columnhead(i)
"""
    subprocess.run(["gnuplot"], input=plot, text=True, capture_output=True, timeout=60)


# ---------------------------------------------------------------- main

def make_cert(work: Path):
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


class Backend:
    def __init__(self, work: Path):
        self.port = free_port()
        self.p = subprocess.Popen([str(BUILD / "bench" / "sy-backend"), "--port", str(self.port)],
                                  stdout=subprocess.PIPE, stderr=open(work / "backend.log", "wb"),
                                  text=True)
        if self.p.stdout.readline().strip() != "ready":
            raise RuntimeError("the backend did not start")

    def stop(self):
        self.p.terminate()
        self.p.wait(10)


def record(results, s, n, r, rnd, rounds, t0):
    results[s.key][n].append(r)
    show = ", ".join(f"{m}={fmt(r.get(m, float('nan')))}" for m in s.metrics)
    print(f"[round {rnd + 1}/{rounds}] {s.key:13} {n:10} {show} "
          f"({time.monotonic() - t0:.1f}s)", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a 2-minute smoke run")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--duration", type=float, default=None, help="seconds per run")
    ap.add_argument("--idle", type=int, default=None, help="idle connections per idle run")
    ap.add_argument("--only", default="", help="comma-separated scenario keys")
    ap.add_argument("--proxies", default="switchyard,nginx,haproxy,caddy,h2o,floor")
    ap.add_argument("--baseline", metavar="BINARY",
                    help=f"also run this Switchyard binary as '{BEFORE}' (before/after table)")
    ap.add_argument("--metrics", action="store_true",
                    help=f"also run this Switchyard as '{METRICS}', with a `metrics` location "
                         "(the metrics overhead table)")
    ap.add_argument("--report", metavar="RESULTS_JSON",
                    help="only redo the table and chart from a results.json")
    ap.add_argument("--out", default=None,
                    help="default bench/results (published), build/bench-quick with --quick")
    a = ap.parse_args()
    if a.report:
        saved = json.loads(Path(a.report).read_text())
        res, meta = saved["results"], saved["meta"]
        names = list(next(iter(res.values())).keys())
        idle = meta.get("idle") or max((r.get("opened", 0) for r in
                                        res.get("ws_idle", {}).get("switchyard", [])), default=0)
        scen = [s for s in scenarios(meta["duration"], idle) if s.key in res]
        out = Path(a.out or Path(a.report).parent)
        out.mkdir(parents=True, exist_ok=True)
        report(res, names, scen, meta, out)
        print((out / "results.md").read_text())
        return 0
    global QUICK
    QUICK = a.quick
    rounds = a.rounds or (1 if a.quick else 3)
    dur = a.duration or (1.0 if a.quick else 5.0)
    idle_n = a.idle or (500 if a.quick else 5000)
    out = Path(a.out or (BUILD / "bench-quick" if a.quick else REPO / "bench" / "results"))
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="sybench-"))
    cert, key = make_cert(work)
    backend = Backend(work)
    kinds = {"switchyard": lambda *x, **k: px.Switchyard(*x, binary=str(BUILD / "switchyard"), **k),
             BEFORE: lambda *x, **k: px.Switchyard(*x, binary=a.baseline, name=BEFORE, **k),
             METRICS: lambda *x, **k: px.SwitchyardMetrics(
                 *x, binary=str(BUILD / "switchyard"), **k),
             "nginx": px.Nginx, "haproxy": px.Haproxy, "caddy": px.Caddy, "h2o": px.H2o,
             "floor": lambda *x, **k: px.Floor(*x, binary=str(BUILD / "bench" / "sy-floor"), **k)}
    wanted = a.proxies.split(",")
    if a.baseline:
        if not os.access(a.baseline, os.X_OK):
            ap.error(f"--baseline {a.baseline}: not an executable")
        wanted.insert(wanted.index("switchyard") + 1 if "switchyard" in wanted else 0, BEFORE)
    if a.metrics:
        wanted.insert(wanted.index("switchyard") + 1 if "switchyard" in wanted else 0, METRICS)
    procs = {}
    for n in wanted:
        p = kinds[n](work, port=free_port(), tls_port=free_port(), h2_port=free_port(),
                     backend=backend.port, cert=cert, key=key)
        if not p.available():
            print(f"bench: {n} not installed, skipped", file=sys.stderr)
            continue
        procs[n] = p
    names = list(procs)
    scen = [s for s in scenarios(dur, idle_n) if not a.only or s.key in a.only.split(",")]
    results = {s.key: {n: [] for n in names} for s in scen}
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "rounds": rounds, "duration": dur,
            "idle": idle_n,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.release()}",
            "versions": {}, "features": {}}
    try:
        for n, p in list(procs.items()):
            try:
                p.start()
            except RuntimeError as e:
                if n == "switchyard":
                    raise
                print(f"bench: {n} did not start, skipped: {e}", file=sys.stderr)
                del procs[n]
                continue
            meta["versions"][n] = p.version()
            p.probe_features()
            meta["features"][n] = sorted(p.features)
            warm_up(p)
        names = list(procs)
        results = {s.key: {n: [] for n in names} for s in scen}
        for rnd in range(rounds):
            for s in scen:
                order = names[rnd % len(names):] + names[:rnd % len(names)]
                idle_runs = []  # --quick: (name, IdleRun, t0), measured together
                for n in order:
                    p = procs[n]
                    if not s.needs <= p.features:
                        continue
                    t0 = time.monotonic()
                    try:
                        if s.fresh:
                            p.stop()
                            p.start()
                            warm_up(p)
                        r = s.run(p, work)
                        if isinstance(r, IdleRun):
                            if QUICK:
                                idle_runs.append((n, r, t0))
                                continue
                            time.sleep(IDLE_SETTLE_S)
                            r = r.finish()
                    except Exception as e:  # a failing peer must not stop the others
                        print(f"bench: {s.key} on {n} failed: {e}", file=sys.stderr)
                        continue
                    record(results, s, n, r, rnd, rounds, t0)
                if idle_runs:
                    time.sleep(IDLE_SETTLE_S)
                for n, run, t0 in idle_runs:
                    try:
                        record(results, s, n, run.finish(), rnd, rounds, t0)
                    except Exception as e:
                        run.abort()
                        print(f"bench: {s.key} on {n} failed: {e}", file=sys.stderr)
    finally:
        for p in procs.values():
            p.stop()
        backend.stop()
    verdicts = report(results, names, scen, meta, out)
    print((out / "results.md").read_text())
    skipped = [f"{s.key}: {n}" for s in scen for n in names if not s.needs <= procs[n].features]
    if skipped:
        print("not run, feature missing: " + ", ".join(skipped))
    missed = [f"{k}/{m}" for k, m, ok in verdicts if not ok]
    print(f"targets met: {sum(ok for _, _, ok in verdicts)}/{len(verdicts)}"
          + (f"; missed: {', '.join(missed)}" if missed else ""))
    bad = [(s.key, n) for s in scen for n in names
           if not results[s.key][n] and s.needs <= procs[n].features]
    if bad:
        print(f"bench: runs that produced nothing: {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
