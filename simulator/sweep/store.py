"""The result store: an embedded SQLite file keyed by ``point_id``.

Every finished point is written (and committed) as soon as the task that computed it returns (one point, or a
small chunk of points evaluated by one worker), so a killed sweep loses nothing it had received. Results are a
pure function of the point (model content, resolved target, workload, options), so any sweep sharing the store
reuses them. ``members`` records which points belong to which spec, for the outputs.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from hardware.errors import HwsimError

SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    point_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    point TEXT NOT NULL,
    result TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    spec_hash TEXT NOT NULL,
    point_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (spec_hash, point_id)
);
CREATE TABLE IF NOT EXISTS runs (
    spec_hash TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outputs (
    folder TEXT PRIMARY KEY,
    spec_name TEXT NOT NULL,
    spec_hash TEXT NOT NULL
);
"""
RUN_COLUMNS = {"pid": "INTEGER", "host": "TEXT"}  # added after the first release: stores made before lack them


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """SQLite store in ``DIR/sweep.sqlite``. Used from one thread (the sweep's driver)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path))
        except (OSError, sqlite3.Error) as exc:
            raise HwsimError(f"{self.path}: cannot open the sweep store ({exc}); give another --out") from None
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
            have = {r[1] for r in self.db.execute("PRAGMA table_info(runs)")}
            for name, kind in RUN_COLUMNS.items():
                if name not in have:
                    self.db.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
            self.db.commit()
        except sqlite3.Error as exc:
            self.db.close()
            raise HwsimError(f"{self.path}: not a hwsim sweep store ({exc}); delete it or give another --out") from None
        self._next_seq: dict[str, int] = {}

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def known(self, point_ids: Iterable[str]) -> set[str]:
        """The subset of ``point_ids`` already stored."""
        ids = list(point_ids)
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            q = f"SELECT point_id FROM points WHERE point_id IN ({','.join('?' * len(chunk))})"
            found.update(r[0] for r in self.db.execute(q, chunk))
        return found

    def get(self, point_id: str) -> dict[str, Any] | None:
        """The stored result row of a point, or None."""
        row = self.db.execute("SELECT result FROM points WHERE point_id = ?", (point_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def entry(self, point_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(point description, result row) of a stored point, or None."""
        row = self.db.execute("SELECT point, result FROM points WHERE point_id = ?", (point_id,)).fetchone()
        return (json.loads(row[0]), json.loads(row[1])) if row else None

    def put_many(self, items: Iterable[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """Persist finished points (point description, result row) in one transaction (committed at once)."""
        now = time.time()
        self.db.executemany("INSERT OR REPLACE INTO points (point_id, created, point, result) VALUES (?, ?, ?, ?)",
                            [(point["point_id"], now, json.dumps(point), json.dumps(result))
                             for point, result in items])
        self.db.commit()

    def add_members(self, spec_hash: str, point_ids: Iterable[str]) -> None:
        """Record that these points belong to the spec (in the given order)."""
        if spec_hash not in self._next_seq:
            self._next_seq[spec_hash] = self.db.execute(
                "SELECT COALESCE(MAX(seq), -1) + 1 FROM members WHERE spec_hash = ?", (spec_hash,)).fetchone()[0]
        ids = list(point_ids)
        start = self._next_seq[spec_hash]
        self.db.executemany("INSERT OR IGNORE INTO members (spec_hash, point_id, seq) VALUES (?, ?, ?)",
                            [(spec_hash, pid, start + i) for i, pid in enumerate(ids)])
        self._next_seq[spec_hash] = start + len(ids)
        self.db.commit()

    def members(self, spec_hash: str) -> list[str]:
        """The point ids of a spec, in order."""
        return [r[0] for r in self.db.execute("SELECT point_id FROM members WHERE spec_hash = ? ORDER BY seq",
                                              (spec_hash,))]

    def results(self, spec_hash: str) -> list[dict[str, Any]]:
        """Finished result rows of a spec's points, in order."""
        q = ("SELECT p.result FROM members m JOIN points p ON p.point_id = m.point_id "
             "WHERE m.spec_hash = ? ORDER BY m.seq")
        return [json.loads(r[0]) for r in self.db.execute(q, (spec_hash,))]

    def iter_results(self, spec_hash: str, batch: int = 2000) -> Iterator[dict[str, Any]]:
        """Like :meth:`results`, one row at a time (a million-point sweep never sits in memory at once)."""
        q = ("SELECT p.result FROM members m JOIN points p ON p.point_id = m.point_id "
             "WHERE m.spec_hash = ? ORDER BY m.seq")
        cur = self.db.cursor()
        cur.execute(q, (spec_hash,))
        while rows := cur.fetchmany(batch):
            for r in rows:
                yield json.loads(r[0])

    def count_results(self, spec_hash: str) -> int:
        """Number of finished points of a spec."""
        q = "SELECT COUNT(*) FROM members m JOIN points p ON p.point_id = m.point_id WHERE m.spec_hash = ?"
        return int(self.db.execute(q, (spec_hash,)).fetchone()[0])

    def count(self) -> int:
        """Number of stored points."""
        return self.db.execute("SELECT COUNT(*) FROM points").fetchone()[0]

    def start_run(self, spec_hash: str) -> int:
        """Record a run starting (with this process's id and host, so that a later run can tell a run that was
        killed from one still going); returns its row id."""
        self.reap_killed_runs()
        cur = self.db.execute("INSERT INTO runs (spec_hash, started, status, pid, host) VALUES (?, ?, 'running', ?, ?)",
                              (spec_hash, time.time(), os.getpid(), socket.gethostname()))
        self.db.commit()
        return int(cur.lastrowid or 0)

    def reap_killed_runs(self) -> int:
        """Mark ``killed`` every run still ``running`` whose process on this host is gone (SIGKILL, power loss: a
        process cannot record its own end then). Runs on other hosts are left as they are. Returns how many."""
        host = socket.gethostname()
        stale = [rowid for rowid, pid, h in self.db.execute(
                 "SELECT rowid, pid, host FROM runs WHERE status = 'running'")
                 if (pid is None and h is None) or (h == host and pid is not None and not pid_alive(int(pid)))]
        if stale:
            self.db.executemany("UPDATE runs SET status = 'killed' WHERE rowid = ?", [(r,) for r in stale])
            self.db.commit()
        return len(stale)

    def runs(self, spec_hash: str | None = None) -> list[dict[str, Any]]:
        """Every recorded run (of one spec, or all), oldest first, with a true status."""
        self.reap_killed_runs()
        q = "SELECT spec_hash, started, finished, status, pid, host FROM runs"
        args: tuple = ()
        if spec_hash is not None:
            q += " WHERE spec_hash = ?"
            args = (spec_hash,)
        keys = ("spec_hash", "started", "finished", "status", "pid", "host")
        return [dict(zip(keys, r)) for r in self.db.execute(q + " ORDER BY rowid", args)]

    def claim_outputs(self, folder: str, spec_name: str, spec_hash: str) -> tuple[str, str] | None:
        """Record that ``folder``'s outputs belong to this spec, unless a spec of another name holds them: then
        return that spec's (name, hash) and leave the record alone."""
        row = self.db.execute("SELECT spec_name, spec_hash FROM outputs WHERE folder = ?", (folder,)).fetchone()
        if row is not None and row[0] != spec_name:
            return (row[0], row[1])
        self.db.execute("INSERT OR REPLACE INTO outputs (folder, spec_name, spec_hash) VALUES (?, ?, ?)",
                        (folder, spec_name, spec_hash))
        self.db.commit()
        return None

    def end_run(self, run_id: int, status: str) -> None:
        """Record how a run ended (finished, interrupted, failed)."""
        self.db.execute("UPDATE runs SET finished = ?, status = ? WHERE rowid = ?", (time.time(), status, run_id))
        self.db.commit()

    def last_status(self, spec_hash: str) -> str | None:
        """Status of the spec's latest run, or None if it never ran here (a killed run reads ``killed``)."""
        self.reap_killed_runs()
        row = self.db.execute("SELECT status FROM runs WHERE spec_hash = ? ORDER BY rowid DESC LIMIT 1",
                              (spec_hash,)).fetchone()
        return row[0] if row else None
