"""Target plugins: everything hwsim knows about one kind of target, behind one narrow interface.

A plugin names its ``kind``, the preset schema (:class:`hardware.targets.TargetBase` subclass), its typed options
(a pydantic model, filled from ``--mode``, ``--tp`` and ``--set KEY=VALUE``), its native number format, the memory
a model must fit in, a check of a model and precision against the target, and ``lower``: one workload to a
:class:`mapping.program.Program`. The engine, CLI, sweeps and reports only ever talk to this interface.

Plugins are registered in one place, :func:`register`. The bundled ones are found as ``mapping/<package>/plugin.py``
modules that define ``PLUGIN``; an installed package can add its own through the ``hwsim.targets`` entry-point
group, and a test can call :func:`register` directly. Adding a target is one package under ``hardware/`` (schema
and component models), one under ``mapping/`` (plugin and lowering) and a preset.
"""

from __future__ import annotations

import difflib
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from hardware.discovery import bundled_modules
from hardware.errors import DoesNotFit, HwsimError
from hardware.targets import TargetBase, register_schema
from mapping.op_costs import QUANTISED_WEIGHTS, Precision
from mapping.program import Program

if TYPE_CHECKING:
    from mapping.workloads import Model, Workload


class TargetOptions(BaseModel):
    """Options every target takes. Subclasses add their own fields; each field's ``description`` is its help."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["fast", "detailed"] = "fast"

    @classmethod
    def parse(cls, raw: dict[str, Any] | TargetOptions | None) -> TargetOptions:
        """Validate raw values (``--mode``, ``--tp``, ``--set``); an error names the flag and what is allowed."""
        if isinstance(raw, cls):
            return raw
        raw = dict(raw or {})
        for key, value in raw.items():  # pydantic reads true/false as 1/0: `--set kv_heads=true` is not one KV head
            field = cls.model_fields.get(key)
            if isinstance(value, bool) and field is not None and not _takes_bool(field.annotation):
                raise HwsimError(f"{_given(key, str(value).lower())}: expected {_expected(field.annotation)}, "
                                 "not true/false")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            msg = err["msg"].removeprefix("Value error, ")
            if not err["loc"]:  # a check across fields: its message names them
                raise HwsimError(msg) from None
            key = str(err["loc"][0])
            if err["type"] == "extra_forbidden":
                msg = f"not an option of these targets; options: {', '.join(cls.model_fields)}"
            raise HwsimError(f"{_given(key, raw.get(key))}: {msg}") from None


def _given(key: str, value: object) -> str:
    """How the user gave option ``key``: its own flag (``--mode``, ``--tp``) or ``--set KEY=VALUE``."""
    return f"--{key} {value}" if key in ("mode", "tp") else f"--set {key}={value}"


def _takes_bool(annotation: Any) -> bool:
    """Whether a field's type admits ``True``/``False`` (``bool``, or a union with it)."""
    return annotation is bool or any(_takes_bool(a) for a in get_args(annotation) if not isinstance(a, str))


def _expected(annotation: Any) -> str:
    """What a field takes, for an error: its Literal values, else a number."""
    names = [a for a in get_args(annotation) if isinstance(a, str)]
    return "one of " + ", ".join(names) if names else "a number"


class Lowering:
    """Lowers the workloads of one simulation run, in order; may keep state across them (refresh debt, caches)."""

    def __init__(self, plugin: TargetPlugin, spec: TargetBase, options: TargetOptions) -> None:
        self.plugin, self.spec, self.options = plugin, spec, options

    def lower(self, workload: Workload) -> Program:
        """The program of ``workload`` (default: the plugin's stateless :meth:`TargetPlugin.lower`)."""
        return self.plugin.lower(workload, self.spec, self.options)


