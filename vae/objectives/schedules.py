"""Weight schedules: a weight (β, a capacity, a penalty) as a function of the optimisation step.

A schedule is a small callable ``schedule(step) -> float`` with a JSON-able :meth:`Schedule.config`.
``step`` is the global optimisation step, counted from 0 (the number of optimiser updates made
before the current batch), which is what :class:`vae.objectives.Context` carries. Every weight of
every objective accepts a number, a :class:`Schedule` or a schedule's config dict:

>>> from vae.objectives import ELBO
>>> warm = LinearWarmup(start=0.0, end=1.0, steps=100)
>>> [warm(s) for s in (0, 50, 100, 1000)]
[0.0, 0.5, 1.0, 1.0]
>>> ELBO(beta=warm).config()["beta"]
{'schedule': 'linear_warmup', 'start': 0.0, 'end': 1.0, 'steps': 100, 'delay': 0}
>>> cyc = Cyclical(start=0.0, end=1.0, period=100, ratio=0.5)      # Fu et al. 2019
>>> [cyc(s) for s in (0, 25, 50, 99, 100, 125)]
[0.0, 0.5, 1.0, 1.0, 0.0, 0.5]
>>> make_schedule(warm.config()) == warm, make_schedule(2.5)(10**6)
(True, 2.5)
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Mapping, Union

__all__ = ["Schedule", "Constant", "LinearWarmup", "Cyclical", "SCHEDULES", "make_schedule", "schedule_config",
           "WeightSpec"]


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value!r}")
    return float(value)


def _count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _step(step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be an integer >= 0; got {step!r}")
    return step


class Schedule:
    """Base class: ``schedule(step) -> float``; ``config()`` -> ``{"schedule": name, **fields}``."""

    name: ClassVar[str] = ""

    def __call__(self, step: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {"schedule": self.name, **asdict(self)}  # type: ignore[call-overload]


@dataclass(frozen=True)
class Constant(Schedule):
    """The same value at every step.

    >>> Constant(4.0)(123)
    4.0
    """

    value: float
    name: ClassVar[str] = "constant"

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _finite("value", self.value))

    def __call__(self, step: int) -> float:
        _step(step)
        return self.value


@dataclass(frozen=True)
class LinearWarmup(Schedule):
    """``start`` until step ``delay``, then linear to ``end`` over ``steps`` steps, then ``end``.

    The KL warm-up of Bowman et al. 2016 / Sønderby et al. 2016 (β from 0 to 1), and the capacity
    C(step) of Burgess et al. 2018 (0 to 25 nats), are both ``LinearWarmup``.

    >>> LinearWarmup(start=1.0, end=0.0, steps=4, delay=2)(4)
    0.5
    """

    start: float = 0.0
    end: float = 1.0
    steps: int = 10_000
    delay: int = 0
    name: ClassVar[str] = "linear_warmup"

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _finite("start", self.start))
        object.__setattr__(self, "end", _finite("end", self.end))
        object.__setattr__(self, "steps", _count("steps", self.steps, 1))
        object.__setattr__(self, "delay", _count("delay", self.delay, 0))

    def __call__(self, step: int) -> float:
        t = min(1.0, max(0, _step(step) - self.delay) / self.steps)
        return self.start + (self.end - self.start) * t


@dataclass(frozen=True)
class Cyclical(Schedule):
    """The cyclical schedule of Fu et al. 2019: cycles of ``period`` steps; in each, the weight rises
    linearly from ``start`` to ``end`` over the first ``ratio`` of the cycle (their R, 0.5 in the
    paper) and stays at ``end`` for the rest. With ``cycles`` given, it stays at ``end`` after that
    many cycles (a run of T steps with M cycles in the paper's terms: ``period = ceil(T / M)``).

    >>> c = Cyclical(period=10, ratio=0.5, cycles=2)
    >>> [c(s) for s in (0, 3, 5, 9, 10, 13, 20, 23)]
    [0.0, 0.6, 1.0, 1.0, 0.0, 0.6, 1.0, 1.0]
    """

    start: float = 0.0
    end: float = 1.0
    period: int = 10_000
    ratio: float = 0.5
    cycles: int | None = None
    name: ClassVar[str] = "cyclical"

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _finite("start", self.start))
        object.__setattr__(self, "end", _finite("end", self.end))
        object.__setattr__(self, "period", _count("period", self.period, 1))
        ratio = _finite("ratio", self.ratio)
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"ratio must be in (0, 1] (the fraction of a cycle spent rising); got {ratio!r}")
        object.__setattr__(self, "ratio", ratio)
        if self.cycles is not None:
            object.__setattr__(self, "cycles", _count("cycles", self.cycles, 1))

    def __call__(self, step: int) -> float:
        step = _step(step)
        if self.cycles is not None and step >= self.cycles * self.period:
            return self.end
        tau = (step % self.period) / self.period
        return self.start + (self.end - self.start) * min(1.0, tau / self.ratio)


SCHEDULES: dict[str, type[Schedule]] = {s.name: s for s in (Constant, LinearWarmup, Cyclical)}

WeightSpec = Union[float, int, Schedule, Mapping[str, Any]]


def make_schedule(spec: WeightSpec) -> Schedule:
    """A number -> :class:`Constant`; a :class:`Schedule` -> itself; a config dict
    (``{"schedule": "linear_warmup", "steps": 100, ...}``) -> that schedule.

    >>> make_schedule({"schedule": "cyclical", "period": 4})(1)
    0.5
    """
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, Mapping):
        kwargs = dict(spec)
        kind = kwargs.pop("schedule", None)
        if kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {kind!r}; allowed: {sorted(SCHEDULES)}")
        cls = SCHEDULES[kind]
        allowed = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(kwargs) - allowed)
        if unknown:
            raise ValueError(f"schedule {kind!r} has no option(s) {unknown}; allowed: {sorted(allowed)}")
        return cls(**kwargs)
    if isinstance(spec, bool) or not isinstance(spec, (int, float)):
        raise ValueError(f"a weight must be a number, a Schedule or a schedule config dict; got {spec!r}")
    return Constant(float(spec))


def schedule_config(schedule: Schedule) -> float | dict[str, Any]:
    """JSON form of a weight: a plain number for :class:`Constant`, else the schedule's config."""
    return schedule.value if isinstance(schedule, Constant) else schedule.config()
