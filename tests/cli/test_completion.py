"""What Tab offers for the next word follows the rules the command is then run by."""

from __future__ import annotations

import pytest

pytest.importorskip("prompt_toolkit")

from ndb_cli.completion import complete


def test_after_a_double_dash_an_option_like_word_is_a_positional_one() -> None:
    # kv_update key path value: after "--", "--key" is the key, so the next word is the path,
    # which is not a key name: nothing to fetch.
    assert complete("kv_update -- --key ") is None
    after_key = complete("kv_update --key k ")
    assert after_key is None  # the next word is the path
    first = complete("kv_update ")
    assert first is not None and first.kv_keys


def test_an_option_value_is_completed_for_that_option() -> None:
    want = complete("kv_find $ --rsp ")
    assert want is not None and set(want.words) == {"keys", "paths", "kv"}
    want = complete("kv_get --key ")
    assert want is not None and want.kv_keys


def test_session_keys_after_a_token_and_nothing_after_an_unknown_option() -> None:
    want = complete("sh_get $tkn ")
    assert want is not None and want.session_of == "$tkn"
    assert complete("kv_get --nope ") is None  # an unknown option: nothing is guessed
