"""The result store: an embedded SQLite file keyed by ``point_id``.

Every finished point is written (and committed) as soon as the task that computed it returns (one point, or a
small chunk of points evaluated by one worker), so a killed sweep loses nothing it had received. Results are a
pure function of the point (model content, resolved target, workload, options), so any sweep sharing the store
reuses them. ``members`` records which points belong to which spec, for the outputs.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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
"""


class Store:
    """SQLite store in ``DIR/sweep.sqlite``. Used from one thread (the sweep's driver)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path))
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self.db.commit()

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
        start = self.db.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM members WHERE spec_hash = ?",
                                (spec_hash,)).fetchone()[0]
        self.db.executemany("INSERT OR IGNORE INTO members (spec_hash, point_id, seq) VALUES (?, ?, ?)",
                            [(spec_hash, pid, start + i) for i, pid in enumerate(point_ids)])
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

    def count(self) -> int:
        """Number of stored points."""
        return self.db.execute("SELECT COUNT(*) FROM points").fetchone()[0]

    def start_run(self, spec_hash: str) -> int:
        """Record a run starting; returns its row id."""
        cur = self.db.execute("INSERT INTO runs (spec_hash, started, status) VALUES (?, ?, 'running')",
                              (spec_hash, time.time()))
        self.db.commit()
        return int(cur.lastrowid or 0)

    def end_run(self, run_id: int, status: str) -> None:
        """Record how a run ended (finished, interrupted, failed)."""
        self.db.execute("UPDATE runs SET finished = ?, status = ? WHERE rowid = ?", (time.time(), status, run_id))
        self.db.commit()

    def last_status(self, spec_hash: str) -> str | None:
        """Status of the spec's latest run, or None if it never ran here."""
        row = self.db.execute("SELECT status FROM runs WHERE spec_hash = ? ORDER BY rowid DESC LIMIT 1",
                              (spec_hash,)).fetchone()
        return row[0] if row else None
