"""Token-length distributions for ``--prompt-len`` and ``--gen-len``.

``128`` (a constant), ``uniform:A,B`` (integers A..B inclusive), ``normal:MU,SIGMA``, ``lognormal:MU,SIGMA``
(``exp`` of a normal with that mean and deviation, numpy's convention), ``zipf:A,MAX`` (Zipf with exponent
``A > 1``, truncated at ``MAX``). Samples are rounded to integers and clipped to at least 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hardware.errors import HwsimError


@dataclass(frozen=True)
class LengthDist:
    """A parsed length distribution: ``kind`` and its parameters."""

    kind: str
    params: tuple[float, ...]
    text: str

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` integer lengths (>= 1)."""
        p = self.params
        if self.kind == "const":
            x = np.full(n, p[0])
        elif self.kind == "uniform":
            x = rng.integers(int(p[0]), int(p[1]) + 1, n)
        elif self.kind == "normal":
            x = rng.normal(p[0], p[1], n)
        elif self.kind == "lognormal":
            x = rng.lognormal(p[0], p[1], n)
        else:  # zipf, truncated by resampling the tail onto the range
            x = rng.zipf(p[0], n)
            x = np.where(x > p[1], rng.integers(1, int(p[1]) + 1, n), x)
        return np.maximum(1, np.rint(x)).astype(np.int64)

    @property
    def mean(self) -> float:
        """The mean of the distribution before rounding (approximate for zipf); for reports."""
        p = self.params
        if self.kind == "const":
            return p[0]
        if self.kind == "uniform":
            return (p[0] + p[1]) / 2
        if self.kind == "normal":
            return p[0]
        if self.kind == "lognormal":
            return float(np.exp(p[0] + p[1] ** 2 / 2))
        return float(np.mean(np.random.default_rng(0).zipf(p[0], 10000).clip(1, p[1])))


_ARITY = {"uniform": 2, "normal": 2, "lognormal": 2, "zipf": 2}


def parse_length(text: str, flag: str) -> LengthDist:
    """Parse a DIST for ``flag``; a bad one is a HwsimError naming the flag and the forms allowed."""
    forms = "N, uniform:A,B, normal:MU,SIGMA, lognormal:MU,SIGMA or zipf:A,MAX"
    text = str(text).strip()
    if text.isdigit():
        if int(text) < 1:
            raise HwsimError(f"{flag} {text}: a length must be >= 1")
        return LengthDist("const", (float(text),), text)
    kind, _, rest = text.partition(":")
    if kind not in _ARITY:
        raise HwsimError(f"{flag} {text}: unknown distribution '{kind}'; use {forms}")
    try:
        params = tuple(float(v) for v in rest.split(","))
    except ValueError:
        raise HwsimError(f"{flag} {text}: parameters must be numbers; use {forms}") from None
    if len(params) != _ARITY[kind]:
        raise HwsimError(f"{flag} {text}: {kind} takes {_ARITY[kind]} parameters; use {forms}")
    bad = ((kind == "uniform" and not 1 <= params[0] <= params[1]) or (kind in ("normal", "lognormal") and params[1] < 0)
           or (kind == "normal" and params[0] < 1) or (kind == "zipf" and (params[0] <= 1 or params[1] < 1)))
    if bad or not all(np.isfinite(params)):
        raise HwsimError(f"{flag} {text}: invalid parameters (uniform needs 1 <= A <= B, normal MU >= 1 and "
                         "SIGMA >= 0, lognormal SIGMA >= 0, zipf A > 1 and MAX >= 1)")
    return LengthDist(kind, params, text)
