"""docs/protocol.md §3 dispatch, the three error shapes and validation order (§6)."""

from __future__ import annotations

import pytest

from ndb_server import Engine


def _engine() -> Engine:
    return Engine(clock=lambda: 0.0)


@pytest.mark.parametrize(
    ("request_text", "reply"),
    [
        ("[1]", '{"ERR":{"m":"","st":13}}'),
        ("5", '{"ERR":{"m":"","st":13}}'),
        ('"KV_COUNT"', '{"ERR":{"m":"","st":13}}'),
        ("{}", '{"ERR":{"m":"","st":13}}'),
        ('{"KV_COUNT":{},"KV_KEYS":{}}', '{"ERR":{"m":"","st":13}}'),
        ('{"KV_SET":5}', '{"KV_SET_RSP":{"m":"","st":13,"tkn":null}}'),
        ('{"SH_NEW":[]}', '{"SH_NEW_RSP":{"m":"","st":13,"tkn":null}}'),
        ('{"SV_INFO":null}', '{"SV_INFO_RSP":{"m":"","st":13,"tkn":null}}'),
        ('{"FOO":5}', '{"FOO_RSP":{"m":"","st":13,"tkn":null}}'),
        ('{"FOO":{}}', '{"FOO_RSP":{"m":"","st":13,"tkn":null}}'),
        ('{"KV_SETQ":{"keys":{"a":1}}}', '{"ERR":{"m":"","st":10}}'),
        ('{"KV_ADDQ":{"keys":{"a":1}}}', '{"ERR":{"m":"","st":10}}'),
        ('{"KV_":{}}', '{"ERR":{"m":"","st":10}}'),
        ('{"SH_OPEN":{"name":"x"}}', '{"SH_OPEN_RSP":{"m":"","st":10,"tkn":null}}'),
        ('{"SH_FIND":{}}', '{"SH_FIND_RSP":{"m":"","st":10,"tkn":null}}'),
        ('{"SH_UPDATE":{}}', '{"SH_UPDATE_RSP":{"m":"","st":10,"tkn":null}}'),
        (
            '{"SV_INFO":{"x":1}}',
            '{"SV_INFO_RSP":{"persistEnabled":false,"serverVersion":"0.7.4","st":1}}',
        ),
    ],
)
def test_dispatch_table(request_text: str, reply: str) -> None:
    assert _engine().handle_text(request_text) == reply


def test_unknown_commands_are_answered_with_their_own_name() -> None:
    """Deviation 1: the real server would reuse the first unknown name (``SV_FOO_RSP``)."""
    engine = _engine()
    for name in ("SV_FOO", "XX_Y", "kv_set", "_X", "sv_info", "SV_INFO_X"):
        assert engine.handle_text('{"' + name + '":{}}') == (
            '{"' + name + '_RSP":{"m":"","st":10,"tkn":null}}'
        )


def test_binary_frames_are_err_2() -> None:
    assert _engine().handle_binary(b'{"KV_COUNT":{}}') == '{"ERR":{"m":"","st":2}}'


def test_exceptions_in_handlers_use_the_side_specific_shape() -> None:
    engine = _engine()
    engine.handle_text('{"KV_SET":{"keys":{"p":{"a":1}}}}')
    assert engine.handle_text('{"KV_UPDATE":{"key":"p","path":"$[?(","value":1}}') == (
        '{"ERR":{"m":"","st":1000}}'
    )
    assert engine.handle_text('{"KV_LOAD":{"name":""}}') == '{"ERR":{"m":"","st":1000}}'
    assert engine.handle_text('{"SH_LOAD":{"name":""}}') == (
        '{"SH_LOAD_RSP":{"m":"","st":1000,"tkn":null}}'
    )


