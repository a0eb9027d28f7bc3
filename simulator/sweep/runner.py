"""Evaluating design points: the worker function, the executors, and the search strategies.

Workers keep what does not depend on the swept hardware: each model is imported once per worker process, and
each workload (prefill or decode pass for a batch, length and precision) is built once and reused by every
hardware point that needs it. Validated targets are cached by their JSON too, so workload axes reuse them.

Executors: ``serial`` (in-process, one worker), a local process pool (the default, one process per core) and a
dask.distributed cluster (``--scheduler tcp://HOST:PORT``, or a ``Client`` from Python). A task is a chunk of
points evaluated in order by one worker (:func:`evaluate_chunk`); the driver keeps one chunk per worker in flight,
persists a chunk's rows (one commit) as soon as it returns, and on Ctrl-C cancels what has not started.

Grid and random runs are scheduled by workload (:class:`_Scheduler`): the points sharing a workload (model, phase,
batch, lengths, precision) form a group, a worker keeps drawing chunks from the group it is on and moves to a
group nobody has started when its own runs out, so each workload is built by about one worker instead of all of
them. Chunks are sized from the measured time per point (about :data:`CHUNK_TARGET_S` of work each, smaller
towards the end), so a task's IPC and commit cost is spread over many points while Ctrl-C loses little.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import json
import math
import os
import queue
import random
import signal
import statistics
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from hardware.errors import DoesNotFit, HwsimError
from simulator.sweep.spec import METRICS, Point, Sweep, parse_precision_axis
from simulator.sweep.store import Store

_LOCK = threading.Lock()
_MODELS: dict[tuple, Any] = {}
_TARGETS: dict[str, Any] = {}
_TARGET_CACHE_MAX = 4096


class _CachedModel:
    """A :class:`mapping.workloads.Model` whose prefill/decode workloads are built once per argument set."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._workloads: dict[tuple, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def _key(self, kind: str, args: tuple, precision: Any, extra: Any = None) -> tuple:
        return (kind, *args, precision.weights, precision.activations, precision.kv_cache, extra)

    def prefill(self, batch: int, prompt_len: int, precision: Any = None) -> Any:
        """Cached ``Model.prefill``."""
        key = self._key("prefill", (batch, prompt_len), precision)
        if key not in self._workloads:
            self._workloads[key] = self._model.prefill(batch, prompt_len, precision)
        return self._workloads[key]

    def decode(self, batch: int, context: int, precision: Any = None, prompt_len: int | None = None) -> Any:
        """Cached ``Model.decode``."""
        key = self._key("decode", (batch, context), precision, prompt_len)
        if key not in self._workloads:
            self._workloads[key] = self._model.decode(batch, context, precision, prompt_len=prompt_len)
        return self._workloads[key]


def _model(path: str, model_hash: str, dims: dict[str, int]) -> _CachedModel:
    from mapping.workloads import Model

    key = (model_hash, path, tuple(sorted(dims.items())))
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = _CachedModel(Model(path, dims))
        return _MODELS[key]


def _target(data: dict[str, Any]) -> Any:
    from hardware.targets import target_from_dict

    key = json.dumps(data, sort_keys=True)
    with _LOCK:
        hit = _TARGETS.get(key)
    if hit is None:
        hit = target_from_dict(data, f"target {data.get('name')}")
        with _LOCK:
            if len(_TARGETS) >= _TARGET_CACHE_MAX:
                _TARGETS.clear()
            _TARGETS[key] = hit
    return hit


_SETUPS: dict[str, Any] = {}


