"""The sweep spec: a YAML file validated by pydantic, and the design points it spans.

A point is a model file, a resolved target (the base preset with the swept fields replaced) and a workload
(phase, batch, prompt_len, gen_len, precision). Its ``point_id`` is a stable hash of the model file's content, the
resolved target as JSON, the workload and the simulation options, so the same point always has the same id.

An axis must change something: one over a field that no model reads under the spec's settings (declared per field
by the target schema's ``FIELD_USE``, e.g. ``graph_launch_overhead`` without ``options: {launch: graph}``), over a
label (``name``, ``description``) or over a source or unit string is refused with the reason.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import itertools
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hardware.dtypes import parse_precision
from hardware.errors import HwsimError
from hardware.field_use import LABELS, FieldUse, Settings
from hardware.targets import format_validation_error, load_target, schema_for, target_from_dict
from hardware.yaml_file import read_yaml
from mapping.techniques import Techniques

METRICS = ("latency_s", "energy_j", "tokens_per_s", "tokens_per_j")
WORKLOAD_AXES = ("phase", "batch", "prompt_len", "gen_len", "precision")
STRATEGIES = ("grid", "random", "nsga2", "tpe")
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>|==)\s*([-+0-9.eE]+)\s*$")


class Objective(BaseModel):
    """One objective: a metric and its direction."""

    model_config = ConfigDict(extra="forbid")
    metric: Literal["latency_s", "energy_j", "tokens_per_s", "tokens_per_j"]
    direction: Literal["min", "max"] = "min"


class Constraint(BaseModel):
    """``fits_memory`` or ``METRIC OP NUMBER`` (``latency_s <= 0.01``)."""

    model_config = ConfigDict(extra="forbid")
    metric: str
    op: Literal["<=", ">=", "<", ">", "==", "fits"]
    bound: float = 0.0

    def holds(self, row: dict[str, Any]) -> bool:
        """Whether a result row satisfies the constraint (a failed point satisfies none)."""
        if self.op == "fits":
            return bool(row.get("fits_memory"))
        value = row.get(self.metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return {"<=": value <= self.bound, ">=": value >= self.bound, "<": value < self.bound,
                ">": value > self.bound, "==": value == self.bound}[self.op]

    def violation(self, row: dict[str, Any]) -> float:
        """How far the row is from satisfying the constraint (0 when it holds), for Optuna's constraints."""
        if self.holds(row):
            return 0.0
        value = row.get(self.metric)
        if self.op == "fits" or value is None or (isinstance(value, float) and math.isnan(value)):
            return 1.0
        return abs(float(value) - self.bound) / (abs(self.bound) or 1.0) + 1e-12

    def __str__(self) -> str:
        return "fits_memory" if self.op == "fits" else f"{self.metric} {self.op} {self.bound:g}"


CONSTRAINT_FORMS = ("fits_memory", "latency_s <= 0.01", "{latency_s: '<= 0.01'}")


def _parse_constraint(item: Any) -> Constraint:
    """One constraint in any of the spellings :data:`CONSTRAINT_FORMS` shows (a list item in YAML), quoted or not;
    ``fits_memory: true`` also as a string, as YAML reads it when quoted."""
    if isinstance(item, Constraint):
        return item
    if isinstance(item, dict) and len(item) == 1:
        (key, value), = item.items()
        if key == "fits_memory":
            if value is not True:
                raise ValueError("fits_memory: only 'true' is meaningful (leave it out to keep points that do not fit)")
            return Constraint(metric="fits_memory", op="fits")
        if isinstance(key, str) and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return _parse_constraint(f"{key} {value}")
    if isinstance(item, str):
        text = item.strip().strip("'\"").strip()
        if re.fullmatch(r"fits_memory(\s*:\s*true)?", text, flags=re.IGNORECASE):
            return Constraint(metric="fits_memory", op="fits")
        m = _CONSTRAINT.match(text)
        if m and m.group(1) in METRICS:
            try:
                return Constraint(metric=m.group(1), op=m.group(2), bound=float(m.group(3)))
            except ValueError:
                pass
        if m and m.group(1) not in METRICS:
            raise ValueError(f"constraint {item!r}: no metric '{m.group(1)}'; use one of {', '.join(METRICS)}")
    raise ValueError(f"cannot read constraint {item!r}; write a list item such as "
                     + " or ".join(f"`- {f}`" for f in CONSTRAINT_FORMS)
                     + f", with a metric from {', '.join(METRICS)} and a plain number (seconds, joules)")


