"""The client core's CPU cost per request, with no I/O at all.

One "request" is what a transport makes the core do for one call: build the request
(``ndb_proto.calls.kv_set``/``kv_get``: argument checks + JSON encoding), ``submit`` it to an
OPEN `ClientProtocol` with a deadline (every call has one by default), take the framed bytes
(``data_to_send``), feed the server's pre-framed reply (``receive_data``), take the
``ReplyReceived`` (``events``) and ask for the next deadline, as the transports do.

It is compared, in the same run, with:

* the FLOOR: msgspec encode + wsproto client framing of the text + wsproto parsing of the reply
  frame + msgspec decode + reading ``st``: the least any client on these libraries must do;
* the ``websockets`` library's sans-IO client protocol (``websockets.client.ClientProtocol``)
  doing the same framing (``send_text``/``data_to_send``, ``receive_data``/
  ``events_received``) with the same codec.

Target: core ≤ 1.5x floor. Run: ``python bench/bench_core.py [--quick]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import _common as c
import msgspec
import websockets
import wsproto
from websockets.client import ClientProtocol as WsClientProtocol
from websockets.protocol import State as WsState
from websockets.uri import parse_uri as ws_parse_uri
from wsproto import WSConnection
from wsproto.connection import Connection, ConnectionType
from wsproto.events import AcceptConnection, Request, TextMessage

from ndb_proto import calls
from ndb_proto.client import ClientProtocol
from ndb_proto.events import Connected, ReplyReceived

URI = "ws://bench.invalid:1987/"
BATCH = 64
TARGET_CORE_OVER_FLOOR = 1.5
FAR = 1e12  # a deadline that never passes (the clock is always 0 here)

encode = msgspec.json.Encoder().encode
decode = msgspec.json.Decoder().decode

SET_OBJ = {"user:1": c.USER}
GET_KEYS = ["user:1"]
BIG_KEYS = ["blob"]
BIG_VALUES = {"blob": [{**c.USER, "age": i, "email": f"user{i}@example.com"} for i in range(720)]}


def open_core(max_in_flight: int = BATCH) -> tuple[ClientProtocol, WSConnection]:
    """An OPEN client core, handshaken against wsproto's server role; returns both ends."""
    proto = ClientProtocol(URI, max_in_flight=max_in_flight)
    plan = proto.next_connect(0.0)
    assert plan is not None
    proto.connection_made(plan.endpoint, 0.0)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(proto.data_to_send())
    accept = b""
    for event in server.events():
        assert isinstance(event, Request), event
        accept = server.send(AcceptConnection())
    proto.receive_data(accept, 0.0)
    assert [type(e) for e in proto.events()] == [Connected]
    return proto, server


def server_frame(server: WSConnection, text: str) -> bytes:
    return server.send(TextMessage(text))


# -- one workload: a request builder, its wire object, its reply --------------------------------


class Case:
    def __init__(
        self,
        name: str,
        build: Callable[[], Any],
        wire: dict[str, Any],
        reply: dict[str, Any],
        result: Callable[[dict[str, Any]], Any],
        batch: bool = True,
    ) -> None:
        self.name = name
        self.build = build  # -> ndb_proto Request
        self.wire = wire  # the request object a hand-written client would encode
        self.reply_text = encode(reply).decode()
        self.rsp = next(iter(reply))
        self.result = result  # what the floor extracts from the reply body
        self.batch = batch  # also measured as a pipelined batch of BATCH requests


