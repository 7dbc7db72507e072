"""The test kit's speed: the memory server beside the socket server, in the same run.

Two measurements (issue 9, item 6):

* a hypothesis test of EXAMPLES examples of COMMANDS commands each (drawn by
  ``ndb_server.strategies.calls`` from the key-value commands), run by a blocking client against
  a `MemoryServer` and against the socket server (`ServerThread`, what the ``ndb_server``
  fixture starts). Target: the memory server at least 10x faster (socket time ÷ memory time);
* a session-expiry test on the memory server: create a session with a 60-second expiry, advance
  the clock past it and its sweep, check it is gone. Target: under 50 ms of wall time.

Wall time and process CPU are printed for each; every number is measured in this run, and the
ratio is what to read. Run: ``python bench/bench_testkit.py [--quick]``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import _common as c
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ndb_proto.errors import ResponseError
from ndb_server import MemoryServer
from ndb_server import strategies as nst
from ndb_server.thread import ServerThread
from ndb_transports.sync import NdbClient

EXAMPLES = 100
COMMANDS = 20
KV_NAMES = ["kv_set", "kv_add", "kv_get", "kv_rmv", "kv_count", "kv_contains", "kv_keys"]
SPEEDUP_TARGET = 10.0
EXPIRY_TARGET_MS = 50.0


def light_call(op: str, key: str, value: int) -> nst.Call:
    """A cheap-to-draw call (a few keys, small values): the server's share of the time shows."""
    if op == "kv_set":
        return nst.Call(op, ({key: value},))
    if op == "kv_get":
        return nst.Call(op, (), {"key": key})
    if op == "kv_rmv":
        return nst.Call(op, ([key],))
    return nst.Call("kv_count")


LIGHT = st.builds(
    light_call,
    st.sampled_from(["kv_set", "kv_get", "kv_rmv", "kv_count"]),
    st.sampled_from("abcde"),
    st.integers(0, 1000),
)


def _small(call: nst.Call) -> bool:
    return len(call.request_text().encode()) <= 1000


FULL = nst.calls(KV_NAMES).filter(_small)
"""The public strategy: any key name, any storable value (drawing them costs more than the
round trip)."""


def hypothesis_run(url: str, examples: int, calls: st.SearchStrategy[nst.Call]) -> None:
    """The hypothesis test itself: each example runs COMMANDS drawn calls on one client."""
    with NdbClient(timeout=10) as client:
        assert client.open(url)

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,  # the same examples on both servers
            suppress_health_check=list(HealthCheck),
        )
        @given(st.lists(calls, min_size=COMMANDS, max_size=COMMANDS))
        def example(drawn: list[nst.Call]) -> None:
            client.kv_clear()
            for call in drawn:
                with contextlib.suppress(ResponseError):  # an error status is an answer too
                    call.apply(client)

        example()


def timed(run: Callable[[], None]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one ``run()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def on_memory(examples: int, calls: st.SearchStrategy[nst.Call]) -> tuple[float, float]:
    with MemoryServer() as server:
        return timed(lambda: hypothesis_run(server.url, examples, calls))


def on_socket(examples: int, calls: st.SearchStrategy[nst.Call]) -> tuple[float, float]:
    with ServerThread() as server:
        return timed(lambda: hypothesis_run(server.url, examples, calls))


def expiry_test() -> tuple[float, float]:
    def run() -> None:
        with MemoryServer() as server, NdbClient(timeout=5) as client:
            assert client.open(server.url)
            session = client.sh_create(durationSeconds=60, deleteSessionOnExpire=True)
            server.advance(66)  # past the expiry (60) and the sweep after it (65)
            assert client.sh_session_exists([session.tkn]) == []

    return timed(run)


def main() -> None:
    args = c.parser(__doc__ or "").parse_args()
    examples = 10 if args.quick else EXAMPLES
    n = c.repeats(args, full=3, quick=1)
    per = examples * COMMANDS
    ratios = []
    for label, calls in (("light calls", LIGHT), ("strategies.calls()", FULL)):
        c.title(f"hypothesis test, {label}: {examples} examples x {COMMANDS} commands, best of {n}")
        results: dict[str, tuple[float, float]] = {}
        for _ in range(n):  # round-robin, keep each side's best wall time
            for name, run in (("memory server", on_memory), ("socket server", on_socket)):
                wall, cpu = run(examples, calls)
                if name not in results or wall < results[name][0]:
                    results[name] = (wall, cpu)
        print(
            c.table(
                ["server", "wall", "process CPU", "wall per command", "CPU per command"],
                [
                    [name, f"{w:.2f} s", f"{p:.2f} s", c.fmt_ns(w / per), c.fmt_ns(p / per)]
                    for name, (w, p) in results.items()
                ],
            )
        )
        speedup = results["socket server"][0] / results["memory server"][0]
        ratios.append(c.Ratio(f"socket wall ÷ memory wall, {label}", speedup, SPEEDUP_TARGET))
    c.title("session-expiry test on the memory server, best of 5")
    expiry = min((expiry_test() for _ in range(5)), key=lambda r: r[0])
    print(f"wall {expiry[0] * 1000:.1f} ms, process CPU {expiry[1] * 1000:.1f} ms")
    ratios.append(
        c.Ratio(
            f"expiry test wall ÷ {EXPIRY_TARGET_MS:g} ms",
            expiry[0] * 1000 / EXPIRY_TARGET_MS,
            1.0,
            at_least=False,
        )
    )
    c.title("verdicts")
    print(c.ratio_table(ratios))


if __name__ == "__main__":
    main()
