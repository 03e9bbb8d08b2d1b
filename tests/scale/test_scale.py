"""100,000 concurrent idle WebSockets through one Switchyard on this machine
(bench/scale.py: workers, backends and client processes spread so that no
process exceeds the 20,000 open-file limit). Every connection must open and,
at the end, still echo. Runs alone (it saturates both cores for ~30 s), after
the parallel integration suite.

SY_SCALE_CONNS overrides the number of connections.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("BUILD", REPO / "build")).resolve()


def test_hundred_thousand_idle_websockets():
    n = int(os.environ.get("SY_SCALE_CONNS", "100000"))
    r = subprocess.run([sys.executable, str(REPO / "bench" / "scale.py"), "--conns", str(n),
                        "--timeout", "400", "--out", str(BUILD / "scale")],
                       capture_output=True, text=True, timeout=500,
                       env={**os.environ, "BUILD": str(BUILD)})
    assert r.stdout.strip(), r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"\n{json.dumps(res)}")
    assert res["opened"] == n, res
    assert res["echoed"] == n, res
    assert res["errors"] == 0, res
    assert res["proxy_alerts"] == 0, res
    # every process stayed under its limit: master + the planned workers
    assert res["proxy_processes"] == res["workers"] + 1, res
    assert r.returncode == 0, r.stderr[-3000:]
