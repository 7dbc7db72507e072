"""Hypothesis strategies for testing code built on ndb, and transports of one's own.

Importing this module imports hypothesis (nothing else in ndb does): ``pip install hypothesis``.

What they draw:

* `key_names`, `storable_values`, `keys_objects`, `session_tokens`, `dataset_names`,
  `jsonpaths`: arguments the client accepts, at the edges that matter (64-bit integers at both
  ends, any Unicode including astral characters, nesting down to the codec's depth limit);
* `calls`: whole valid calls of the command surface (`ndb_proto.calls.SURFACE`), as `Call`
  values to apply to a client or to turn into request text;
* `exchanges`, `valid_replies`, `broken_replies`: raw reply texts for a transport's tests. Valid
  replies are what the embedded server (`ndb_server.Engine`) answers to the drawn calls, so
  they are true by construction; broken ones are texts NemesisDB 0.7.4 never sends for the
  command (cut short, not an object, the wrong reply name, no status, the wrong types).

They live in `ndb_server` rather than `ndb_proto` because valid replies come from the engine,
and the core must not depend on the server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from hypothesis import strategies as st

from ndb_proto import calls as _calls
from ndb_proto.codec import INT_MAX, INT_MIN, MAX_VALUE_DEPTH
from ndb_proto.validate import DURATION_MAX, TOKEN_MAX
from ndb_server.engine import Engine

__all__ = [
    "Call",
    "broken_replies",
    "calls",
    "dataset_names",
    "exchanges",
    "jsonpaths",
    "key_names",
    "keys_objects",
    "session_tokens",
    "storable_values",
    "valid_replies",
]

INTEGER_EDGES: Final = (INT_MIN, INT_MIN + 1, -1, 0, 1, 2**53 + 1, 2**63 - 1, 2**63, INT_MAX)
"""Integers where 64-bit handling breaks: both ends of i64 and u64, and past float precision."""


def _nest(depth: int, leaf: Any) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"d": value}
    return value


def key_names(max_size: int = 12) -> st.SearchStrategy[str]:
    """Any valid Unicode text (no lone surrogates), often with astral and combining characters."""
    return st.text(st.characters(codec="utf-8"), max_size=max_size) | st.sampled_from(
        ["", " ", "ä", "\U0001f600", "a.b", "$", "'\"", "\u0301"]
    )


def _integers() -> st.SearchStrategy[int]:
    return st.integers(INT_MIN, INT_MAX) | st.sampled_from(INTEGER_EDGES)


def _scalars() -> st.SearchStrategy[Any]:
    return (
        st.none()
        | st.booleans()
        | _integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | key_names()
    )


def storable_values(max_depth: int = MAX_VALUE_DEPTH) -> st.SearchStrategy[Any]:
    """JSON values the store keeps and gives back unchanged; some nested ``max_depth`` deep."""
    if not 1 <= max_depth <= MAX_VALUE_DEPTH:
        raise ValueError(f"max_depth must be in 1..{MAX_VALUE_DEPTH}, got {max_depth!r}")
    trees = st.recursive(
        _scalars(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(key_names(), inner, max_size=4),
        max_leaves=12,
    )
    return trees | st.builds(_nest, st.integers(1, max_depth), _scalars())


def keys_objects(max_size: int = 4) -> st.SearchStrategy[dict[str, Any]]:
    """A ``keys`` argument of ``kv_set``/``sh_set`` and friends: key names to values."""
    return st.dictionaries(key_names(), storable_values(), max_size=max_size)


def session_tokens() -> st.SearchStrategy[int]:
    """Any u64 token, with 0, 2**63 and the largest often."""
    return st.integers(0, TOKEN_MAX) | st.sampled_from([0, 1, 2**63 - 1, 2**63, TOKEN_MAX])


def dataset_names() -> st.SearchStrategy[str]:
    """Names ``kv_save``/``sh_save`` accept (nothing that could name another directory)."""
    return key_names().filter(lambda s: s and not any(b in s for b in ("/", "\\", "\x00", "..")))


def jsonpaths() -> st.SearchStrategy[str]:
    """JSONPath expressions NemesisDB 0.7.4 accepts for ``kv_find``/``kv_update``."""
    member = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
    step = (
        member.map(lambda m: f".{m}")
        | member.map(lambda m: f"..{m}")
        | st.integers(-3, 3).map(lambda i: f"[{i}]")
        | st.just("[*]")
    )
    filters = st.builds(
        lambda m, op, n: f"[?(@.{m} {op} {n})]",
        member,
        st.sampled_from(["==", "!=", "<", ">", "<=", ">="]),
        st.integers(-10, 10),
    )
    return st.builds(lambda steps: "$" + "".join(steps), st.lists(step | filters, max_size=3))


@dataclass(frozen=True)
class Call:
    """One call of a client method: ``getattr(client, call.name)(*call.args, **call.kwargs)``."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def apply(self, target: Any) -> Any:
        """Call the method on ``target`` (a client of any flavour, or `ndb_proto.calls`)."""
        return getattr(target, self.name)(*self.args, **self.kwargs)

    def request_text(self) -> str:
        """The text the client sends for this call."""
        return bytes(self.apply(_calls).payload).decode()


def _key_lists(min_size: int = 0) -> st.SearchStrategy[list[str]]:
    return st.lists(key_names(), min_size=min_size, max_size=4)


def _get_args(prefix: tuple[Any, ...]) -> st.SearchStrategy[tuple[tuple[Any, ...], dict[str, Any]]]:
    return st.builds(lambda keys: ((*prefix, keys), {}), _key_lists()) | st.builds(
        lambda key: (prefix, {"key": key}), key_names()
    )


