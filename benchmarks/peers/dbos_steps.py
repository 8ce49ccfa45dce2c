"""DBOS doing our workflow shape: one workflow of K sequential steps returning a small value.

Run by the DBOS virtualenv's interpreter, not ours:

    benchmarks/.peers/dbos/bin/python benchmarks/peers/dbos_steps.py DB_FILE K REPS [wal]

Prints one JSON line: the DBOS version, the journal mode and seconds per step
of each repetition (after WARM_UP workflows, so a WAL has wrapped once).
"""

import json
import sqlite3
import sys
import time
from importlib.metadata import version

from dbos import DBOS


WARM_UP = 12


@DBOS.step()
def add_one(i):
    return i + 1


@DBOS.workflow()
def steps(k):
    total = 0
    for i in range(k):
        total = add_one(i)
    return total


def main():
    path, k, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    wal = len(sys.argv) > 4 and sys.argv[4] == "wal"
    if wal:  # WAL is a property of the file: set it before DBOS creates its schema
        con = sqlite3.connect(path)
        con.execute("PRAGMA journal_mode=WAL")
        con.close()
    DBOS(config={"name": "durable-bench-peer", "system_database_url": f"sqlite:///{path}",
                 "run_admin_server": False})
    DBOS.launch()
    try:
        for _ in range(WARM_UP):  # past the first WAL checkpoint, as for ours
            steps(k)
        samples = []
        for _ in range(reps):
            start = time.perf_counter()
            assert steps(k) == k
            samples.append((time.perf_counter() - start) / k)
    finally:
        DBOS.destroy()
    con = sqlite3.connect(path)
    mode = con.execute("PRAGMA journal_mode").fetchone()[0]
    con.close()
    print(json.dumps({"version": version("dbos"), "journal_mode": mode, "seconds_per_step": samples}))


if __name__ == "__main__":
    main()
