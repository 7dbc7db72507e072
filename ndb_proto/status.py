"""Reply statuses (the ``st`` member) of NemesisDB 0.7.4.

Names follow the server source (``RequestStatus`` in ``core/NemesisCommon.h``), which is what the
wire carries; docs/protocol.md §5 maps them to the documentation's names.
"""

from __future__ import annotations

from enum import IntEnum


class Status(IntEnum):
    """Every status value the 0.7.4 server defines, whether or not it is ever sent."""

    OK = 1
    OP_CODE_INVALID = 2
    JSON_INVALID = 3
    PATH_INVALID = 4
    NO_PATH = 5
    COMMAND_NOT_EXIST = 10
    COMMAND_MULTIPLE = 11
    COMMAND_TYPE = 12
    COMMAND_SYNTAX = 13
    COMMAND_DISABLED = 14
    KEY_NOT_EXIST = 22
    PARAM_MISSING = 26
    VALUE_MISSING = 40
    VALUE_TYPE_INVALID = 41
    VALUE_SIZE = 42
    SESSION_NOT_EXIST = 100
    SESSION_TOKEN_INVALID = 101
    SESSION_OPEN_FAIL = 102
    SESSION_NEW_FAIL = 103
    SAVE_START = 120
    SAVE_COMPLETE = 121
    SAVE_DIR_WRITE_FAIL = 122
    SAVE_ERROR = 123
    LOADING = 140
    LOAD_COMPLETE = 141
    LOAD_ERROR = 142
    UNKNOWN = 1000


def status_or_int(value: int) -> Status | int:
    """The `Status` for a known value, else the bare integer (a newer server may add some)."""
    try:
        return Status(value)
    except ValueError:
        return value