def _argument_table(tokens: st.SearchStrategy[int]) -> dict[str, st.SearchStrategy[Any]]:
    """For each method: a strategy of (args, kwargs) it accepts."""
    none: st.SearchStrategy[Any] = st.just(((), {}))

    def one(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return strategy.map(lambda value: ((value,), {}))

    def with_token(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.tuples(tokens, strategy).map(lambda p: ((p[0], p[1]), {}))

    expiring: st.SearchStrategy[Any] = st.builds(
        lambda d, *flags: ((d, *flags), {}),
        st.integers(1, DURATION_MAX),
        st.booleans(),
        st.booleans(),
        st.booleans(),
    )
    return {
        "kv_set": one(keys_objects()),
        "kv_add": one(keys_objects()),
        "kv_get": _get_args(()),
        "kv_rmv": one(_key_lists(1)),
        "kv_count": none,
        "kv_contains": one(_key_lists()),
        "kv_keys": none,
        "kv_clear": none,
        "kv_clear_set": one(keys_objects()),
        "kv_save": one(dataset_names()),
        "kv_load": one(dataset_names()),
        "kv_find": st.builds(
            lambda path, rsp, keys: ((path, rsp, keys), {}),
            jsonpaths(),
            st.sampled_from(["keys", "paths", "kv"]),
            st.none() | _key_lists(),
        ),
        "kv_update": st.builds(
            lambda key, path, value: ((key, path, value), {}),
            key_names(),
            jsonpaths(),
            storable_values(MAX_VALUE_DEPTH - 1),
        ),
        "kv_arr_append": st.builds(
            lambda key, items, name: ((key, items, name), {}),
            key_names(),
            st.lists(storable_values(MAX_VALUE_DEPTH - 1), max_size=3),
            st.none() | key_names(),
        ),
        "sh_create": none | expiring,
        "sh_end": one(tokens),
        "sh_end_all": none,
        "sh_session_exists": one(st.lists(tokens, max_size=4)),
        "sh_info": one(tokens),
        "sh_info_all": none,
        "sh_save": st.builds(
            lambda name, tkns: ((name, tkns), {}), dataset_names(), st.lists(tokens, max_size=3)
        ),
        "sh_load": one(dataset_names()),
        "sh_set": with_token(keys_objects()),
        "sh_add": with_token(keys_objects()),
        "sh_get": tokens.flatmap(lambda t: _get_args((t,))),
        "sh_rmv": with_token(_key_lists(1)),
        "sh_count": one(tokens),
        "sh_contains": with_token(_key_lists()),
        "sh_keys": one(tokens),
        "sh_clear": one(tokens),
        "sh_clear_set": with_token(keys_objects()),
        "sv_info": none,
    }


def calls(
    names: Sequence[str] | None = None, tokens: st.SearchStrategy[int] | None = None
) -> st.SearchStrategy[Call]:
    """Valid calls of the methods named (default: every method of the surface). ``tokens``
    draws the session tokens used (default `session_tokens`; pass e.g. the tokens your test
    created, with ``st.sampled_from``, to hit live sessions)."""
    table = _argument_table(tokens if tokens is not None else session_tokens())
    chosen = list(table) if names is None else list(names)
    unknown = [name for name in chosen if name not in table]
    if unknown or not chosen:
        raise ValueError(f"names must be methods of the command surface, got {unknown or chosen}")
    return st.one_of([table[name].map(_caller(name)) for name in chosen])


def _caller(name: str) -> Callable[[tuple[tuple[Any, ...], dict[str, Any]]], Call]:
    def make(arguments: tuple[tuple[Any, ...], dict[str, Any]]) -> Call:
        return Call(name, *arguments)

    return make


@st.composite
def exchanges(
    draw: st.DrawFn, max_calls: int = 10, engine: Callable[[], Engine] | None = None
) -> list[tuple[Call, str, str]]:
    """A run of calls through a fresh embedded server: ``(call, request text, reply text)``
    for each, in order (later calls may use the tokens of sessions created earlier)."""
    server = engine() if engine is not None else Engine(clock=lambda: 0.0)
    created: list[int] = []
    run: list[tuple[Call, str, str]] = []
    for _ in range(draw(st.integers(1, max_calls))):
        tokens = session_tokens() if not created else st.sampled_from(created) | session_tokens()
        call = draw(calls(tokens=tokens))
        request = call.request_text()
        reply = server.handle_text(request)
        if call.name == "sh_create":
            body = json.loads(reply)["SH_NEW_RSP"]
            if "tkn" in body:
                created.append(body["tkn"])
        run.append((call, request, reply))
    return run


def valid_replies() -> st.SearchStrategy[tuple[Call, str]]:
    """A call and a reply NemesisDB 0.7.4 could send it (success or error status)."""
    return exchanges(max_calls=3).map(lambda run: (run[-1][0], run[-1][2]))


def _breakages(reply: str) -> st.SearchStrategy[str]:
    name, body = next(iter(json.loads(reply).items()))
    others = {k: v for k, v in body.items() if k != "st"}
    return st.one_of(
        st.integers(1, len(reply) - 1).map(lambda cut: reply[:cut]),
        st.sampled_from(["[]", "1", '"text"', "null", "{}"]),
        st.just(json.dumps({"NOT_" + name: body})),
        st.just(json.dumps({name: others})),
        st.just(json.dumps({name: {**body, "st": str(body["st"])}})),
        st.just(json.dumps({name: body, "OTHER_RSP": body})),
        st.just(json.dumps({name: [body]})),
    )


def broken_replies() -> st.SearchStrategy[tuple[Call, str]]:
    """A call and a reply text NemesisDB 0.7.4 never sends for it."""
    return valid_replies().flatmap(
        lambda pair: _breakages(pair[1]).map(lambda broken: (pair[0], broken))
    )