def evaluate_serving(point: Point) -> dict[str, Any]:
    """Serve one point's request stream (``hwsim serve``); the metrics map to the sweep's: ``latency_s`` = p99
    end-to-end latency, ``energy_j`` = energy per request, ``tokens_per_s`` = generated tokens/s, ``tokens_per_j`` =
    generated tokens per joule; TTFT/TPOT percentiles, goodput and SLO attainment are columns of their own. The
    serving setup (and its pass cache) is kept per worker for every rate and scheduler on the same system."""
    from mapping.op_costs import Precision
    from mapping.parallel import parse_parallel
    from simulator.serving.arrivals import parse_arrivals
    from simulator.serving.command import _parse_slo
    from simulator.serving.distributions import parse_length
    from simulator.serving.metrics import summarise
    from simulator.serving.setup import prepare, run_serving

    w = point.workload
    row = _row(point, ("rate", "scheduler", "parallel", "requests", "prompt_len", "gen_len"))

    def fill() -> None:
        target = _target(point.target)
        model = _model(point.model, point.model_hash, point.dims)
        par = None if w["parallel"] in ("none", "", None) else parse_parallel(None, w["parallel"], target.kind)
        key = json.dumps([point.model_hash, point.dims, point.target, point.options, w["parallel"], w["shape_grid"]],
                         sort_keys=True, default=str)
        with _LOCK:
            setup = _SETUPS.get(key)
        if setup is None:
            setup = prepare(model._model, target, dict(point.options), Precision(), w["shape_grid"], parallel=par)
            with _LOCK:
                _SETUPS[key] = setup
        slo = _parse_slo(w["slo"])
        tokens = w["max_batch_tokens"] or (512 if w["scheduler"] == "sarathi" else 2048)
        run = run_serving(setup, parse_arrivals(f"poisson:{w['rate']}"), w["requests"],
                          parse_length(w["prompt_len"], "prompt_len"), parse_length(w["gen_len"], "gen_len"),
                          w["scheduler"], w["max_batch"], tokens, w["seed"])
        m = summarise(run, slo, w["rate"])
        if not m["finished"]:  # a latency of no request is not 0: the point fails, with the reason, off the front
            reasons = "; ".join(sorted({r["reason"] for r in m["rejections"]}))
            row.update(finished=0, rejected=m["rejected"], memory_bytes=setup.weight_bytes,
                       capacity_bytes=setup.capacity_bytes, fits_memory=True)
            raise HwsimError(f"no request finished ({m['rejected']} of {m['requests']} rejected"
                             + (f": {reasons}" if reasons else ", the rest unfinished") + ")")
        per_token = m["energy"]["per_token_j"]
        row.update(latency_s=m["e2e_s"]["p99"], energy_j=m["energy"]["per_request_j"],
                   tokens_per_s=m["throughput"]["tokens_per_s"], tokens_per_j=1 / per_token if per_token else 0.0,
                   ttft_p50_s=m["ttft_s"]["p50"], ttft_p99_s=m["ttft_s"]["p99"], tpot_p50_s=m["tpot_s"]["p50"],
                   tpot_p99_s=m["tpot_s"]["p99"], goodput_requests_per_s=m["goodput_requests_per_s"],
                   slo_attainment=m["slo_attainment"], finished=m["finished"], rejected=m["rejected"],
                   memory_bytes=setup.weight_bytes, capacity_bytes=setup.capacity_bytes, fits_memory=True)

    return _filled(row, fill)


