"""Real processes, real SIGKILLs, a real SQLite file: nothing lost, nothing recorded runs twice."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import durable

pytestmark = pytest.mark.slow

WORKER = str(Path(__file__).with_name("worker.py"))


def run(db: Path, mode: str, workflows: int, steps: int, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, WORKER, str(db), mode, str(workflows), str(steps), *extra],
                          capture_output=True, text=True, timeout=timeout)


def killed(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == -signal.SIGKILL, f"expected a SIGKILL, got {proc.returncode}: {proc.stderr[-2000:]}"


def finished(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


def executions(db: Path) -> Counter[tuple[str, int]]:
    log = Path(f"{db}.log")
    if not log.exists():
        return Counter()
    return Counter((wid, int(pos)) for wid, pos, _ in (line.split() for line in log.read_text().splitlines()))


def recorded(db: Path) -> set[tuple[str, int]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {(wid, pos) for wid, pos, kind in conn.execute(
            "SELECT workflow_id, position, kind FROM journal_view") if kind == "call"}


def integrity_ok(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def expected(workflows: int, steps: int) -> dict:
    return {f"wf-{i}": {"total": sum(2 * s for s in range(steps)), "slept": None, "signal": None}
            for i in range(workflows)}


def check_no_rerun(db: Path, before: set[tuple[str, int]], counts: Counter[tuple[str, int]]) -> None:
    """Steps recorded before a crash never ran again after it."""
    after = executions(db)
    for key in before:
        assert after[key] == counts[key], f"{key} was recorded before the crash but ran again"


def test_kill_inside_an_activity(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    killed(run(db, "start", 1, 5, "--crash", "activity:wf-0:2"))
    before, counts = recorded(db), executions(db)
    assert before == {("wf-0", 0), ("wf-0", 1)}
    assert finished(run(db, "resume", 1, 5)) == expected(1, 5)
    check_no_rerun(db, before, counts)
    assert executions(db) == Counter({("wf-0", 0): 1, ("wf-0", 1): 1, ("wf-0", 2): 2, ("wf-0", 3): 1, ("wf-0", 4): 1})
    integrity_ok(db)


def test_kill_after_activity_returned_before_its_commit(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    killed(run(db, "start", 1, 5, "--crash", "before-commit:3"))
    before, counts = recorded(db), executions(db)
    assert finished(run(db, "resume", 1, 5)) == expected(1, 5)
    check_no_rerun(db, before, counts)
    runs = executions(db)
    lost = [key for key in runs if key not in before and counts[key]]
    assert len(lost) == 1 and runs[lost[0]] == 2  # the step whose result was not committed, once more
    assert sum(runs.values()) == 6
    integrity_ok(db)


def test_kill_right_after_a_commit(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    killed(run(db, "start", 1, 5, "--crash", "after-commit:3"))
    before, counts = recorded(db), executions(db)
    assert len(before) >= 2
    assert finished(run(db, "resume", 1, 5)) == expected(1, 5)
    check_no_rerun(db, before, counts)
    assert max(executions(db).values()) <= 2
    integrity_ok(db)


def test_kill_during_a_sleep_keeps_the_deadline(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    killed(run(db, "start", 1, 2, "--sleep", "1.0", "--crash", "sleeping"))
    time.sleep(0.6)  # time passes while no worker runs: the deadline must not move
    result = finished(run(db, "resume", 1, 2, "--sleep", "1.0"))["wf-0"]
    assert 1.0 <= result["slept"] < 1.45, result  # a restarted timer would have slept >= 1.6
    assert executions(db) == Counter({("wf-0", 0): 1, ("wf-0", 1): 1})
    integrity_ok(db)


async def test_signal_sent_while_no_worker_runs_is_received_once(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    killed(run(db, "start", 2, 2, "--signal", "--crash", "waiting"))
    async with durable.Engine(str(db), worker=False) as client:
        await client.signal("wf-0", "go", {"by": "ann"})
        await client.signal("wf-1", "go", "bob")
        await client.signal("wf-1", "go", "ignored: only one receive")
    results = finished(run(db, "resume", 2, 2, "--signal"))
    assert (results["wf-0"]["signal"], results["wf-1"]["signal"]) == ({"by": "ann"}, "bob")
    with sqlite3.connect(db) as conn:
        receives = conn.execute("SELECT workflow_id, count(*) FROM journal_view WHERE kind = 'receive' "
                                "GROUP BY workflow_id").fetchall()
        assert sorted(receives) == [("wf-0", 1), ("wf-1", 1)]
        left = conn.execute("SELECT count(*) FROM inbox").fetchone()[0]
    assert left == 1  # the extra signal was never received; it stays for inspection
    integrity_ok(db)


async def test_kill_during_replay(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    killed(run(db, "start", 1, 300, "--signal", "--crash", "waiting"))
    counts = executions(db)
    assert sum(counts.values()) == 300
    async with durable.Engine(str(db), worker=False) as client:
        await client.signal("wf-0", "go", "late")  # makes it ready: the next worker replays 300 entries
    killed(run(db, "resume", 1, 300, "--signal", "--crash", "replay:150"))
    results = finished(run(db, "resume", 1, 300, "--signal"))
    assert results["wf-0"] == {"total": sum(2 * s for s in range(300)), "slept": None, "signal": "late"}
    assert executions(db) == counts  # replays ran nothing
    integrity_ok(db)


def test_kill_in_the_middle_of_a_large_group_commit(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    # Killed only if some group commit carried 40 writes or more: the kill proves the batch was large.
    killed(run(db, "start", 100, 6, "--together", "--crash", "mid-commit:20"))
    before, counts = recorded(db), executions(db)
    integrity_ok(db)
    # Creation may have been cut short too: "start" is idempotent and creates the rest.
    assert finished(run(db, "start", 100, 6)) == expected(100, 6)
    check_no_rerun(db, before, counts)
    assert max(executions(db).values()) <= 2
    integrity_ok(db)


def test_repeated_crashes_at_different_points(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    crashes = ["activity:wf-1:1", "before-commit:2", "after-commit:2", "mid-commit:3", "activity:wf-0:4"]
    history: list[tuple[set, Counter]] = []
    killed(run(db, "start", 3, 6, "--crash", crashes[0]))
    for point in crashes[1:]:
        history.append((recorded(db), executions(db)))
        proc = run(db, "start", 3, 6, "--crash", point)  # idempotent: creates what the first life did not
        if proc.returncode == 0:  # the point was not reached: everything finished
            break
        killed(proc)
    history.append((recorded(db), executions(db)))
    assert finished(run(db, "start", 3, 6)) == expected(3, 6)
    for before, counts in history:
        check_no_rerun(db, before, counts)
    assert max(executions(db).values()) <= 1 + len(crashes)
    integrity_ok(db)


def test_a_workflow_that_keeps_killing_its_worker_is_blocked(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    proc = run(db, "start", 3, 3, "--crash", "activity:wf-0:1", "--settle")
    for _ in range(12):
        if proc.returncode == 0:
            break
        killed(proc)
        # "start" again: the first life may have died before creating all three.
        proc = run(db, "start", 3, 3, "--crash", "activity:wf-0:1", "--settle")
    outcome = finished(proc)
    assert outcome["statuses"] == {"wf-0": "blocked", "wf-1": "completed", "wf-2": "completed"}
    with sqlite3.connect(db) as conn:
        reason = conn.execute("SELECT blocked_reason FROM workflows WHERE id = 'wf-0'").fetchone()[0]
    assert "crashed its worker 6 times in a row" in reason
    # Once in the life that still recorded progress (step 0), then once in each
    # of the six lives without progress; the seventh claim blocks it instead.
    assert executions(db)[("wf-0", 1)] == 7
    integrity_ok(db)


def test_after_one_crash_the_bystanders_recover_together_not_one_at_a_time(tmp_path: Path) -> None:
    """A kill takes down every run in flight; one crash makes none of them a suspect yet."""
    db, log = tmp_path / "k.db", Path(f"{tmp_path / 'k.db'}.log")
    workflows = 12
    proc = subprocess.Popen([sys.executable, WORKER, str(db), "start", str(workflows), "2", "--pace", "0.5"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        # Every workflow inside its first step, none recorded yet: then the kill.
        while not (log.exists() and len(log.read_text().splitlines()) >= workflows):
            assert time.monotonic() < deadline and proc.poll() is None, "the first life did not start every step"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()  # type: ignore[union-attr]
    first_life = len(log.read_text().splitlines())
    assert finished(run(db, "resume", workflows, 2)) == expected(workflows, 2)
    second_life = [line.split() for line in log.read_text().splitlines()[first_life:]]
    # Recovered one at a time, a workflow would reach step 1 before the next one
    # restarts step 0; together, every step 0 restarts before any step 1 begins.
    first_step_1 = next(i for i, (_, position, _) in enumerate(second_life) if position == "1")
    assert sorted(wid for wid, position, _ in second_life[:first_step_1]) == sorted(
        f"wf-{i}" for i in range(workflows))
    integrity_ok(db)


def test_soak_random_kills_over_many_workflows(tmp_path: Path) -> None:
    """Dozens of outside SIGKILLs at random moments over hundreds of workflows."""
    db = tmp_path / "soak.db"
    rng = random.Random(20261123)
    workflows, steps = 200, 150  # 150 steps of 40 ms: many lives' worth of work
    history: list[tuple[set, Counter]] = []
    kills = 0
    for _ in range(40):
        # "start" is idempotent: a kill before every workflow was created loses none.
        proc = subprocess.Popen([sys.executable, WORKER, str(db), "start", str(workflows), str(steps),
                                 "--pace", "0.04"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            proc.wait(timeout=rng.uniform(0.3, 0.8))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        else:
            break  # everything finished within this life
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
        history.append((recorded(db), executions(db)) if db.exists() else (set(), Counter()))
    assert kills >= 12
    assert finished(run(db, "start", workflows, steps, "--pace", "0.04", timeout=120)) == expected(workflows, steps)
    for before, counts in history:
        check_no_rerun(db, before, counts)
    assert max(executions(db).values()) <= 1 + kills
    integrity_ok(db)