CASES = [
    Case(
        "kv_set small object",
        lambda: calls.kv_set(SET_OBJ),
        {"KV_SET": {"keys": SET_OBJ}},
        {"KV_SET_RSP": {"st": 1}},
        lambda body: None,
    ),
    Case(
        "kv_get 1 key (small reply)",
        lambda: calls.kv_get(GET_KEYS),
        {"KV_GET": {"keys": GET_KEYS}},
        {"KV_GET_RSP": {"keys": SET_OBJ, "st": 1}},
        lambda body: body["keys"],
        # A KV_GET reply has no size bound, so the core writes nothing behind one until its
        # reply is read (NemesisDB drops replies past 128 KiB queued): no batch row.
        batch=False,
    ),
    Case(
        "kv_get ~80 KB reply",
        lambda: calls.kv_get(BIG_KEYS),
        {"KV_GET": {"keys": BIG_KEYS}},
        {"KV_GET_RSP": {"keys": BIG_VALUES, "st": 1}},
        lambda body: body["keys"],
        # 64 such replies in flight would be 5 MB, far beyond the server's 128 KiB
        # backpressure limit: nobody pipelines these, so no batch row.
        batch=False,
    ),
]


# -- the three implementations, single request and pipelined batch --------------------------


def core_single(case: Case) -> Callable[[], object]:
    proto, server = open_core()
    frame = server_frame(server, case.reply_text)
    build = case.build
    submit, data_to_send = proto.submit, proto.data_to_send
    receive_data, events, next_deadline = proto.receive_data, proto.events, proto.next_deadline

    def one() -> object:
        submit(build(), FAR)
        data_to_send()
        receive_data(frame, 0.0)
        out = events()
        next_deadline()
        return out

    first = one()
    assert isinstance(first, list) and len(first) == 1 and isinstance(first[0], ReplyReceived)
    return one


def core_batch(case: Case) -> Callable[[], object]:
    proto, server = open_core(BATCH)
    frames = server_frame(server, case.reply_text) * BATCH
    build = case.build
    submit, data_to_send = proto.submit, proto.data_to_send
    receive_data, events, next_deadline = proto.receive_data, proto.events, proto.next_deadline
    batch = range(BATCH)

    def run() -> object:
        for _ in batch:
            submit(build(), FAR)
        data_to_send()
        receive_data(frames, 0.0)
        out = events()
        next_deadline()
        return out

    first = run()
    assert isinstance(first, list) and len(first) == BATCH
    assert all(isinstance(e, ReplyReceived) for e in first)
    return run


def replied_frames(case: Case, count: int) -> bytes:
    """``count`` frames of the case's reply, as the server sends them."""
    _, server = open_core()
    return server_frame(server, case.reply_text) * count


def read_replies(events: Iterable[Any], case: Case) -> list[Any]:
    """What a hand-written client does with each reply message: decode it and, where ``st``
    is 1, extract the case's result."""
    rsp, result = case.rsp, case.result
    out = []
    for event in events:
        body = decode(event.data)[rsp]
        if body["st"] == 1:
            out.append(result(body))
    return out


def floor_single(case: Case) -> Callable[[], list[Any]]:
    frame = replied_frames(case, 1)
    ws = Connection(ConnectionType.CLIENT)
    wire = case.wire

    def one() -> list[Any]:
        ws.send(TextMessage(encode(wire).decode()))
        ws.receive_data(frame)
        return read_replies(ws.events(), case)

    assert len(one()) == 1
    return one


def floor_batch(case: Case) -> Callable[[], tuple[bytes, list[Any]]]:
    frames = replied_frames(case, BATCH)
    ws = Connection(ConnectionType.CLIENT)
    wire = case.wire
    batch = range(BATCH)

    def run() -> tuple[bytes, list[Any]]:
        out_bytes = b"".join([ws.send(TextMessage(encode(wire).decode())) for _ in batch])
        ws.receive_data(frames)
        return out_bytes, read_replies(ws.events(), case)

    assert len(run()[1]) == BATCH
    return run


def _ws_client() -> WsClientProtocol:
    return WsClientProtocol(ws_parse_uri(URI), state=WsState.OPEN, max_size=None)