def evaluate(point: Point) -> dict[str, Any]:
    """Simulate one point; returns its result row (errors become a row with ``error`` set, never an exception)."""
    from mapping.op_costs import Precision
    from mapping.techniques import Techniques
    from simulator.simulate import simulate
    from simulator.technique_run import run_simulation as run_with_techniques

    if point.workload.get("kind") == "serving":
        return evaluate_serving(point)
    w = point.workload
    row = _row(point, ("phase", "batch", "prompt_len", "gen_len", "precision"))
    if "techniques" in w:
        row["techniques"] = Techniques.from_dict(w["techniques"]).describe()

    def fill() -> None:
        target = _target(point.target)
        model = _model(point.model, point.model_hash, point.dims)
        precision = Precision(*parse_precision_axis(w["precision"]))
        if "techniques" in w:
            r = run_with_techniques(model, target, w["phase"], w["batch"], w["prompt_len"], w["gen_len"], precision,
                                    dict(point.options), Techniques.from_dict(w["techniques"]), trace_steps=0)
        else:
            r = simulate(model, target, w["phase"], w["batch"], w["prompt_len"], w["gen_len"], precision,
                         dict(point.options), trace_steps=0)
        row.update(latency_s=r.latency_s, energy_j=r.energy_j, tokens_per_s=r.tokens_per_s,
                   tokens_per_j=r.tokens / r.energy_j if r.energy_j else 0.0, memory_bytes=r.memory_bytes,
                   capacity_bytes=r.capacity_bytes, fits_memory=True)

    return _filled(row, fill)


def _row(point: Point, workload_keys: tuple[str, ...]) -> dict[str, Any]:
    """A point's result row before it runs: its identity, swept values and workload, every metric unset."""
    row: dict[str, Any] = {"point_id": point.point_id, "model": Path(point.model).name,
                           "target": point.target.get("name"), **point.params,
                           **{k: point.workload[k] for k in workload_keys}}
    row.update({m: None for m in METRICS})
    row.update(memory_bytes=None, capacity_bytes=None, fits_memory=None, error="")
    return row


def _filled(row: dict[str, Any], fill: Callable[[], None]) -> dict[str, Any]:
    """Run ``fill`` (which updates ``row``) and time it; an error becomes the row's ``error``, never an exception."""
    start = time.perf_counter()
    try:
        fill()
    except DoesNotFit as exc:
        row.update(error=str(exc), fits_memory=False, memory_bytes=exc.required_bytes,
                   capacity_bytes=exc.capacity_bytes)
    except HwsimError as exc:
        row["error"] = str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad point must not stop a sweep
        row["error"] = f"internal error ({type(exc).__name__}: {exc})"
    row["sim_s"] = time.perf_counter() - start
    return row


def evaluate_chunk(points: list[Point]) -> tuple[int, list[dict[str, Any]]]:
    """Simulate points in order in one worker; returns (the worker's process id, their rows)."""
    return os.getpid(), [evaluate(p) for p in points]


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Executor:
    """Runs :func:`evaluate_chunk` on chunks of points; every finished future is put on ``self.done``.

    ``chunked``: whether chunks of more than one point are worth it (IPC per task); ``prefetch``: chunks in flight
    per worker.
    """

    workers = 1
    chunked = True
    prefetch = 1

    def __init__(self) -> None:
        self.done: queue.Queue = queue.Queue()

    def submit(self, points: list[Point]) -> Any:
        """Start evaluating a chunk of points; returns a future."""
        raise NotImplementedError

    def result(self, future: Any) -> tuple[Any, list[dict[str, Any]]]:
        """(worker id, rows) of a finished future."""
        return future.result()

    def cancel(self, futures: list[Any]) -> None:
        """Cancel futures that have not started."""
        for f in futures:
            f.cancel()

    def close(self) -> None:
        """Release the workers."""


class SerialExecutor(Executor):
    """Evaluates in the calling process, one point at a time (no IPC to save, so no chunks: Ctrl-C loses at most
    the point being simulated)."""

    chunked = False

    def submit(self, points: list[Point]) -> Any:
        """Evaluate now; the returned future is already done."""
        f: cf.Future = cf.Future()
        f.set_result(evaluate_chunk(points))
        self.done.put(f)
        return f


