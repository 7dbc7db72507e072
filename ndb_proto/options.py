"""The client's options, each declared once: name, type, default, check and meaning.

`ProtocolOptions` holds the options of the sans-IO core; the transports' ``ClientOptions``
(``ndb_transports/_options.py``) adds the two only they use, ``timeout`` and ``ssl``. Everything
else is derived from these two declarations by ``python -m ndb_transports._generate`` (and
checked for drift by a test and by CI): `ClientProtocol`'s keyword arguments and attributes,
every flavour's constructor keywords and docstring, and ``docs/reference/options.md``. Adding an
option is one field here (or there) and a regeneration.

The checks run when the options are built, so a bad value raises (naming it) before any I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from ndb_proto.commands import FIXED_REPLY_BOUND
from ndb_proto.reconnect import Backoff

DEFAULT_MAX_MESSAGE_SIZE = 1024
"""NemesisDB's shipped ``maxPayload``: a larger request makes it drop the connection."""
SERVER_MAX_PAYLOAD_LIMIT = 8192
"""The largest ``maxPayload`` a NemesisDB 0.7.4 server accepts in its configuration."""
DEFAULT_MAX_INCOMING_MESSAGE_SIZE = 64 * 1024 * 1024
DEFAULT_MAX_IN_FLIGHT = 64
"""Chosen by measurement: see ``bench/bench_window.py``."""
REPLY_BUDGET = 96 * 1024
"""Default bound on the reply bytes expected from the requests in flight. NemesisDB silently
drops replies once 128 KiB of its output is unread; staying below that (the kernel's buffers
come on top) is what keeps FIFO matching sound when replies are large."""

Check = Callable[[str, Any], None]
"""Raises ValueError or TypeError, naming the option, for a value it refuses."""


def _number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")


