"""The jsoncons value rules of docs/protocol.md §2.3 as seen through requests and replies."""

from __future__ import annotations

import json

import pytest

from ndb_server import Engine


def _engine() -> Engine:
    return Engine(clock=lambda: 0.0, token_source=lambda: 7)


def _set_and_get(value_text: str) -> str:
    """Store ``value_text`` under key ``k`` and return the reply text of getting it back."""
    engine = _engine()
    assert engine.handle_text('{"KV_SET":{"keys":{"k":' + value_text + "}}}") == (
        '{"KV_SET_RSP":{"st":1}}'
    )
    return engine.handle_text('{"KV_GET":{"keys":["k"]}}')


def _got(value_text: str) -> str:
    reply = _set_and_get(value_text)
    prefix, suffix = '{"KV_GET_RSP":{"keys":{"k":', '},"st":1}}'
    assert reply.startswith(prefix), reply
    assert reply.endswith(suffix), reply
    return reply[len(prefix) : -len(suffix)]


@pytest.mark.parametrize(
    ("sent", "returned"),
    [
        ("18446744073709551615", "18446744073709551615"),
        ("18446744073709551616", '"18446744073709551616"'),
        ("-9223372036854775808", "-9223372036854775808"),
        ("-9223372036854775809", '"-9223372036854775809"'),
        ("9" * 5000, '"' + "9" * 5000 + '"'),
        ("-0", "0"),
        ("1e3", "1000.0"),
        ("1.0", "1.0"),
        ("34.5", "34.5"),
        ("1E20", "1e+20"),
        ("1.5e-7", "1.5e-07"),
        ("-0.0", "-0.0"),
        ("1e400", "null"),
        ("-1e400", "null"),
        ('"h\\u00e9/\\/\\"\\\\"', '"hé//\\"\\\\"'),
        ('"\\ud83d\\ude00"', '"\U0001f600"'),
        ('"\\u0001"', '"\\u0001"'),
        ('{"z":1,"y":{"b":2,"a":1}}', '{"y":{"a":1,"b":2},"z":1}'),
        ('{"\\uffff":1,"\\ud800\\udc00":2,"\\u00e9":3,"z":4}', '{"z":4,"é":3,"\uffff":1,"𐀀":2}'),
        ('{"x":1,"x":2,"y":{"a":[1],"a":[2]}}', '{"x":1,"y":{"a":[1]}}'),
        (" [ 1 , true , null ] ", "[1,true,null]"),
    ],
)
def test_values_are_stored_and_returned_like_jsoncons(sent: str, returned: str) -> None:
    assert _got(sent) == returned


def test_top_level_duplicate_runs_the_first_body() -> None:
    engine = _engine()
    text = '{"KV_SET":{"keys":{"a":1}},"KV_SET":{"keys":{"a":2}}}'
    assert engine.handle_text(text) == '{"KV_SET_RSP":{"st":1}}'
    assert (
        engine.handle_text('{"KV_GET":{"keys":["a"]}}') == '{"KV_GET_RSP":{"keys":{"a":1},"st":1}}'
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        '{"KV_SET":',
        '{"KV_COUNT":{}} trailing',
        '{"KV_COUNT":{}}{}',
        '{"KV_SET":{"keys":{"a":NaN}}}',
        '{"KV_SET":{"keys":{"a":Infinity}}}',
        '{"KV_SET":{"keys":{"a":-Infinity}}}',
        '{"KV_SET":{"keys":{"a":01}}}',
        '{"KV_SET":{"keys":{"a":1.}}}',
        '{"KV_SET":{"keys":{"a":"\x01"}}}',
        '{"KV_SET":{"keys":{"a":"\\ud800"}}}',
        '{"KV_SET":{"keys":{"\\udc00":1}}}',
        "{'KV_COUNT':{}}",
    ],
)
def test_invalid_json_is_err_3(text: str) -> None:
    assert _engine().handle_text(text) == '{"ERR":{"m":"","st":3}}'


def _nested(depth: int) -> str:
    """A KV_SET request whose JSON nesting is exactly ``depth`` (3 levels are the envelope)."""
    inner = depth - 3
    return '{"KV_SET":{"keys":{"k":' + "[" * inner + "]" * inner + "}}}"


def test_nesting_up_to_1024_is_accepted() -> None:
    engine = _engine()
    assert engine.handle_text(_nested(1024)) == '{"KV_SET_RSP":{"st":1}}'
    reply = engine.handle_text('{"KV_GET":{"keys":["k"]}}')
    assert reply == '{"KV_GET_RSP":{"keys":{"k":' + "[" * 1021 + "]" * 1021 + '},"st":1}}'


def test_nesting_beyond_1024_is_err_3() -> None:
    assert _engine().handle_text(_nested(1025)) == '{"ERR":{"m":"","st":3}}'


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    value = json.dumps("[{" * 2000 + '\\"')
    assert _got(value) == value


@pytest.mark.parametrize("duration", ["10.0", "1e1", '"10"', "-1", "true", "18446744073709551616"])
def test_unsigned_parameters_need_a_plain_integer_literal(duration: str) -> None:
    reply = _engine().handle_text('{"SH_NEW":{"expiry":{"duration":' + duration + "}}}")
    assert reply == '{"SH_NEW_RSP":{"m":"Param type incorrect","st":41,"tkn":null}}'


def test_minus_zero_is_a_valid_unsigned_integer() -> None:
    engine = _engine()
    assert engine.handle_text('{"SH_NEW":{"expiry":{"duration":-0}}}') == (
        '{"SH_NEW_RSP":{"st":1,"tkn":7}}'
    )
    assert engine.handle_text('{"SH_END":{"tkn":-0}}') == '{"SH_END_RSP":{"st":100,"tkn":0}}'


def test_replies_are_compact_sorted_and_raw_utf8() -> None:
    engine = _engine()
    engine.handle_text('{"KV_SET":{"keys":{"ü/x":{"b":"</script>","a":"日本"}}}}')
    assert engine.handle_text('{"KV_GET":{"keys":["ü/x"]}}') == (
        '{"KV_GET_RSP":{"keys":{"ü/x":{"a":"日本","b":"</script>"}},"st":1}}'
    )
