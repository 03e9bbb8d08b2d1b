"""Run a pytest suite N times in a row and list every test that ever failed.

    /usr/bin/python3 tests/stress.py --runs 10 --jobs 4 --out build/stress tests/integration

(`make stress N=10` runs this on the integration suite; with
SANITIZE=address,undefined against an ASan+UBSan build.) Each run writes
OUT/run-K.log (pytest's output) and OUT/run-K.xml (JUnit XML); the failures
are read from the XML, so a test that fails in its teardown (e.g. a sanitizer
report when the proxy stops) counts too. A run whose pytest ended badly
without a failed test in its XML (an internal error, a crashed collection)
counts as a failure of "<run K: pytest exit code X>". At the end the failed
tests are listed with how many runs they failed in, also written to
OUT/summary.txt; the exit code is 1 when anything failed, else 0.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

PYTHON = "/usr/bin/python3"


def test_id(case: ET.Element) -> str:
    """tests/integration/test_x.py::test_name from a JUnit <testcase>."""
    cls = case.get("classname", "")
    name = case.get("name", "")
    parts = cls.split(".")
    # classname is the module path, then any test class: a.b.test_x.TestY
    for i in range(len(parts), 0, -1):
        path = Path(*parts[:i]).with_suffix(".py")
        if path.exists():
            return "::".join([str(path), *parts[i:], name])
    return f"{cls}::{name}"


def failures_in(xml_path: Path) -> tuple[list[str], dict]:
    """(ids of the tests that failed or errored, {"passed": n, "skipped": n})."""
    root = ET.parse(xml_path).getroot()
    outcome: dict[str, str] = {}
    for case in root.iter("testcase"):
        tid = test_id(case)
        if case.find("failure") is not None or case.find("error") is not None:
            outcome[tid] = "failed"  # a failed call or a failed teardown: once
        elif case.find("skipped") is not None:
            outcome.setdefault(tid, "skipped")
        else:
            outcome.setdefault(tid, "passed")
    counts = collections.Counter(outcome.values())
    return [t for t, o in outcome.items() if o == "failed"], counts


def run_once(k: int, args, out: Path) -> list[str]:
    log, xml = out / f"run-{k}.log", out / f"run-{k}.xml"
    cmd = [PYTHON, "-m", "pytest", "-q", "-rfE", "-n", str(args.jobs),
           f"--junitxml={xml}", *args.pytest_args]
    t0 = time.monotonic()
    with open(log, "wb") as f:
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    dt = time.monotonic() - t0
    failed, counts = failures_in(xml) if xml.exists() else ([], collections.Counter())
    if rc not in (0, 1) or (rc == 1 and not failed):
        failed.append(f"<run {k}: pytest exit code {rc}, see {log}>")
    print(f"run {k}/{args.runs}: {counts['passed']} passed, {counts['skipped']} skipped, "
          f"{len(failed)} failed ({dt:.0f} s){' -- ' + log.name if failed else ''}",
          flush=True)
    for tid in failed:
        print(f"    FAILED {tid}", flush=True)
    return failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=4, help="pytest-xdist workers (-n)")
    ap.add_argument("--out", default="build/stress", help="directory for the per-run logs")
    ap.add_argument("pytest_args", nargs="+", help="what pytest runs (e.g. tests/integration)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("run-*.log"), *out.glob("run-*.xml"), *out.glob("summary.txt")]:
        old.unlink()
    binary = os.environ.get("SWITCHYARD_BIN", "build/switchyard")
    print(f"stress: {args.runs} runs of pytest -n {args.jobs} {' '.join(args.pytest_args)} "
          f"against {binary}; logs in {out}/", flush=True)

    failed = collections.Counter()
    for k in range(1, args.runs + 1):
        failed.update(run_once(k, args, out))

    lines = [f"{args.runs} runs against {binary}: "
             + (f"{len(failed)} test(s) failed at least once" if failed else "no failures")]
    for tid, n in sorted(failed.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {n}/{args.runs}  {tid}")
    summary = "\n".join(lines) + "\n"
    (out / "summary.txt").write_text(summary)
    print(summary, end="")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