class PoolExecutor(Executor):
    """A local process pool (workers ignore SIGINT; the driver handles it)."""

    def __init__(self, workers: int) -> None:
        super().__init__()
        import multiprocessing

        self.workers = workers
        ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        self.pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_ignore_sigint)

    def submit(self, points: list[Point]) -> Any:
        """Send a chunk of points to the pool."""
        f = self.pool.submit(evaluate_chunk, points)
        f.add_done_callback(self.done.put)
        return f

    def close(self) -> None:
        """Shut the pool down, dropping queued work."""
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(Executor):
    """An existing dask.distributed cluster (address or Client)."""

    def __init__(self, scheduler: Any) -> None:
        super().__init__()
        from distributed import Client

        self.own = not isinstance(scheduler, Client)
        try:
            self.client = Client(scheduler, timeout="10s") if self.own else scheduler
        except OSError as exc:
            raise HwsimError(f"--scheduler {scheduler}: cannot reach the dask scheduler ({exc})") from None
        self.workers = max(1, sum(w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values()))
        self.prefetch = 2  # hide the scheduler's round trip
        self._seq = itertools.count()

    def submit(self, points: list[Point]) -> Any:
        """Send a chunk of points to the cluster."""
        key = f"hwsim-points-{points[0].point_id}-{len(points)}-{next(self._seq)}"
        f = self.client.submit(evaluate_chunk, points, key=key, pure=False)
        f.add_done_callback(self.done.put)
        return f

    def result(self, future: Any) -> tuple[Any, list[dict[str, Any]]]:
        """(worker id, rows) of a finished dask future."""
        return future.result()

    def close(self) -> None:
        """Disconnect (a cluster passed in as a Client is left running)."""
        if self.own:
            self.client.close()


def make_executor(workers: int | None = None, scheduler: Any = None) -> Executor:
    """Serial for one worker, a process pool for more (default: all cores), dask when a scheduler is given."""
    if scheduler is not None:
        return DaskExecutor(scheduler)
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise HwsimError(f"--workers must be >= 1, got {workers}")
    return SerialExecutor() if workers == 1 else PoolExecutor(workers)


