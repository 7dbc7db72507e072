"""The JSON codec choice: stdlib json vs orjson vs msgspec, on ndb's own request/reply shapes.

Rows time encoding typical requests and decoding typical replies; the ratios are each codec's
time divided by msgspec's (> 1: slower than msgspec). Then the correctness checks that matter
to a NemesisDB client: u64 session tokens must round-trip exactly, and an integer beyond 64 bits
must never come back as a float. Run: ``python bench/bench_codec.py [--quick]``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import _common as c
import msgspec
import orjson

# -- the codecs, configured as a client would use them -------------------------------------


def _json_dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


_msgspec_encode = msgspec.json.Encoder().encode
_msgspec_decode = msgspec.json.Decoder().decode

CODECS: dict[str, tuple[Callable[[Any], bytes], Callable[[Any], Any]]] = {
    "json": (_json_dumps, json.loads),
    "orjson": (orjson.dumps, orjson.loads),
    "msgspec": (_msgspec_encode, _msgspec_decode),
}
BASE = "msgspec"

# -- the shapes ------------------------------------------------------------------------------

TOKEN = 10639132512368373105  # a real-looking SH_NEW token: above 2**63 (and 2**53)


def _big_get_reply(target_bytes: int = 80_000) -> str:
    """A KV_GET_RSP of about ``target_bytes``: many small user objects, sorted as the server
    sorts members."""
    keys: dict[str, Any] = {}
    i = 0
    while True:
        keys[f"user:{i:05d}"] = {**c.USER, "age": i, "email": f"user{i}@example.com"}
        i += 1
        if i % 50 == 0 and len(_msgspec_encode(keys)) >= target_bytes:
            break
    return _msgspec_encode({"KV_GET_RSP": {"keys": keys, "st": 1}}).decode()


REQUESTS: dict[str, Any] = {
    "encode KV_SET (small object)": {"KV_SET": {"keys": {"user:1": c.USER}}},
    "encode KV_GET (2 keys)": {"KV_GET": {"keys": ["user:1", "user:2"]}},
}
# Replies are decoded from str: wsproto hands the client core text messages as str.
REPLIES: dict[str, str] = {
    "decode KV_GET_RSP (small)": _msgspec_encode(
        {"KV_GET_RSP": {"keys": {"user:1": c.USER}, "st": 1}}
    ).decode(),
    "decode SH_NEW_RSP (tkn > 2**63)": f'{{"SH_NEW_RSP":{{"st":1,"tkn":{TOKEN}}}}}',
}
BIG_REPLY = _big_get_reply()
REPLIES[f"decode KV_GET_RSP (~{len(BIG_REPLY) // 1000} KB)"] = BIG_REPLY


# -- correctness -------------------------------------------------------------------------------


def _check_u64_roundtrip(encode: Callable[[Any], bytes], decode: Callable[[Any], Any]) -> str:
    for token in (2**63 + 4242, TOKEN, 2**64 - 1):
        try:
            back = decode(encode({"tkn": token}))["tkn"]
        except Exception as exc:
            return f"FAIL: {type(exc).__name__}: {exc}"
        if type(back) is not int or back != token:
            return f"FAIL: {token} came back as {back!r}"
    return "PASS"


def _check_token_reply(encode: Callable[[Any], bytes], decode: Callable[[Any], Any]) -> str:
    body = decode(f'{{"SH_NEW_RSP":{{"st":1,"tkn":{TOKEN}}}}}')["SH_NEW_RSP"]
    tkn = body["tkn"]
    if type(tkn) is not int or tkn != TOKEN:
        return f"FAIL: tkn decoded as {tkn!r}"
    return "PASS"


def _check_no_float(literal: str) -> Callable[[Any, Any], str]:
    def check(encode: Callable[[Any], bytes], decode: Callable[[Any], Any]) -> str:
        try:
            value = decode(f'{{"v":{literal}}}')["v"]
        except Exception as exc:  # refusing is acceptable; guessing is not
            return f"PASS (raises {type(exc).__name__})"
        if type(value) is int and value == int(literal):
            return "PASS"
        return f"FAIL: decoded as {type(value).__name__} {value!r}"

    return check


def _check_float_stays_float(encode: Callable[[Any], bytes], decode: Callable[[Any], Any]) -> str:
    value = decode('{"v":1.0}')["v"]
    if type(value) is float and value == 1.0:
        return "PASS"
    return f"FAIL: decoded as {value!r}"


def _check_unicode(encode: Callable[[Any], bytes], decode: Callable[[Any], Any]) -> str:
    text = 'é€😀/"\\\n'
    data = encode({"v": text})
    back = decode(data.decode())["v"]
    if back != text:
        return f"FAIL: came back as {back!r}"
    if b"\\u" in data:
        return "PASS (but escapes non-ASCII)"
    return "PASS"


CHECKS: dict[str, Callable[[Any, Any], str]] = {
    "u64 tokens (2**63+4242, 2**64-1) round-trip": _check_u64_roundtrip,
    "SH_NEW_RSP tkn > 2**63 decodes exactly": _check_token_reply,
    "2**64 (beyond u64) never becomes a float": _check_no_float(str(2**64)),
    "-2**63-1 (beyond i64) never becomes a float": _check_no_float(str(-(2**63) - 1)),
    "30-digit integer never becomes a float": _check_no_float("123456789012345678901234567890"),
    "1.0 stays a float": _check_float_stays_float,
    "non-ASCII text round-trips": _check_unicode,
}


# -- main ----------------------------------------------------------------------------------


def main() -> None:
    args = c.parser(__doc__.split("\n\n")[0]).parse_args()
    n_repeats = c.repeats(args, full=7, quick=2)
    target = 0.01 if args.quick else 0.08  # seconds per timed repeat

    c.title("bench_codec: stdlib json vs orjson vs msgspec")
    print(
        f"{c.describe_machine()}; msgspec {msgspec.__version__}, orjson {orjson.__version__}; "
        f"best of {n_repeats}"
    )
    cases: list[tuple[str, dict[str, Callable[[], object]]]] = []
    for name, obj in REQUESTS.items():
        cases.append(
            (name, {codec: (lambda e=enc, o=obj: e(o)) for codec, (enc, _) in CODECS.items()})
        )
    for name, text in REPLIES.items():
        cases.append(
            (name, {codec: (lambda d=dec, t=text: d(t)) for codec, (_, dec) in CODECS.items()})
        )

    rows = []
    wins = dict.fromkeys(CODECS, 0)
    log_ratio = dict.fromkeys(CODECS, 0.0)
    for name, fns in cases:
        n = c.calibrate(fns[BASE], target)
        timers = {codec: c.loop_timer(fn, n) for codec, fn in fns.items()}
        per_op = {codec: t / n for codec, t in c.best_of(timers, n_repeats).items()}
        wins[min(per_op, key=per_op.__getitem__)] += 1
        for codec in CODECS:
            log_ratio[codec] += math.log(per_op[codec] / per_op[BASE])
        rows.append(
            [
                name,
                *(f"{per_op[codec] / per_op[BASE]:.2f}x" for codec in CODECS if codec != BASE),
                *(c.fmt_ns(per_op[codec]) for codec in CODECS),
            ]
        )
    print()
    print("Time relative to msgspec (lower is faster; msgspec = 1.00x), then time per call:")
    print(
        c.table(
            [
                "case",
                *(f"{k}/msgspec" for k in CODECS if k != BASE),
                *(f"{k} per op" for k in CODECS),
            ],
            rows,
        )
    )
    sizes = ", ".join(f"{k}: {len(v)} B" for k, v in REPLIES.items())
    print(f"\nreply sizes: {sizes}")

    print("\nCorrectness (what a NemesisDB client cannot do without):")
    results = {
        check: {codec: fn(enc, dec) for codec, (enc, dec) in CODECS.items()}
        for check, fn in CHECKS.items()
    }
    print(
        c.table(
            ["check", *CODECS],
            [[check, *res.values()] for check, res in results.items()],
        )
    )
    failures = {
        codec: sum(not res[codec].startswith("PASS") for res in results.values())
        for codec in CODECS
    }
    print()
    print("Verdict:")
    geomean = {k: math.exp(v / len(cases)) for k, v in log_ratio.items()}
    for codec in CODECS:
        print(
            f"  {codec:8s} {geomean[codec]:.2f}x msgspec's time (geometric mean), fastest in "
            f"{wins[codec]}/{len(cases)} cases, fails {failures[codec]}/{len(CHECKS)} checks"
        )
    fine = [k for k in CODECS if failures[k] == 0]
    best = min(fine, key=geomean.__getitem__) if fine else "none"
    print(f"  -> the fastest codec that passes every check: {best}")


if __name__ == "__main__":
    main()