class TargetPlugin:
    """One kind of target. Subclasses set the class attributes and implement :meth:`lower` (or :meth:`session`)."""

    kind: ClassVar[str] = ""
    schema: ClassVar[type[TargetBase]]
    options: ClassVar[type[TargetOptions]] = TargetOptions
    #: Number format computed in natively, used where the user gives no precision.
    native_dtype: ClassVar[str] = "float16"

    # -- options ---------------------------------------------------------------------------------------------
    def parse_options(self, raw: dict[str, Any] | TargetOptions | None) -> TargetOptions:
        """Validate ``--mode``/``--tp``/``--set`` values into this kind's options; errors name the flag and fix."""
        if isinstance(raw, self.options):
            return raw
        raw = {k: v for k, v in dict(raw or {}).items() if v is not None}
        fields = self.options.model_fields
        if "tp" in raw and "tp" not in fields:
            if raw["tp"] in (1, "1"):
                raw.pop("tp")
            else:
                raise HwsimError(f"--tp {raw['tp']}: {self.kind} targets have no tensor parallelism; drop --tp")
        for key in raw:
            if key not in fields:
                raise HwsimError(f"--set {key}: not an option of {self.kind} targets{self._hint(key)}; options: "
                                 f"{self.options_help()}")
        return self.options.parse(raw)

    def _hint(self, key: str) -> str:
        """What ``key`` most likely meant: a close spelling of one of this kind's options, or the other target
        kinds that have it."""
        close = difflib.get_close_matches(key, [k for k in self.options.model_fields if k not in ("mode", "tp")], n=1,
                                          cutoff=0.75)
        if close:
            return f" (did you mean --set {close[0]}?)"
        others = [p.kind for p in plugins() if p.kind != self.kind and key in p.options.model_fields]
        return f" (it is an option of {' and '.join(others)} targets)" if others else ""

    def options_help(self) -> str:
        """One line listing this kind's ``--set`` options with their help."""
        rows = [f"{name} ({f.description or f.annotation})" for name, f in self.options.model_fields.items()
                if name not in ("mode", "tp")]
        return ", ".join(rows) or "none"

    # -- model against target --------------------------------------------------------------------------------
    def native_format(self, spec: TargetBase) -> str:
        """The format used for tensors whose precision the user left open."""
        return self.native_dtype

    def default_precision(self, spec: TargetBase, precision: Precision) -> Precision:
        """``precision`` with unset formats filled by the native one (the embedding tables and LM head too, under
        quantised weights: see :class:`mapping.op_costs.Precision`)."""
        native = self.native_format(spec)
        head = precision.head or (native if precision.weights in QUANTISED_WEIGHTS else None)
        return Precision(precision.weights or native, precision.activations or native, precision.kv_cache or native,
                         head)

    #: the flags that spread a model over several devices of this kind (the does-not-fit message names them)
    split_hint = "--devices N"

    def capacity_bytes(self, spec: TargetBase, options: TargetOptions) -> int:
        """Memory the weights and KV cache must fit in (bytes), over all devices the options use."""
        raise NotImplementedError

    def weight_bytes(self, model: Model, options: TargetOptions, precision: Precision) -> int:
        """Bytes of weights the run holds over all its devices (``model``'s own, plus what the options keep a copy
        of on every device); default: the model's."""
        return model.weight_bytes(precision)

    def check(self, model: Model, spec: TargetBase, options: TargetOptions, precision: Precision) -> None:
        """Refuse what this target cannot run (HwsimError naming the flag); default: nothing to refuse."""

    def model_for(self, model: Model, options: TargetOptions) -> Model:
        """``model`` as this target's options see it (an override of what recognition found); default: unchanged."""
        return model

    def check_fits(self, model_path: str, spec: TargetBase, options: TargetOptions, weight_bytes: int,
                   kv_bytes: int) -> int:
        """Raise :class:`DoesNotFit` unless weights plus KV cache fit; returns the capacity (bytes)."""
        capacity = int(self.capacity_bytes(spec, options))
        need = weight_bytes + kv_bytes
        if need > capacity:
            raise DoesNotFit(
                f"{model_path} does not fit {spec.name}: needs {need / 2**30:.2f} GiB (weights "
                f"{weight_bytes / 2**30:.2f} GiB + KV cache {kv_bytes / 2**30:.2f} GiB) but the target holds "
                f"{capacity / 2**30:.2f} GiB; use a smaller model, precision or batch, or split it over devices "
                f"({self.split_hint})", need, capacity)
        return capacity

    # -- lowering ----------------------------------------------------------------------------------------------
    def session(self, spec: TargetBase, options: TargetOptions) -> Lowering:
        """A lowering for one simulation run (override to keep state across its workloads)."""
        return Lowering(self, spec, options)

    def lower(self, workload: Workload, spec: TargetBase, options: TargetOptions) -> Program:
        """The program of ``workload`` on ``spec``."""
        raise NotImplementedError


_PLUGINS: dict[str, TargetPlugin] = {}
_DISCOVERED = False


def register(plugin: TargetPlugin) -> TargetPlugin:
    """Register ``plugin`` (and its preset schema) under ``plugin.kind``; returns it."""
    if not plugin.kind:
        raise HwsimError(f"target plugin {type(plugin).__name__} has no kind")
    if plugin.schema.KIND != plugin.kind:
        raise HwsimError(f"target plugin '{plugin.kind}': its schema {plugin.schema.__name__} validates kind "
                         f"'{plugin.schema.KIND}'")
    register_schema(plugin.schema)
    _PLUGINS[plugin.kind] = plugin
    return plugin


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    for module in bundled_modules("mapping", Path(__file__).parent, "plugin"):
        if isinstance(getattr(module, "PLUGIN", None), TargetPlugin) and module.PLUGIN.kind not in _PLUGINS:
            register(module.PLUGIN)
    for entry in metadata.entry_points(group="hwsim.targets"):
        plugin = entry.load()
        if isinstance(plugin, TargetPlugin) and plugin.kind not in _PLUGINS:
            register(plugin)


def plugin_for(kind: str) -> TargetPlugin:
    """The plugin of target kind ``kind``."""
    _discover()
    if kind not in _PLUGINS:
        raise HwsimError(f"no target plugin for kind '{kind}'; installed: {', '.join(sorted(_PLUGINS))}")
    return _PLUGINS[kind]


def plugins() -> list[TargetPlugin]:
    """Every registered plugin, by kind."""
    _discover()
    return [_PLUGINS[k] for k in sorted(_PLUGINS)]
