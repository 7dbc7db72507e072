"""``ndb bench``: a load generator for a NemesisDB server, with any of the client flavours.

Which commands it can send is read from the command surface like everything else: a command is
usable when each of its positional parameters is something a load can be made of (a keys object,
key names, a session token). Keys are named ``bench:0`` .. ``bench:N-1`` and values are strings
of the chosen size. Commands that need a token get one session, created before the run with the
surface's session-creating command.

The run is split into workers (asyncio or trio tasks, or threads for the blocking client), each
sending one request at a time; the client pipelines the workers' requests over one connection.
Latency is measured per request, around the client call, and reported per command.
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from ndb_cli.output import to_json
from ndb_cli.runner import find_command
from ndb_cli.surface import CommandSpec, Kind, commands
from ndb_cli.words import UsageError

PERCENTILES = (50.0, 90.0, 99.0, 99.9)
FLAVOURS = ("asyncio", "trio", "sync")


@dataclass
class Mix:
    """The commands to send, each with a weight: ``kv_set:1,kv_get:3``."""

    specs: list[CommandSpec]
    weights: list[int]

    @classmethod
    def parse(cls, text: str) -> Mix:
        specs, weights = [], []
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, weight = part.partition(":")
            try:
                number = int(weight) if weight else 1
            except ValueError:
                raise UsageError(f"--commands: weight of {name} is not an integer") from None
            if number < 1:
                raise UsageError(f"--commands: weight of {name} must be at least 1")
            specs.append(find_command(name))
            weights.append(number)
        if not specs:
            raise UsageError("--commands: give at least one command")
        return cls(specs, weights)

    def schedule(self) -> list[CommandSpec]:
        """One round of the mix, interleaved: each command as often as its weight."""
        rounds = [[s] * w for s, w in zip(self.specs, self.weights, strict=True)]
        return [s for group in itertools.zip_longest(*rounds) for s in group if s is not None]


class Workload:
    """Arguments for each request, built from the parameters' kinds."""

    def __init__(self, keys: int, value_size: int, seed: int = 1) -> None:
        self.keys = keys
        self.value = "v" * value_size
        self.random = random.Random(seed)
        self.token: int | None = None

    @staticmethod
    def needs_token(spec: CommandSpec) -> bool:
        return any(p.kind is Kind.TOKEN and p.positional for p in spec.params)

    @staticmethod
    def check(spec: CommandSpec) -> None:
        """UsageError naming the parameter a load cannot be made for."""
        for param in spec.params:
            usable = param.kind in (Kind.OBJECT, Kind.TOKEN) or param.holds_keys
            if param.required and not usable:
                raise UsageError(
                    f"--commands: bench cannot make up {spec.name}'s parameter {param.name} "
                    f"(it can send commands whose parameters are keys, key names or a token)"
                )

    def arguments(self, spec: CommandSpec) -> dict[str, Any]:
        name = f"bench:{self.random.randrange(self.keys)}"
        kwargs: dict[str, Any] = {}
        for param in spec.params:
            if not param.positional:
                continue
            if param.kind is Kind.OBJECT:
                kwargs[param.name] = {name: self.value}
            elif param.kind is Kind.TOKEN:
                kwargs[param.name] = [self.token] if param.many else self.token
            elif param.holds_keys:
                kwargs[param.name] = [name] if param.many else name
        return kwargs


def session_command() -> CommandSpec:
    """The command that creates a session (the one returning a Session, needing nothing)."""
    for spec in commands().values():
        if spec.returns_session and not any(p.required for p in spec.params):
            return spec
    raise UsageError("this server surface has no command creating a session")


@dataclass
class Recorder:
    """Latencies and errors per command, and the requests left to send."""

    requests: int | None
    duration: float | None
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    done: int = 0
    started: float = 0.0
    ended: float = 0.0
    first_error: str = ""

    def start(self) -> None:
        self.started = time.perf_counter()

    def take(self) -> bool:
        """Claim the next request; False when the run is over."""
        if self.requests is not None:
            if self.sent >= self.requests:
                return False
        elif self.duration is not None and time.perf_counter() - self.started >= self.duration:
            return False
        self.sent += 1
        return True

    def record(self, name: str, seconds: float, error: BaseException | None) -> None:
        self.done += 1
        if error is None:
            self.latencies.setdefault(name, []).append(seconds)
        else:
            self.errors[name] = self.errors.get(name, 0) + 1
            self.first_error = self.first_error or f"{name}: {error!r}"

    def fraction(self) -> float:
        if self.requests:
            return min(1.0, self.done / self.requests)
        if self.duration:
            return min(1.0, (time.perf_counter() - self.started) / self.duration)
        return 0.0

    def finish(self) -> None:
        self.ended = time.perf_counter()


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def summary(recorder: Recorder, settings: dict[str, Any]) -> dict[str, Any]:
    """Throughput and latency percentiles (milliseconds) per command and overall."""
    elapsed = max(recorder.ended - recorder.started, 1e-9)
    per_command = {}
    everything: list[float] = []
    names = list(dict.fromkeys([*settings["commands"], *recorder.latencies, *recorder.errors]))
    for name in names:
        if name not in recorder.latencies and name not in recorder.errors:
            continue
        values = sorted(recorder.latencies.get(name, []))
        everything += values
        per_command[name] = _stats(values, recorder.errors.get(name, 0), elapsed)
    return {
        "settings": settings,
        "seconds": round(elapsed, 3),
        "total": _stats(sorted(everything), sum(recorder.errors.values()), elapsed),
        "commands": per_command,
    }