class SweepInterrupted(Exception):  # noqa: N818 - the user's word for it
    """Raised when a sweep is stopped (Ctrl-C); finished points are stored."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__(f"interrupted: {done} of {total} points stored; rerun with --resume to finish")
        self.done = done
        self.total = total


@dataclass
class SweepOutcome:
    """What a sweep run did. ``rows`` (every finished point of the spec, in the spec's order) is read from the
    store when first asked for; :meth:`iter_rows` streams them instead."""

    total: int  # distinct points of the spec (grid/random) or trials asked (nsga2/tpe)
    computed: int
    cached: int
    elapsed_s: float
    strategy: str
    workers: int
    param_columns: list[str] = field(default_factory=list)
    warm_s: float = 0.0  # of elapsed_s: loading the models in the driver before the workers start
    store_path: Path | None = None
    spec_hash: str = ""
    points: int = 0  # distinct points with a stored result

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        """The spec's result rows from the store, one at a time."""
        if self.store_path is None:
            return
        with Store(self.store_path) as st:
            yield from st.iter_results(self.spec_hash)

    @cached_property
    def rows(self) -> list[dict[str, Any]]:
        """Every result row of the spec (in memory: use :meth:`iter_rows` for large sweeps)."""
        return list(self.iter_rows())

    @property
    def points_per_s(self) -> float:
        """Design points simulated per second of wall time (cache hits excluded)."""
        return self.computed / self.elapsed_s if self.elapsed_s > 0 else 0.0


CHUNK_TARGET_S = 0.1  # seconds of simulation per chunk (pool and dask executors)
MAX_CHUNK = 64  # points per chunk at most
FIRST_CHUNK = 2  # points per chunk before any point has been timed


class _Driver:
    """Submits chunks of points, persists their rows as they arrive, updates the progress bar."""

    def __init__(self, store: Store, executor: Executor, sweep: Sweep, bar: Any,
                 interrupt_after: int | None, window: int | None = None) -> None:
        self.store, self.executor, self.sweep, self.bar = store, executor, sweep, bar
        self.pending: dict[Any, list[Point]] = {}
        self.inflight: dict[str, Any] = {}
        self.computed = 0
        self.interrupt_after = interrupt_after
        self.window = window or executor.workers * executor.prefetch
        self.count_rows = True  # the progress bar counts persisted rows (trials count themselves)

    def submit(self, points: list[Point]) -> None:
        """Send a chunk (points already in flight are left out)."""
        points = [p for p in points if p.point_id not in self.inflight]
        if not points:
            return
        f = self.executor.submit(points)
        self.pending[f] = points
        for p in points:
            self.inflight[p.point_id] = f

    def wait(self) -> tuple[Any, list[Point], list[dict[str, Any]]]:
        """Wait for the next finished chunk: (worker id, its points, their rows), not persisted yet."""
        while True:
            try:
                f = self.executor.done.get(timeout=0.25)
            except queue.Empty:
                continue
            if f in self.pending:
                break
        points = self.pending.pop(f)
        for p in points:
            self.inflight.pop(p.point_id, None)
        worker, rows = self.executor.result(f)
        return worker, points, rows

    def persist(self, points: list[Point], rows: list[dict[str, Any]]) -> None:
        """Store a chunk's rows (one commit); stops the run once ``interrupt_after`` points are computed."""
        self.store.put_many([(p.describe(), r) for p, r in zip(points, rows)])
        self.computed += len(rows)
        if self.count_rows:
            self.bar.update(len(rows))
        if self.interrupt_after is not None and self.computed >= self.interrupt_after:
            raise KeyboardInterrupt

    def collect(self) -> list[tuple[Point, dict[str, Any]]]:
        """Wait for the next finished chunk and persist it."""
        _, points, rows = self.wait()
        self.persist(points, rows)
        return list(zip(points, rows))


def _group_key(p: Point) -> tuple:
    """What a worker caches across points (see :class:`_CachedModel`): the model and the workload."""
    return (p.model, p.model_hash, tuple(sorted(p.dims.items())), json.dumps(p.workload, sort_keys=True),
            json.dumps(p.options, sort_keys=True, default=str))


class _Scheduler:
    """Chunks of points for the workers, grouped by workload so that each worker builds few workloads.

    A worker is known by the id its chunks return with. It gets its next chunk from the group it is on; when that
    is empty, from a group no worker has started; at the end, from the largest group left. Chunk sizes aim at
    :data:`CHUNK_TARGET_S` of work from the median measured time per point, and shrink so that what is left is
    spread over all workers.
    """

    def __init__(self, points: list[Point], workers: int, chunked: bool) -> None:
        self.groups: dict[tuple, deque[Point]] = {}
        self.remaining = 0
        self.add(points)
        self.workers = workers
        self.chunked = chunked
        self.started: set[tuple] = set()
        self.on: dict[Any, tuple] = {}  # worker id -> the group it is on
        self.times: deque[float] = deque(maxlen=64)

    def add(self, points: Iterable[Point]) -> None:
        """More points to hand out (a streamed grid arrives in batches)."""
        for p in points:
            self.groups.setdefault(_group_key(p), deque()).append(p)
            self.remaining += 1

    def observe(self, worker: Any, points: list[Point], rows: list[dict[str, Any]]) -> None:
        """Learn from a returned chunk: which group that worker is on, and how long points take."""
        if points:
            self.on[worker] = _group_key(points[-1])
        self.times.extend(r["sim_s"] for r in rows if isinstance(r.get("sim_s"), float))

    def size(self) -> int:
        """Points for the next chunk."""
        if not self.chunked:
            return 1
        n = FIRST_CHUNK if not self.times else int(CHUNK_TARGET_S / max(statistics.median(self.times), 1e-6))
        return max(1, min(n, MAX_CHUNK, math.ceil(self.remaining / (2 * self.workers))))

    def next(self, worker: Any = None) -> list[Point]:
        """The next chunk, for ``worker`` when known (empty when every point has been handed out)."""
        key = self.on.get(worker) if worker is not None else None
        if key is None or not self.groups.get(key):
            fresh = [k for k, q in self.groups.items() if q and k not in self.started]
            left = [k for k, q in self.groups.items() if q]
            if not left:
                return []
            key = fresh[0] if fresh else max(left, key=lambda k: len(self.groups[k]))
        self.started.add(key)
        if worker is not None:
            self.on[worker] = key
        group = self.groups[key]
        chunk = [group.popleft() for _ in range(min(self.size(), len(group)))]
        self.remaining -= len(chunk)
        return chunk


def _objective_values(sweep: Sweep, row: dict[str, Any]) -> list[float] | None:
    values = [row.get(o.metric) for o in sweep.spec.objectives]
    if any(v is None or not math.isfinite(v) for v in values):
        return None
    return [float(v) for v in values]


STREAM_BATCH = 2048  # grid combinations turned into points (and looked up in the store) at a time


class _GridFeed:
    """Streams a grid (or a random subset) into points batch by batch: each batch is recorded as the spec's
    members, looked up in the store (known points count as done at once), and what is left is handed to the
    scheduler. A 10^6-point grid thus starts simulating (and shows progress) after its first batch."""

    def __init__(self, sweep: Sweep, store: Store, combos: Iterable[dict[str, Any]], bar: Any) -> None:
        self.sweep, self.store, self.bar = sweep, store, bar
        self.combos = iter(combos)
        self.seen: set[str] = set()
        self.total = 0  # distinct points so far
        self.cached = 0
        self.exhausted = False

    def next_batch(self) -> list[Point]:
        """The next points to simulate ([] once the grid is exhausted)."""
        while not self.exhausted:
            batch: dict[str, Point] = {}
            for c in itertools.islice(self.combos, STREAM_BATCH):
                p = self.sweep.point(c)
                if p.point_id in self.seen or p.point_id in batch:
                    self.bar.update(1)  # the same point again (8 and 8.0, gen_len under decode): done once
                    continue
                batch[p.point_id] = p
            if not batch:
                self.exhausted = True
                break
            self.seen.update(batch)
            self.total += len(batch)
            self.store.add_members(self.sweep.spec_hash, list(batch))
            known = self.store.known(batch)
            self.cached += len(known)
            self.bar.update(len(known))
            todo = [p for pid, p in batch.items() if pid not in known]
            if todo:
                return todo
        return []


def _run_points(driver: _Driver, feed: _GridFeed, before_first: Callable[[list[Point]], None] | None = None) -> None:
    sched = _Scheduler([], driver.executor.workers, driver.executor.chunked)
    low_water = 2 * driver.window * MAX_CHUNK

    def top_up() -> None:
        while not feed.exhausted and sched.remaining < low_water:
            sched.add(feed.next_batch())

    first = feed.next_batch()
    if before_first is not None:
        before_first(first)
    sched.add(first)
    top_up()
    while len(driver.pending) < driver.window:
        chunk = sched.next()
        if not chunk:
            break
        driver.submit(chunk)
    while driver.pending:
        worker, done, rows = driver.wait()
        try:
            sched.observe(worker, done, rows)
            top_up()
            # refill first, so the worker that just finished (the idle one) picks up a chunk of its own group
            while len(driver.pending) < driver.window:
                chunk = sched.next(worker)
                if not chunk:
                    break
                driver.submit(chunk)
                worker = None
        finally:
            driver.persist(done, rows)


def _run_optuna(driver: _Driver, sweep: Sweep, trials: int, strategy: str, seed: int) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    constraints = sweep.spec.constraints

    def constraints_func(trial: Any) -> list[float]:
        return trial.user_attrs.get("constraints", [1.0] * len(constraints))

    new_api = hasattr(optuna.trial.Trial, "set_constraint")  # optuna >= 5: constraints set on the trial
    cf_ = constraints_func if constraints and not new_api else None
    sampler = (optuna.samplers.NSGAIISampler(seed=seed, constraints_func=cf_) if strategy == "nsga2"
               else optuna.samplers.TPESampler(seed=seed, multivariate=True, constraints_func=cf_))
    study = optuna.create_study(directions=["minimize" if o.direction == "min" else "maximize"
                                            for o in sweep.spec.objectives], sampler=sampler)
    dists = {name: optuna.distributions.CategoricalDistribution(values)
             for name, values in sweep.axes.items() if len(values) > 1}
    fixed = {name: values[0] for name, values in sweep.axes.items() if len(values) == 1}

    def finish(trial: Any, row: dict[str, Any]) -> None:
        trial.set_user_attr("point_id", row["point_id"])
        if constraints:
            violations = [c.violation(row) for c in constraints]
            if new_api:
                for i, v in enumerate(violations):
                    trial.set_constraint(f"c{i}", v)
            else:
                trial.set_user_attr("constraints", violations)
        values = _objective_values(sweep, row)
        if values is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, values)

    # Trials are told in the order they were asked, and a new trial is asked only when the oldest one is told:
    # the sequence of trials then depends on the seed and on ``parallel_trials`` alone, never on which worker
    # finished first. A resumed run replays that sequence, answering from the store what an earlier run computed,
    # so it ends with exactly the study (and point set) of an uninterrupted run.
    window = sweep.spec.parallel_trials
    order: deque[tuple[Any, Point]] = deque()
    ready: dict[str, dict[str, Any]] = {}
    asked = 0
    while True:
        while asked < trials and len(order) < window:
            trial = study.ask(dists)
            asked += 1
            combo = {**fixed, **trial.params}
            p = sweep.point({n: combo[n] for n in sweep.axes})
            driver.store.add_members(sweep.spec_hash, [p.point_id])
            order.append((trial, p))
            if p.point_id in ready or p.point_id in driver.inflight:
                continue
            row = driver.store.get(p.point_id)
            if row is not None:
                ready[p.point_id] = row
            else:
                driver.submit([p])
        if not order:
            break
        trial, p = order.popleft()
        while p.point_id not in ready:
            for point, row in driver.collect():
                ready[point.point_id] = row
        finish(trial, ready[p.point_id])
        driver.bar.update(1)