@pytest.mark.parametrize(
    ("request_text", "reply"),
    [
        # items (array) is checked before key (string)
        (
            '{"KV_ARR_APPEND":{"items":5}}',
            '{"KV_ARR_APPEND_RSP":{"m":"Param type incorrect","st":41,"tkn":null}}',
        ),
        (
            '{"KV_ARR_APPEND":{"key":5}}',
            '{"KV_ARR_APPEND_RSP":{"m":"Missing parameter","st":26,"tkn":null}}',
        ),
        (
            '{"KV_ARR_APPEND":{"items":[],"key":"k","name":1}}',
            '{"KV_ARR_APPEND_RSP":{"m":"Param type incorrect","st":41,"tkn":null}}',
        ),
        # keys (optional array) before path before rsp
        (
            '{"KV_FIND":{"keys":1}}',
            '{"KV_FIND_RSP":{"m":"Param type incorrect","st":41,"tkn":null}}',
        ),
        ('{"KV_FIND":{"rsp":1}}', '{"KV_FIND_RSP":{"m":"Missing parameter","st":26,"tkn":null}}'),
        (
            '{"KV_FIND":{"path":"$","rsp":1}}',
            '{"KV_FIND_RSP":{"m":"Param type incorrect","st":41,"tkn":null}}',
        ),
        # custom checks come last: rsp value, then empty path
        (
            '{"KV_FIND":{"path":"","rsp":"x"}}',
            '{"KV_FIND_RSP":{"m":"\'rsp\' invalid value","st":13,"tkn":null}}',
        ),
        (
            '{"KV_FIND":{"path":"","rsp":"kv"}}',
            '{"KV_FIND_RSP":{"m":"\'path\' is empty","st":42,"tkn":null}}',
        ),
        # key before path before value; value may be null
        (
            '{"KV_UPDATE":{"key":1}}',
            '{"KV_UPDATE_RSP":{"m":"Param type incorrect","st":41,"tkn":null}}',
        ),
        (
            '{"KV_UPDATE":{"key":"k","path":1}}',
            '{"KV_UPDATE_RSP":{"m":"Param type incorrect","st":41,"tkn":null}}',
        ),
        (
            '{"KV_UPDATE":{"key":"k","path":"$","value":null}}',
            '{"KV_UPDATE_RSP":{"cnt":0,"st":22}}',
        ),
        # deleteSession before duration
        (
            '{"SH_NEW":{"expiry":{"deleteSession":1}}}',
            '{"SH_NEW_RSP":{"m":"Param type incorrect","st":41,"tkn":null}}',
        ),
        (
            '{"SH_NEW":{"expiry":{"duration":1,"extendOnSetAdd":"y"}}}',
            '{"SH_NEW_RSP":{"m":"Param type incorrect","st":41,"tkn":null}}',
        ),
        # session data commands validate before looking up the token
        (
            '{"SH_GET":{"tkn":"x","keys":5}}',
            '{"SH_GET_RSP":{"m":"Param type incorrect","st":41,"tkn":null}}',
        ),
        ('{"SH_RMV":{"tkn":1,"keys":[]}}', '{"SH_RMV_RSP":{"m":"keys","st":42,"tkn":null}}'),
        ('{"SH_CLEAR":{"tkn":1}}', '{"SH_CLEAR_RSP":{"m":"","st":100,"tkn":null}}'),
        (
            '{"SH_CLEAR_SET":{"tkn":1,"keys":{}}}',
            '{"SH_CLEAR_SET_RSP":{"m":"","st":100,"tkn":null}}',
        ),
        # body-less commands ignore their body
        ('{"KV_CLEAR":{"keys":5}}', '{"KV_CLEAR_RSP":{"cnt":0,"st":1}}'),
        ('{"KV_KEYS":{"x":1}}', '{"KV_KEYS_RSP":{"keys":[],"st":1}}'),
        ('{"SH_INFO_ALL":{"x":1}}', '{"SH_INFO_ALL_RSP":{"st":1,"totalKeys":0,"totalSessions":0}}'),
        ('{"SH_END_ALL":{"x":1}}', '{"SH_END_ALL_RSP":{"cnt":0,"st":1}}'),
        # SH_INFO / SH_END token handling
        ('{"SH_INFO":{"tkn":"123"}}', '{"SH_INFO_RSP":{"m":"","st":100,"tkn":null}}'),
        ('{"SH_INFO":{"tkn":-1}}', '{"SH_INFO_RSP":{"m":"","st":100,"tkn":null}}'),
        (
            '{"SH_INFO":{"tkn":5,"tkn":6}}',
            '{"SH_INFO_RSP":{"keyCnt":null,"shared":null,"st":100,"tkn":5}}',
        ),
        ('{"SH_END":{"tkn":1.0}}', '{"SH_END_RSP":{"m":"","st":100,"tkn":null}}'),
        (
            '{"SH_END":{"tkn":18446744073709551615}}',
            '{"SH_END_RSP":{"st":100,"tkn":18446744073709551615}}',
        ),
        ('{"SH_EXISTS":{"tkns":[1,"x",-1,2.0]}}', '{"SH_EXISTS_RSP":{"exist":[],"st":1}}'),
    ],
)
def test_validation_order_and_error_shapes(request_text: str, reply: str) -> None:
    assert _engine().handle_text(request_text) == reply


def test_save_is_disabled_before_validation_without_persistence() -> None:
    engine = _engine()
    assert not engine.persist_enabled
    assert engine.handle_text('{"KV_SAVE":{"name":5}}') == '{"KV_SAVE_RSP":{"m":"","st":14}}'
    assert engine.handle_text('{"SH_SAVE":{"tkns":[]}}') == '{"SH_SAVE_RSP":{"m":"","st":14}}'