def _stats(values: list[float], errors: int, elapsed: float) -> dict[str, Any]:
    stats: dict[str, Any] = {
        "requests": len(values),
        "errors": errors,
        "per_second": round(len(values) / elapsed, 1),
    }
    for p in PERCENTILES:
        stats[f"p{p:g}"] = round(percentile(values, p) * 1000, 3) if values else None
    stats["max"] = round(values[-1] * 1000, 3) if values else None
    return stats


def table(report: dict[str, Any]) -> str:
    """The report for people."""
    columns = ["requests", "errors", "per_second", *(f"p{p:g}" for p in PERCENTILES), "max"]
    heads = ["command", "requests", "errors", "req/s", *(f"p{p:g} ms" for p in PERCENTILES)]
    heads.append("max ms")
    rows = [[n, *(_cell(s[c]) for c in columns)] for n, s in report["commands"].items()]
    rows.append(["all", *(_cell(report["total"][c]) for c in columns)])
    widths = [max(len(str(r[i])) for r in [heads, *rows]) for i in range(len(heads))]
    lines = [
        f"{report['total']['requests']} requests in {report['seconds']} s "
        f"({report['settings']['flavour']}, {report['settings']['concurrency']} workers)",
        "  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True)),
    ]
    lines += ["  ".join(str(c).rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


class ProgressBar:
    """``[#####.....] 50% 1234 done`` on stderr, redrawn in place on a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.live = stream.isatty()

    def draw(self, recorder: Recorder) -> None:
        if not self.live:
            return
        filled = int(recorder.fraction() * 30)
        bar = "#" * filled + "." * (30 - filled)
        self.stream.write(f"\r[{bar}] {recorder.fraction():4.0%} {recorder.done} done\x1b[K")
        self.stream.flush()

    def clear(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ndb bench",
        description="Send a mix of commands and report throughput and latency per command.",
    )
    p.add_argument(
        "--commands",
        default="kv_set,kv_get",
        help="commands to mix, each with an optional weight: kv_set:1,kv_get:3 (default "
        "kv_set,kv_get)",
    )
    p.add_argument("--value-size", type=int, default=100, help="bytes per value (default 100)")
    p.add_argument("--keys", type=int, default=1000, help="distinct key names (default 1000)")
    p.add_argument(
        "--concurrency", "-c", type=int, default=16, help="tasks or threads (default 16)"
    )
    p.add_argument("--flavour", "--flavor", choices=FLAVOURS, default="asyncio")
    p.add_argument(
        "--pipeline",
        type=int,
        default=None,
        help="requests in flight on the connection at most (the client's max_in_flight)",
    )
    amount = p.add_mutually_exclusive_group()
    amount.add_argument("--requests", "-n", type=int, help="total requests (default 10000)")
    amount.add_argument("--duration", type=float, help="seconds to run instead")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


@dataclass
class BenchSettings:
    mix: Mix
    workload: Workload
    concurrency: int
    flavour: str
    pipeline: int | None
    requests: int | None
    duration: float | None
    json: bool

    def describe(self) -> dict[str, Any]:
        return {
            "commands": {s.name: w for s, w in zip(self.mix.specs, self.mix.weights, strict=True)},
            "value_size": len(self.workload.value),
            "keys": self.workload.keys,
            "concurrency": self.concurrency,
            "flavour": self.flavour,
            "pipeline": self.pipeline,
            "requests": self.requests,
            "duration": self.duration,
        }


def parse(argv: list[str]) -> BenchSettings:
    """The bench options; UsageError for a bad one."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code == 0:
            raise
        raise UsageError("ndb bench: invalid options (see ndb bench --help)") from None
    for name in ("value_size", "keys", "concurrency", "pipeline", "requests", "duration"):
        value = getattr(args, name)
        if value is not None and not value > 0 and not (name == "value_size" and value == 0):
            raise UsageError(f"--{name.replace('_', '-')}: must be > 0")
    mix = Mix.parse(args.commands)
    for spec in mix.specs:
        Workload.check(spec)
    requests = args.requests if args.requests or args.duration else 10_000
    return BenchSettings(
        mix=mix,
        workload=Workload(args.keys, args.value_size),
        concurrency=args.concurrency,
        flavour=args.flavour,
        pipeline=args.pipeline,
        requests=requests,
        duration=args.duration,
        json=args.json,
    )


def report(recorder: Recorder, settings: BenchSettings, out: TextIO, errors: TextIO) -> int:
    """Print the report; the exit status is 1 when any request failed."""
    result = summary(recorder, settings.describe())
    out.write((to_json(result, pretty=True) if settings.json else table(result)) + "\n")
    out.flush()
    if recorder.first_error:
        errors.write(f"ndb bench: {sum(recorder.errors.values())} requests failed; first: ")
        errors.write(recorder.first_error + "\n")
        return 1
    return 0


def run(settings: BenchSettings, options: Any, out: TextIO = sys.stdout) -> int:
    """Run the benchmark with the chosen flavour and print its report."""
    from ndb_cli import bench_drivers

    recorder = Recorder(settings.requests, settings.duration)
    bench_drivers.DRIVERS[settings.flavour](settings, options, recorder, ProgressBar(sys.stderr))
    return report(recorder, settings, out, sys.stderr)
