"""The test kit's speed: the memory server beside the socket server, in the same run.

Two measurements (issue 9, item 6):

* a hypothesis test of EXAMPLES examples of COMMANDS commands each (drawn by a light strategy,
  and by ``ndb_server.strategies.calls`` over the key-value commands), run by one blocking
  client against a `MemoryServer` and against the socket server (`ServerThread`, what the
  ``ndb_server`` fixture starts), and the same test with a body that does nothing
  ("hypothesis alone"). Target: the memory server at least 10x faster (socket ÷ memory);
* a session-expiry test on the memory server: create a session with a 60-second expiry, advance
  the clock past it and its sweep, check it is gone. Target: under 50 ms of wall time.

Wall time and process CPU are printed for each; every number is measured in this run, and the
ratio is what to read. Run: ``python bench/bench_testkit.py [--quick]``.

Where the time goes (process CPU per command, a 2-CPU machine under load 6-11, December 2026;
layers timed one at a time on the same pre-drawn calls):

====================================================  ============  ====================
part                                                  light calls   ``strategies.calls``
====================================================  ============  ====================
hypothesis drawing the example (body does nothing)    330-460 µs    1.9-2.5 ms
blocking client, core and memory stream (canned end)  ~110 µs       (same)
server connection: frames in and out                  ~7 µs
fault plan and engine                                 ~10 µs
the rest of the memory round trip                     ~40 µs
whole memory round trip                               150-170 µs
whole socket round trip (server thread in-process)    200-280 µs
====================================================  ============  ====================

So the target is out of reach whatever the server costs: with hypothesis alone at H per
command and the socket round trip at S, the ratio can be at most (H + S) ÷ H, about 1.6 for the
light calls and 1.1 for ``strategies.calls()``, even with a memory server that cost nothing.
Hypothesis spends 80-90 µs per choice here (a one-choice strategy, ``st.integers(0, 1000)``,
alone costs that per element), more than a loopback round trip's share, so no strategy with one
choice or more per command reaches 10x either. The "hypothesis alone" row measures that floor
in every run, and the ratio is printed again on the process CPU above it (the servers' own
shares: wall time on a loaded machine is mostly waiting).
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


def hypothesis_run(url: str | None, examples: int, calls: st.SearchStrategy[nst.Call]) -> None:
    """The hypothesis test itself, written as a user would: one client for the whole test (a
    fixture's), the store cleared at the start of each example, then COMMANDS drawn calls.
    With ``url`` None the body does nothing: what hypothesis alone costs, the floor of the
    time per command on any server."""
    with contextlib.ExitStack() as stack:
        client: NdbClient | None = None
        if url is not None:
            client = stack.enter_context(NdbClient(timeout=10))
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
            if client is None:
                return
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


def on_nothing(examples: int, calls: st.SearchStrategy[nst.Call]) -> tuple[float, float]:
    return timed(lambda: hypothesis_run(None, examples, calls))


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
    rows = (
        ("memory server", on_memory),
        ("socket server", on_socket),
        ("hypothesis alone", on_nothing),
    )
    for label, calls in (("light calls", LIGHT), ("strategies.calls()", FULL)):
        c.title(f"hypothesis test, {label}: {examples} examples x {COMMANDS} commands, best of {n}")
        for _, run in rows:  # warm up: the first run of a strategy builds it
            run(2, calls)
        results: dict[str, tuple[float, float]] = {}
        for _ in range(n):  # round-robin, keep each side's best wall time
            for name, run in rows:
                wall, cpu = run(examples, calls)
                if name not in results or wall < results[name][0]:
                    results[name] = (wall, cpu)
        floor = results["hypothesis alone"]
        print(
            c.table(
                ["row", "wall", "process CPU", "wall per command", "CPU per command", "CPU above"],
                [
                    [
                        name,
                        f"{w:.2f} s",
                        f"{p:.2f} s",
                        c.fmt_ns(w / per),
                        c.fmt_ns(p / per),
                        ""
                        if name == "hypothesis alone"
                        else c.fmt_ns(max(0.0, p - floor[1]) / per),
                    ]
                    for name, (w, p) in results.items()
                ],
            )
        )
        memory, socket_ = results["memory server"], results["socket server"]
        print(
            "CPU above: process CPU per command above hypothesis alone (the client, the transport, "
            "the server and the engine;\nthe socket server's thread runs in this process). "
            "Ceiling of the ratio with a memory server that cost nothing:\n"
            f"socket ÷ hypothesis alone = {socket_[0] / floor[0]:.2f}x wall, "
            f"{socket_[1] / floor[1]:.2f}x CPU"
        )
        ratios.append(
            c.Ratio(f"socket wall ÷ memory wall, {label}", socket_[0] / memory[0], SPEEDUP_TARGET)
        )
        ratios.append(
            c.Ratio(
                f"  CPU above hypothesis alone, socket ÷ memory, {label}",
                (socket_[1] - floor[1]) / max(1e-9, memory[1] - floor[1]),
                SPEEDUP_TARGET,
            )
        )
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