def _warm(executor: Executor, points: list[Point]) -> None:
    """Load each model (and the simulator's modules) in the driver before a forking pool starts its workers, so
    that every worker inherits them instead of importing the same graph again (in-process, the driver is the
    worker: loading up front only moves that time before the first point)."""
    if not isinstance(executor, (PoolExecutor, SerialExecutor)) or not points:
        return
    import simulator.simulate  # noqa: F401 - imported for the forked workers

    for p in {(p.model, p.model_hash, tuple(sorted(p.dims.items()))): p for p in points}.values():
        try:
            _model(p.model, p.model_hash, p.dims)
        except HwsimError:
            pass  # the point itself reports the error



class _LineStream:
    """stderr off a terminal (a CI log, a pipe): each refresh of the bar as a line of its own, not ``\\r``
    overwrites."""

    def write(self, text: str) -> None:
        text = text.replace("\r", "").rstrip("\n")
        if text.strip():
            sys.stderr.write(text + "\n")

    def flush(self) -> None:
        sys.stderr.flush()


def _bar_output() -> dict[str, Any]:
    """tqdm's output settings: an animated bar on a terminal, else a line every ``PROGRESS_LINE_S`` seconds (as
    ``simulate`` and ``serve`` do, :mod:`simulator.progress`)."""
    from simulator.progress import PROGRESS_LINE_S

    if sys.stderr.isatty():
        return {"file": sys.stderr, "dynamic_ncols": True}
    return {"file": _LineStream(), "mininterval": PROGRESS_LINE_S, "ncols": 100}

