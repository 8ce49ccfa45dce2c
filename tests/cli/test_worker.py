"""`durable worker` runs the workflows of the modules it imports, and stops cleanly on SIGTERM."""

from __future__ import annotations

import importlib
import signal
import subprocess
import sys
from pathlib import Path

import durable

MODULE = '''
import durable

@durable.activity(name="cliworker.shout")
async def shout(text):
    return text.upper()

@durable.workflow(name="cliworker.greet")
def greet(who):
    return (yield durable.call(shout, f"hello {who}"))
'''


async def test_a_worker_process_runs_started_workflows(tmp_path: Path) -> None:
    (tmp_path / "cliworker_flows.py").write_text(MODULE)
    db = tmp_path / "w.db"
    worker = subprocess.Popen([sys.executable, "-m", "durable", "worker", "cliworker_flows", "--store", str(db)],
                              cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        assert worker.stderr is not None
        banner = worker.stderr.readline()
        assert "running cliworker.greet" in banner, banner
        sys.path.insert(0, str(tmp_path))
        try:
            flows = importlib.import_module("cliworker_flows")
        finally:
            sys.path.remove(str(tmp_path))
        async with durable.Engine(str(db), worker=False) as client:
            handle = await client.start(flows.greet, "ann", id="greet-1")
            assert await handle.result(timeout=20) == "HELLO ANN"
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=20)
    assert worker.returncode == 0, err
    assert "stopped" in err