def _integer(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")


MAX_SECONDS = 1_000_000.0
"""The longest duration a seconds option or a call's ``timeout`` may give (about 11.5 days):
the system's own timers overflow not far beyond (``poll`` takes at most 2**31 - 1 ms, about
24.8 days). None, where allowed, means no limit."""


def _seconds(name: str, value: float, *, none_allowed: bool) -> None:
    _number(name, value)
    if not 0 < value <= MAX_SECONDS:  # NaN fails both comparisons
        also = "None, or " if none_allowed else ""
        raise ValueError(
            f"{name} must be {also}> 0 and at most {MAX_SECONDS:.0f} seconds, got {value}"
        )


def positive(name: str, value: float) -> None:
    _seconds(name, value, none_allowed=False)


def positive_or_none(name: str, value: float | None) -> None:
    if value is not None:
        _seconds(name, value, none_allowed=True)


def at_least(minimum: int) -> Check:
    def check(name: str, value: int) -> None:
        _integer(name, value)
        if value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")

    return check


def none_or_at_least(minimum: int) -> Check:
    def check(name: str, value: int | None) -> None:
        if value is not None:
            _integer(name, value)
            if value < minimum:
                raise ValueError(f"{name} must be None or at least {minimum}, got {value}")

    return check


def within(low: int, high: int, why: str) -> Check:
    def check(name: str, value: int) -> None:
        _integer(name, value)
        if not low <= value <= high:
            raise ValueError(f"{name} must be in {low}..{high} ({why}), got {value}")

    return check


def boolean(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")


def backoff_or_none(name: str, value: object) -> None:
    if value is not None and not isinstance(value, Backoff):
        raise TypeError(f"{name} must be a Backoff or None, got {value!r}")


def strings(name: str, value: object) -> None:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list of str, got {value!r}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{index}] must be a str, got {item!r}")


def header_pairs(name: str, value: object) -> None:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list of (name, value) pairs of str, got {value!r}")
    for index, pair in enumerate(value):
        if not (
            isinstance(pair, Sequence)
            and not isinstance(pair, str)
            and len(pair) == 2
            and isinstance(pair[0], str)
            and isinstance(pair[1], str)
        ):
            raise TypeError(f"{name}[{index}] must be a (name, value) pair of str, got {pair!r}")


def about(doc: str, check: Check) -> dict[str, Any]:
    """An option's metadata (``field(default=..., metadata=about(...))``): its meaning, one
    sentence or two for the generated docstrings and docs, and the check its values must pass
    (every option has one, so a value of the wrong type is refused naming the option)."""
    return {"doc": doc, "check": check}


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolOptions:
    """What the client core can be configured with; `ClientProtocol` takes each as a keyword."""

    connect_timeout: float = field(
        default=5.0,
        metadata=about(
            "Seconds for one connection attempt: TCP, TLS and the WebSocket handshake.", positive
        ),
    )
    auto_reconnect: bool = field(
        default=True,
        metadata=about(
            "Reconnect with backoff after a lost connection; requests not yet written wait for it "
            "(within their timeout). Without it they fail at once.",
            boolean,
        ),
    )
    max_in_flight: int = field(
        default=DEFAULT_MAX_IN_FLIGHT,
        metadata=about("Requests written and unanswered at once on the connection.", at_least(1)),
    )
    max_message_size: int = field(
        default=DEFAULT_MAX_MESSAGE_SIZE,
        metadata=about(
            "The server's maxPayload (1024 as shipped, at most 8192): a larger request is refused "
            "before it is sent, since the server would drop the connection.",
            within(64, SERVER_MAX_PAYLOAD_LIMIT, "the server's maxPayload range"),
        ),
    )
    max_incoming_message_size: int | None = field(
        default=DEFAULT_MAX_INCOMING_MESSAGE_SIZE,
        metadata=about(
            "The largest reply accepted, in bytes (None: no limit).", none_or_at_least(1024)
        ),
    )
    ping_interval: float | None = field(
        default=None,
        metadata=about("Seconds between keepalive pings (None: no pings).", positive_or_none),
    )
    ping_timeout: float = field(
        default=20.0,
        metadata=about(
            "Seconds a keepalive ping may go unanswered before the connection is lost.", positive
        ),
    )
    reply_grace: float = field(
        default=10.0,
        metadata=about(
            "Seconds past its deadline an unanswered request may hold up the connection before the "
            "connection is given up (later replies could not be matched).",
            positive,
        ),
    )
    reply_budget: int = field(
        default=REPLY_BUDGET,
        metadata=about(
            "Bytes of reply size bounds in flight at once (besides max_in_flight): NemesisDB "
            "drops replies once 128 KiB of its output is unread.",
            at_least(1),
        ),
    )
    read_reply_limit: int | None = field(
        default=None,
        metadata=about(
            "Bytes the reply of any one read (kv_get, sh_get, kv_keys, sh_keys, kv_find) stays "
            "under, if you know it does. None: reads are never pipelined behind one another, "
            "which is safe whatever the data. Set: reads pipeline like writes, each counted at "
            "this size; a larger reply ends the connection, failing the requests written behind "
            "it (outcome unknown), as the server may have dropped their replies.",
            none_or_at_least(FIXED_REPLY_BOUND),
        ),
    )
    close_timeout: float = field(
        default=5.0,
        metadata=about("Seconds close() waits for the server to answer the close frame.", positive),
    )
    backoff: Backoff | None = field(
        default=None,
        metadata=about(
            "Delays between reconnect attempts (None: Backoff(), 0.1 s doubling to 30 s).",
            backoff_or_none,
        ),
    )
    subprotocols: Sequence[str] = field(
        default=(),
        metadata=about(
            "WebSocket subprotocols offered in the handshake (NemesisDB echoes the first and "
            "ignores it).",
            strings,
        ),
    )
    extra_headers: Sequence[tuple[str, str]] = field(
        default=(),
        metadata=about(
            "Extra HTTP headers (name, value) sent with the handshake request, e.g. for a proxy's "
            "authentication.",
            header_pairs,
        ),
    )

    def __post_init__(self) -> None:
        check_declared(self)


def check_declared(options: Any) -> None:
    """Run the declared check (`about`) of every field of a dataclass of options."""
    for declared in fields(options):
        check: Check = declared.metadata["check"]
        check(declared.name, getattr(options, declared.name))