def run_sweep(sweep: Sweep, out_dir: str | Path, executor: Executor | None = None, strategy: str | None = None,
              trials: int | None = None, resume: bool = False, progress: bool = True,
              interrupt_after: int | None = None, on_message: Callable[[str], None] | None = None) -> SweepOutcome:
    """Run a sweep into ``out_dir`` (store ``sweep.sqlite``); returns the rows of every point of the spec.

    ``interrupt_after`` stops the run as Ctrl-C would after that many computed points (for tests).
    Raises :class:`SweepInterrupted` when stopped; the finished points stay in the store.
    """
    from tqdm import tqdm

    strategy = strategy or sweep.spec.strategy
    trials = trials or sweep.spec.trials
    if strategy in ("random", "nsga2", "tpe") and not trials:
        raise HwsimError(f"strategy '{strategy}' needs a trial budget (--trials N or 'trials:' in the spec)")
    say = on_message or (lambda _m: None)
    out = Path(out_dir)
    store = Store(out / "sweep.sqlite")
    if resume and store.last_status(sweep.spec_hash) is None:
        say(f"note: nothing to resume in {out}; starting the sweep")
    own_executor = executor is None
    executor = executor or make_executor()
    run_id = store.start_run(sweep.spec_hash)
    start = time.perf_counter()
    cached = total = 0
    warm_s = 0.0
    bar = None
    driver = None
    status = "failed"
    previous = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
    if previous is not None:  # `kill PID` stops a sweep as Ctrl-C does: the run's status stays true
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        if strategy in ("grid", "random"):
            if strategy == "grid":
                combos: Iterable[dict[str, Any]] = sweep.iter_grid()
                n_combos = sweep.size
            else:
                rng = random.Random(sweep.spec.seed)
                n_combos = min(trials, sweep.size)
                combos = map(sweep.combo_at, sorted(rng.sample(range(sweep.size), n_combos)))
            bar = tqdm(total=n_combos, unit="pt", desc=f"sweep {sweep.spec.name}", disable=not progress,
                       smoothing=0.1, **_bar_output())
            driver = _Driver(store, executor, sweep, bar, interrupt_after)
            feed = _GridFeed(sweep, store, combos, bar)

            def warm(first: list[Point]) -> None:
                nonlocal warm_s
                t0 = time.perf_counter()
                _warm(executor, first)
                warm_s = time.perf_counter() - t0

            try:
                _run_points(driver, feed, warm)
            finally:
                total, cached = feed.total, feed.cached
        elif strategy in ("nsga2", "tpe"):
            total = trials
            bar = tqdm(total=total, unit="trial", desc=f"{strategy} {sweep.spec.name}", disable=not progress,
                       smoothing=0.1, **_bar_output())
            # one point per task: the sampler asks for trials one at a time and learns from each result
            driver = _Driver(store, executor, sweep, bar, interrupt_after, window=sweep.spec.parallel_trials)
            driver.count_rows = False
            _run_optuna(driver, sweep, trials, strategy, sweep.spec.seed)
            cached = trials - driver.computed
        else:
            raise HwsimError(f"unknown strategy '{strategy}'; use grid, random, nsga2 or tpe")
        status = "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        executor.cancel(list(driver.pending) if driver is not None else [])
        done = store.count_results(sweep.spec_hash)
        raise SweepInterrupted(done, max(total, done)) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if bar is not None:
            bar.close()
        store.end_run(run_id, status)
        if own_executor:
            executor.close()
        elapsed = time.perf_counter() - start
        points = store.count_results(sweep.spec_hash)
        store.close()
    computed = driver.computed if driver is not None else 0
    return SweepOutcome(total, computed, cached, elapsed, strategy, executor.workers,
                        [k.removeprefix("param:") for k in sweep.axes if k.startswith("param:")]
                        + (["techniques"] if "techniques" in sweep.axes else []), warm_s,
                        out / "sweep.sqlite", sweep.spec_hash, points)


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
