"""Request streams: arrival times and lengths, from a process (Poisson, gamma) or a trace file.

``poisson:RATE``: exponential gaps with mean ``1 / RATE`` (requests per second). ``gamma:RATE,CV``: gamma gaps with
the same mean and coefficient of variation ``CV`` (CV > 1 is burstier than Poisson, CV = 1 is Poisson).
``trace:FILE.csv``: one request per row with columns ``arrival_s,prompt_len,gen_len`` (a header row naming them).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hardware.errors import HwsimError
from simulator.serving.distributions import LengthDist
from simulator.serving.request import Request

#: arrival rates hwsim accepts (requests/s): one request in about 12 days up to a billion a second. Outside them a
#: run's clock overflows what its reports can state (1e-300 requests/s gives times of 1e300 s) or is not serving.
MIN_RATE, MAX_RATE = 1e-6, 1e9
#: gamma coefficients of variation accepted (shape 1 / CV^2 from 1e6 down to 1e-6)
MIN_CV, MAX_CV = 1e-3, 1e3


def check_rate(flag: str, text: str, rate: float) -> None:
    """One-line error unless ``rate`` (requests/s) is within [MIN_RATE, MAX_RATE]."""
    if not (np.isfinite(rate) and MIN_RATE <= rate <= MAX_RATE):
        raise HwsimError(f"{flag} {text}: a rate must be between {MIN_RATE:g} and {MAX_RATE:g} requests/s, got {rate:g}")


@dataclass(frozen=True)
class ArrivalSpec:
    """A parsed ``--arrivals`` value."""

    kind: str  # poisson | gamma | trace
    rate: float = 0.0
    cv: float = 1.0
    path: str = ""
    text: str = ""

    def with_rate(self, rate: float) -> ArrivalSpec:
        """The same process at another rate (``--sweep-rate``)."""
        if self.kind == "trace":
            raise HwsimError("--sweep-rate needs --arrivals poisson:RATE or gamma:RATE,CV, not a trace")
        return ArrivalSpec(self.kind, rate, self.cv, self.path, f"{self.kind}:{rate:g}" +
                           (f",{self.cv:g}" if self.kind == "gamma" else ""))


def parse_arrivals(text: str) -> ArrivalSpec:
    """Parse ``--arrivals``; errors name the flag and the forms allowed."""
    forms = "poisson:RATE, gamma:RATE,CV or trace:FILE.csv"
    kind, _, rest = str(text).partition(":")
    if kind == "trace":
        if not rest or not Path(rest).is_file():
            raise HwsimError(f"--arrivals {text}: trace file '{rest}' not found")
        return ArrivalSpec("trace", path=rest, text=text)
    if kind not in ("poisson", "gamma"):
        raise HwsimError(f"--arrivals {text}: unknown arrival process '{kind}'; use {forms}")
    try:
        values = [float(v) for v in rest.split(",")]
    except ValueError:
        raise HwsimError(f"--arrivals {text}: RATE and CV must be numbers; use {forms}") from None
    if len(values) != (1 if kind == "poisson" else 2):
        raise HwsimError(f"--arrivals {text}: {kind} takes {'RATE' if kind == 'poisson' else 'RATE,CV'}")
    if not all(np.isfinite(values)) or values[0] <= 0 or (kind == "gamma" and values[1] <= 0):
        raise HwsimError(f"--arrivals {text}: RATE (requests/s) and CV must be > 0")
    check_rate("--arrivals", text, values[0])
    if kind == "gamma" and not MIN_CV <= values[1] <= MAX_CV:
        raise HwsimError(f"--arrivals {text}: CV must be between {MIN_CV:g} and {MAX_CV:g}, got {values[1]:g}")
    return ArrivalSpec(kind, values[0], values[1] if kind == "gamma" else 1.0, text=text)


def make_requests(spec: ArrivalSpec, n: int, prompt: LengthDist, gen: LengthDist, seed: int) -> list[Request]:
    """``n`` requests sorted by arrival (a trace gives its first ``n`` rows, all of them if ``n`` is 0)."""
    if spec.kind == "trace":
        return read_trace(spec.path, n)
    if n < 1:
        raise HwsimError(f"--requests must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    gaps_rng, prompt_rng, gen_rng = (np.random.default_rng(s) for s in rng.integers(0, 2**63, 3))
    if spec.kind == "poisson":
        gaps = gaps_rng.exponential(1.0 / spec.rate, n)
    else:
        shape = 1.0 / spec.cv**2
        gaps = gaps_rng.gamma(shape, 1.0 / (spec.rate * shape), n)
    arrivals = np.cumsum(gaps)
    prompts, gens = prompt.sample(prompt_rng, n), gen.sample(gen_rng, n)
    return [Request(i, float(arrivals[i]), int(prompts[i]), int(gens[i])) for i in range(n)]


def read_trace(path: str, n: int = 0) -> list[Request]:
    """Requests from a CSV with columns arrival_s, prompt_len, gen_len; errors name the file, line and column."""
    out: list[Request] = []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"arrival_s", "prompt_len", "gen_len"} - set(reader.fieldnames or ())
        if missing:
            raise HwsimError(f"{path}: missing column(s) {', '.join(sorted(missing))}; a trace needs a header "
                             "arrival_s,prompt_len,gen_len")
        for line, row in enumerate(reader, start=2):
            try:
                arrival, p, g = float(row["arrival_s"]), int(row["prompt_len"]), int(row["gen_len"])
            except (TypeError, ValueError):
                raise HwsimError(f"{path}:{line}: arrival_s must be a number and prompt_len, gen_len integers") from None
            if not np.isfinite(arrival) or arrival < 0 or p < 1 or g < 1:
                raise HwsimError(f"{path}:{line}: need arrival_s >= 0, prompt_len >= 1 and gen_len >= 1")
            out.append(Request(len(out), arrival, p, g))
            if n and len(out) >= n:
                break
    if not out:
        raise HwsimError(f"{path}: the trace has no requests")
    out.sort(key=lambda r: r.arrival_s)
    for i, r in enumerate(out):
        r.rid = i
    return out
