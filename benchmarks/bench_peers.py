"""Case 7 (`--peers`): DBOS running the same workflow shape, on SQLite, on the same file system.

DBOS goes into its own virtualenv under benchmarks/.peers/dbos (git-ignored),
installed from PyPI on first use with the ordinary pip. Its script
(peers/dbos_steps.py) runs one workflow of K sequential steps returning a
small value, as shipped (rollback journal) and with WAL; ours runs the same
shape on `Engine(path)` in this process, measured in the same run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .available import sqlite_store
from .bench_sqlite import EngineThread, one_workflow, warm_wal
from .harness import Row, Settings, median

CASE = "7 peers"
HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(HERE, ".peers", "dbos")
PYTHON = os.path.join(VENV, "bin", "python")
STEPS = 100


def ensure_dbos() -> str | None:
    """None once DBOS imports in its virtualenv, else why it could not be installed."""
    check = [PYTHON, "-c", "import dbos"]
    if os.path.exists(PYTHON) and subprocess.run(check, capture_output=True).returncode == 0:
        return None
    base = getattr(sys, "_base_executable", sys.executable)
    print(f"   installing DBOS into {VENV} (once) ...", flush=True)
    try:
        subprocess.run([base, "-m", "venv", VENV], check=True, capture_output=True, timeout=300)
        subprocess.run([PYTHON, "-m", "pip", "install", "-q", "dbos"], check=True, capture_output=True,
                       timeout=900)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        out = getattr(exc, "stderr", b"") or b""
        tail = out.decode(errors="replace").strip().splitlines()[-1:] if isinstance(out, bytes) else []
        return f"DBOS could not be installed here: {type(exc).__name__} {' '.join(tail)}"[:300]
    if subprocess.run(check, capture_output=True).returncode != 0:
        return "DBOS could not be installed here: `import dbos` fails in its virtualenv"
    return None


def dbos_per_step(path: str, reps: int, wal: bool) -> tuple[str, str, list[float]]:
    args = [PYTHON, os.path.join(HERE, "peers", "dbos_steps.py"), path, str(STEPS), str(reps)]
    done = subprocess.run(args + (["wal"] if wal else []), capture_output=True, timeout=600, cwd=os.path.dirname(path))
    if done.returncode != 0:
        raise RuntimeError(f"the DBOS script failed: {done.stderr.decode(errors='replace')[-600:]}")
    result = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result["version"], result["journal_mode"], result["seconds_per_step"]


def run(cfg: Settings) -> list[Row]:
    store, why_not = sqlite_store()
    if store is None:
        return [Row(CASE, "DBOS vs durable on SQLite", None, "", note=why_not or "")]
    why = ensure_dbos()
    if why is not None:
        return [Row(CASE, "DBOS on SQLite", None, "", note=why)]
    path = os.path.join(cfg.workdir, "peers-durable.db")
    engine = EngineThread(path)
    try:
        warm_wal(path + "-wal", lambda: engine(one_workflow, STEPS))
        ours = [engine(one_workflow, STEPS) for _ in range(cfg.reps)]
    finally:
        engine.close()
    rows = [Row(CASE, f"durable, 1 workflow × {STEPS} steps (SQLite WAL FULL)", median(ours) * 1e6, "µs/step",
                samples=ours)]
    for wal in (False, True):
        path = os.path.join(cfg.workdir, f"peers-dbos-{'wal' if wal else 'shipped'}.sqlite")
        version, mode, theirs = dbos_per_step(path, cfg.reps, wal)
        label = "WAL" if wal else f"as shipped ({mode} journal)"
        rows.append(Row(CASE, f"DBOS {version}, 1 workflow × {STEPS} steps, SQLite {label}", median(theirs) * 1e6,
                        "µs/step", median(ours) * 1e6, "durable", samples=theirs,
                        note="ratio = DBOS / durable"))
    return rows