def websockets_single(case: Case) -> Callable[[], list[Any]]:
    frame = replied_frames(case, 1)
    ws = _ws_client()
    wire = case.wire

    def one() -> list[Any]:
        ws.send_text(encode(wire))
        ws.data_to_send()
        ws.receive_data(frame)
        return read_replies(ws.events_received(), case)

    assert len(one()) == 1
    return one


def websockets_batch(case: Case) -> Callable[[], tuple[bytes, list[Any]]]:
    frames = replied_frames(case, BATCH)
    ws = _ws_client()
    wire = case.wire
    batch = range(BATCH)

    def run() -> tuple[bytes, list[Any]]:
        for _ in batch:
            ws.send_text(encode(wire))
        out_bytes = b"".join(ws.data_to_send())
        ws.receive_data(frames)
        return out_bytes, read_replies(ws.events_received(), case)

    assert len(run()[1]) == BATCH
    return run


IMPLS = {
    "core": (core_single, core_batch),
    "floor": (floor_single, floor_batch),
    "websockets": (websockets_single, websockets_batch),
}


def main() -> None:
    args = c.parser(__doc__.split("\n\n")[0]).parse_args()
    n_repeats = c.repeats(args, full=7, quick=2)
    target = 0.02 if args.quick else 0.15  # seconds per timed repeat

    c.title("bench_core: the client core's CPU per request, no I/O")
    print(
        f"{c.describe_machine()}; wsproto {wsproto.__version__}, websockets "
        f"{websockets.__version__}, msgspec {msgspec.__version__}; best of {n_repeats}"
    )
    rows = []
    ratios: list[c.Ratio] = []
    breakdown = []
    for case in CASES:
        modes = [("1 at a time", 0, 1), (f"batch of {BATCH}", 1, BATCH)]
        for mode, index, per in modes if case.batch else modes[:1]:
            fns = {name: makers[index](case) for name, makers in IMPLS.items()}
            n = c.calibrate(fns["floor"], target)
            timers = {name: c.loop_timer(fn, n) for name, fn in fns.items()}
            per_req = {k: t / n / per for k, t in c.best_of(timers, n_repeats).items()}
            label = f"{case.name}, {mode}"
            core_floor = per_req["core"] / per_req["floor"]
            core_ws = per_req["core"] / per_req["websockets"]
            ratios.append(
                c.Ratio(f"core/floor: {label}", core_floor, TARGET_CORE_OVER_FLOOR, False)
            )
            rows.append(
                [
                    label,
                    f"{core_floor:.2f}x",
                    f"{core_ws:.2f}x",
                    c.fmt_ns(per_req["core"]),
                    c.fmt_ns(per_req["floor"]),
                    c.fmt_ns(per_req["websockets"]),
                    c.fmt_rate(1 / per_req["core"]),
                ]
            )
        # Where the core's time goes beyond the floor: building the request.
        wire = case.wire
        parts = {
            "calls (check + encode)": case.build,
            "msgspec encode only": lambda w=wire: encode(w),
        }
        n = c.calibrate(parts["calls (check + encode)"], target / 4)
        best = c.best_of({k: c.loop_timer(f, n) for k, f in parts.items()}, n_repeats)
        breakdown.append(
            [
                case.name,
                c.fmt_ns(best["calls (check + encode)"] / n),
                c.fmt_ns(best["msgspec encode only"] / n),
            ]
        )

    print()
    print("Time per request relative to the floor and to websockets (lower is better):")
    print(
        c.table(
            [
                "case",
                "core/floor",
                "core/websockets",
                "core",
                "floor",
                "websockets",
                "core req/s (1 CPU)",
            ],
            rows,
        )
    )
    print()
    print("Building the request (part of every core row above):")
    print(c.table(["case", "ndb_proto.calls", "msgspec encode only"], breakdown))
    print()
    print(f"Verdict (target core ≤ {TARGET_CORE_OVER_FLOOR}x floor):")
    print(c.ratio_table(ratios))


if __name__ == "__main__":
    main()