class WorkloadAxes(BaseModel):
    """Workload axes: every combination is simulated on every hardware point."""

    model_config = ConfigDict(extra="forbid")
    phase: list[Literal["prefill", "decode", "generate"]] = ["decode"]
    batch: list[int] = [1]
    prompt_len: list[int] = [128]
    gen_len: list[int] = [1]
    precision: list[str] = ["default"]
    #: inference techniques, one mapping per value ({} = none): the `hwsim simulate` flags' names with underscores,
    #: e.g. [{}, {window: 4096}, {kv_group: 128}, {draft: small.onnx, spec_tokens: 4, acceptance: 0.8}]
    techniques: list[dict[str, Any]] = [{}]

    @field_validator("techniques", mode="before")
    @classmethod
    def _techniques(cls, value: Any) -> Any:
        values = value if isinstance(value, list) else [value]
        out = []
        for v in values:
            if v in (None, "none", "dense"):
                v = {}
            if not isinstance(v, dict):
                raise ValueError(f"technique {v!r}: give a mapping such as {{window: 4096}} ({{}} for none)")
            try:
                Techniques.from_dict(v, "workload.techniques")
            except HwsimError as exc:
                raise ValueError(str(exc)) from None
            out.append(v)
        return out

    @field_validator("phase", "batch", "prompt_len", "gen_len", "precision", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return value if isinstance(value, list) else [value]

    @field_validator("batch", "prompt_len", "gen_len")
    @classmethod
    def _positive(cls, values: list[int]) -> list[int]:
        if not values:
            raise ValueError("needs at least one value")
        for v in values:
            if v < 1:
                raise ValueError(f"must be >= 1, got {v}")
        return values

    @field_validator("precision")
    @classmethod
    def _precision(cls, values: list[str]) -> list[str]:
        for v in values:
            parse_precision_axis(v)
        return values


def parse_precision_axis(text: str) -> tuple[str | None, str | None, str | None]:
    """``default``, one format for everything (``fp16``), or ``weights/activations/kv_cache`` (``int8/fp16/fp16``)."""
    text = str(text)
    if text == "default":
        return (None, None, None)
    parts = text.split("/")
    if len(parts) == 1:
        parts = parts * 3
    if len(parts) != 3:
        raise ValueError(f"precision '{text}': use 'default', one format (fp16) or weights/activations/kv (int8/fp16/fp16)")
    try:
        w, a, k = (parse_precision(p, f) for p, f in zip(parts, ("weights", "activations", "kv cache")))
    except HwsimError as exc:
        raise ValueError(str(exc)) from None
    return (w, a, k)


class ServingAxes(BaseModel):
    """A serving sweep (``hwsim serve`` at every point): rates x targets x schedulers (x parallel layouts).

    ``targets``: presets to serve on (default: the spec's ``target``, whose ``parameters`` axes then apply);
    ``parallel``: ``--parallel`` layouts (``tp=1,pp=4``), ``none`` for one device. Lengths take ``hwsim serve``'s
    DIST forms; ``slo`` its ``ttft=S,tpot=S``.
    """

    model_config = ConfigDict(extra="forbid")
    rate: list[float]
    scheduler: list[Literal["vllm", "sarathi", "static"]] = ["vllm"]
    targets: list[str] = []
    parallel: list[str] = ["none"]
    requests: int = Field(200, ge=1)
    prompt_len: str = "128"
    gen_len: str = "128"
    slo: str | None = None
    max_batch: int = Field(256, ge=1)
    max_batch_tokens: int | None = Field(None, ge=1)
    seed: int = 0
    shape_grid: int = Field(8, ge=0, le=1024)

    @field_validator("slo")
    @classmethod
    def _slo(cls, value: str | None) -> str | None:
        """``ttft=S,tpot=S`` as ``hwsim serve --slo`` reads it, checked when the spec loads, not at the first point."""
        from hardware.errors import HwsimError
        from simulator.serving.command import _parse_slo

        try:
            _parse_slo(value)
        except HwsimError as exc:
            raise ValueError(str(exc).replace("--slo ", "", 1)) from None
        return value

    @field_validator("rate", "scheduler", "targets", "parallel", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return value if isinstance(value, list) else [value]

    @field_validator("rate")
    @classmethod
    def _rates(cls, values: list[float]) -> list[float]:
        from simulator.serving.arrivals import MAX_RATE, MIN_RATE

        if not values or any(not v > 0 for v in values):
            raise ValueError("rates (requests/s) must be > 0")
        if any(not MIN_RATE <= v <= MAX_RATE for v in values):
            raise ValueError(f"rates must be between {MIN_RATE:g} and {MAX_RATE:g} requests/s")
        return values


SERVING_AXES = ("target_name", "rate", "scheduler", "parallel")


class SweepSpec(BaseModel):
    """A design-space sweep (see examples/pim_sweep.yaml; examples/serving_sweep.yaml for ``serving``)."""

    model_config = ConfigDict(extra="forbid")
    name: str = "sweep"
    models: list[str] = Field(min_length=1)
    dims: dict[str, int] = {}
    target: str
    parameters: dict[str, list[Any]] = {}
    workload: WorkloadAxes = WorkloadAxes()
    objectives: list[Objective] = Field(default=[Objective(metric="latency_s"), Objective(metric="energy_j")],
                                        min_length=1)
    constraints: list[Constraint] = []
    options: dict[str, Any] = {}
    strategy: Literal["grid", "random", "nsga2", "tpe"] = "grid"
    trials: int | None = Field(default=None, ge=1)
    seed: int = 0
    parallel_trials: int = Field(default=8, ge=1, le=4096)  # nsga2/tpe: trials in flight (the sequence depends on it)
    serving: ServingAxes | None = None

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict) and "model" in data:
            data = dict(data)
            if "models" in data:
                raise ValueError("give 'model' or 'models', not both")
            model = data.pop("model")
            data["models"] = model if isinstance(model, list) else [model]
        return data

    @field_validator("objectives", mode="before")
    @classmethod
    def _objectives(cls, value: Any) -> Any:
        if isinstance(value, dict):  # {latency_s: min, energy_j: min}
            return [{"metric": k, "direction": v} for k, v in value.items()]
        if isinstance(value, list):
            return [{"metric": v, "direction": "max" if v in ("tokens_per_s", "tokens_per_j") else "min"}
                    if isinstance(v, str) else v for v in value]
        return value

    @field_validator("constraints", mode="before")
    @classmethod
    def _constraints(cls, value: Any) -> Any:
        if isinstance(value, dict):
            value = [{k: v} if k == "fits_memory" else f"{k} {v}" for k, v in value.items()]
        if not isinstance(value, list):
            raise ValueError("a list of constraints, e.g. ['fits_memory', 'latency_s <= 0.01']")
        return [_parse_constraint(v) for v in value]

    @field_validator("parameters", mode="before")
    @classmethod
    def _parameters(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: v if isinstance(v, list) else [v] for k, v in value.items()}
        return value

    @field_validator("parameters")
    @classmethod
    def _nonempty(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for k, v in value.items():
            if not v:
                raise ValueError(f"axis '{k}' needs at least one value")
        return value


@dataclass
class Point:
    """One design point, ready to send to a worker."""

    point_id: str
    model: str
    model_hash: str
    dims: dict[str, int]
    target: dict[str, Any]
    params: dict[str, Any]
    workload: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """What the store keeps about the point (the resolved target too)."""
        return {"point_id": self.point_id, "model": self.model, "model_hash": self.model_hash, "dims": self.dims,
                "params": self.params, "workload": self.workload, "options": self.options, "target": self.target}


@lru_cache(maxsize=64)
def file_hash(path: str) -> str:
    """SHA-256 of a file's content (the model part of ``point_id``)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def stable_hash(obj: Any) -> str:
    """A short, stable hash of JSON-able data."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:20]


def _resolve_path(data: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """The dict holding the last key of dotted ``path`` and that key; ``x`` for a quantity means ``x.value``."""
    parts = path.split(".")
    node: Any = data
    for i, key in enumerate(parts[:-1]):
        if not isinstance(node, dict) or key not in node:
            raise KeyError(".".join(parts[: i + 1]))
        node = node[key]
        if node is None:
            raise KeyError(".".join(parts[: i + 1]) + " (unset in the preset: sweep the whole field with "
                           "{value, unit, source} values)")
    last = parts[-1]
    if not isinstance(node, dict) or last not in node:
        raise KeyError(path)
    if isinstance(node[last], dict) and "value" in node[last]:
        return node[last], "value"
    if isinstance(node[last], dict):
        raise KeyError(path + " (a group of fields; name one of " + ", ".join(node[last]) + ")")
    return node, last


def field_of_axis(path: str) -> str:
    """The preset field an axis path names (``channels.value`` -> ``channels``)."""
    return path.removesuffix(".value")


def check_axes_are_read(spec: SweepSpec, kind: str, base: dict[str, Any], where: str) -> None:
    """Refuse an axis over a field that no model reads under the spec's settings (its points would all be equal),
    and axes over labels, sources and units. The schema of ``kind`` declares when each field is read."""
    use = field_use(kind)
    activations = tuple(parse_precision_axis(p)[1] for p in spec.workload.precision)
    swept = {field_of_axis(k): v for k, v in spec.parameters.items()}
    settings = Settings(spec.options, activations, tuple(spec.workload.phase), swept)
    for path in spec.parameters:
        name = field_of_axis(path)
        last = path.rsplit(".", 1)[-1]
        why = None
        if last in ("source", "unit"):
            why = f"a {last} is text, not a design parameter; sweep '{path.rsplit('.', 1)[0]}.value'"
        elif name in LABELS:
            why = f"'{name}' is a label no model reads"
        elif name in use and not use[name].read(settings, base):
            why = (f"no model reads '{name}' with this spec's settings: it is read {use[name].when} "
                   f"(options {dict(spec.options) or 'none'}, phases {', '.join(spec.workload.phase)}, precision "
                   f"{', '.join(spec.workload.precision)})")
        if why:
            raise HwsimError(f"{where}: field 'parameters.{path}': axis refused: {why}")


def check_options(options: dict[str, Any], kind: str, where: str) -> None:
    """Refuse the spec's ``options`` when the target kind's plugin refuses them (an unknown key, a value out of range,
    options that contradict each other), before any point runs; what depends on the model is checked per point."""
    from mapping.target_plugin import plugin_for

    try:
        plugin_for(kind).parse_options(dict(options))
    except HwsimError as exc:
        raise HwsimError(f"{where}: field 'options': {exc}") from None


def field_use(kind: str) -> dict[str, FieldUse]:
    """The ``FIELD_USE`` declaration of target kind ``kind``'s schema (empty for a kind without one)."""
    try:
        schema = schema_for(kind)
    except HwsimError:
        return {}
    module = importlib.import_module(schema.__module__)
    return dict(getattr(module, "FIELD_USE", {}))


def apply_params(base: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The base target's JSON data with the swept fields replaced (numbers normalised to the base's type)."""
    data = copy.deepcopy(base)
    for path, value in params.items():
        holder, key = _resolve_path(data, path)
        old = holder[key]
        if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        holder[key] = value
    return data


class Sweep:
    """A loaded spec with its resolved base target: enumerates and builds points."""

    def __init__(self, spec: SweepSpec, where: str = "sweep spec", base_dir: Path | None = None) -> None:
        self.spec = spec
        self.where = where
        base_dir = base_dir or Path.cwd()
        self.models: list[str] = []
        for i, m in enumerate(spec.models):
            path = Path(m)
            if not path.is_absolute() and not path.exists() and (base_dir / path).exists():
                path = base_dir / path
            if not path.exists():
                raise HwsimError(f"{where}: field 'models.{i}': no such model file {m!r}")
            if not path.is_file():
                raise HwsimError(f"{where}: field 'models.{i}': {m!r} is a folder, not an ONNX file")
            self.models.append(str(path))
        try:
            self.base_target = load_target(spec.target)
        except HwsimError as exc:
            raise HwsimError(f"{where}: field 'target': {exc}") from None
        self.base = self.base_target.model_dump(mode="json")
        check_axes_are_read(spec, self.base_target.kind, self.base, where)
        check_options(spec.options, self.base_target.kind, where)
        for path, values in spec.parameters.items():
            for value in values:
                try:
                    data = apply_params(self.base, {path: value})
                except KeyError as exc:
                    raise HwsimError(f"{where}: field 'parameters.{path}': no field '{exc.args[0]}' in target "
                                     f"'{self.base_target.name}' (see `hwsim targets show {spec.target}`)") from None
                try:
                    target_from_dict(data, where)
                except HwsimError as exc:
                    raise HwsimError(f"{where}: field 'parameters.{path}': value {value!r} is not valid: "
                                     f"{str(exc).split(': ', 1)[-1]}") from None
        if spec.strategy in ("random", "nsga2", "tpe") and spec.trials is None:
            raise HwsimError(f"{where}: field 'trials': strategy '{spec.strategy}' needs a trial budget")
        self.axes: dict[str, list[Any]] = {f"param:{k}": v for k, v in spec.parameters.items()}
        self.axes["model"] = self.models
        self.targets: dict[str, dict[str, Any]] = {}
        if spec.serving is not None:
            sv = spec.serving
            if sv.targets and spec.parameters:
                raise HwsimError(f"{where}: field 'serving.targets': give preset 'parameters' or several 'targets', "
                                 "not both (fields differ between target kinds)")
            names = sv.targets or [spec.target]
            for i, name in enumerate(names):
                try:
                    served = load_target(name)
                except HwsimError as exc:
                    raise HwsimError(f"{where}: field 'serving.targets.{i}': {exc}") from None
                self.targets[name] = served.model_dump(mode="json")
                check_options(spec.options, served.kind, where)
            from simulator.serving.distributions import parse_length

            for key in ("prompt_len", "gen_len"):
                try:
                    parse_length(getattr(sv, key), f"serving.{key}")
                except HwsimError as exc:
                    raise HwsimError(f"{where}: field 'serving.{key}': {exc}") from None
            self.axes.update(target_name=names, rate=list(sv.rate), scheduler=list(sv.scheduler),
                             parallel=list(sv.parallel))
        else:
            for name in WORKLOAD_AXES:
                self.axes[name] = list(getattr(spec.workload, name))
            if spec.workload.techniques != [{}]:  # an axis only when given, so that older specs keep their point ids
                techniques = []
                for t in spec.workload.techniques:
                    t = dict(t)
                    if t.get("draft"):
                        draft = Path(t["draft"])
                        if not draft.is_absolute() and not draft.exists() and (base_dir / draft).exists():
                            draft = base_dir / draft
                        if not draft.exists():
                            raise HwsimError(f"{where}: field 'workload.techniques': no such draft model '{t['draft']}'")
                        t["draft"] = str(draft)
                    techniques.append(t)
                self.axes["techniques"] = techniques
        self.spec_hash = stable_hash(spec.model_dump(mode="json", exclude={"strategy", "trials", "seed", "parallel_trials"}))

    @property
    def size(self) -> int:
        """Number of points in the full grid."""
        return math.prod(len(v) for v in self.axes.values())

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of axis values (parameters slowest, so consecutive points share hardware)."""
        return list(self.iter_grid())

    def iter_grid(self) -> Iterator[dict[str, Any]]:
        """:meth:`grid` one combination at a time (a 10^6-point grid is never built in memory)."""
        names = list(self.axes)
        for combo in itertools.product(*(self.axes[n] for n in names)):
            yield dict(zip(names, combo))

    def combo_at(self, index: int) -> dict[str, Any]:
        """The ``index``-th grid combination (same order as :meth:`grid`), without building the grid."""
        combo: dict[str, Any] = {}
        for name in reversed(list(self.axes)):
            values = self.axes[name]
            index, r = divmod(index, len(values))
            combo[name] = values[r]
        return {n: combo[n] for n in self.axes}

    def point(self, combo: dict[str, Any]) -> Point:
        """Build the point of one axis combination."""
        params = {k.removeprefix("param:"): v for k, v in combo.items() if k.startswith("param:")}
        if self.spec.serving is not None:
            target = apply_params(self.targets[combo["target_name"]], params)
            sv = self.spec.serving.model_dump(mode="json", exclude={"rate", "scheduler", "targets", "parallel"})
            workload = {"kind": "serving", **sv, **{k: combo[k] for k in ("rate", "scheduler", "parallel")}}
        else:
            target = apply_params(self.base, params)
            workload = {name: combo[name] for name in WORKLOAD_AXES}
            if "techniques" in combo:
                workload["techniques"] = combo["techniques"]
        if workload.get("kind") == "serving":
            model = combo["model"]
            mhash = file_hash(model)
            pid = stable_hash({"model": mhash, "dims": self.spec.dims, "target": target, "workload": workload,
                               "options": self.spec.options})
            return Point(pid, model, mhash, dict(self.spec.dims), target, params, workload, dict(self.spec.options))
        if workload["phase"] != "generate":
            workload["gen_len"] = 1  # only generate uses it
        model = combo["model"]
        mhash = file_hash(model)
        pid = stable_hash({"model": mhash, "dims": self.spec.dims, "target": target, "workload": workload,
                           "options": self.spec.options})
        return Point(pid, model, mhash, dict(self.spec.dims), target, params, workload, dict(self.spec.options))


def load_spec(path: str | Path) -> Sweep:
    """Read and validate a sweep spec; errors are one line naming the field."""
    path = Path(path)
    if not path.exists():
        raise HwsimError(f"{path}: no such sweep spec")
    return sweep_from_dict(read_yaml(path), str(path), path.parent)


def sweep_from_dict(data: Any, where: str = "sweep spec", base_dir: Path | None = None) -> Sweep:
    """Validate parsed spec data."""
    if not isinstance(data, dict):
        raise HwsimError(f"{where}: a sweep spec must be a YAML mapping with 'models', 'target' and axes")
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise HwsimError(format_validation_error(
            exc, where, "the sweep spec fields in the README's `hwsim sweep` section and examples/*_sweep.yaml")) from None
    return Sweep(spec, where, base_dir)
