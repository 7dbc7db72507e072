"""``$tkn`` and ``$_``: the last session token and the last result, usable as words."""

from __future__ import annotations

from typing import Any

from ndb_cli.words import Text, UsageError, Value, Word
from ndb_proto.session import Session

NAMES = ("$tkn", "$_")


class Variables:
    """What the shell and scripts remember between commands."""

    def __init__(self) -> None:
        self.tkn: int | None = None
        self.last: Any = None
        self.has_last = False

    def record(self, result: Any) -> None:
        """Remember a command's result; a new session's token becomes ``$tkn``."""
        self.last = result.tkn if isinstance(result, Session) else result
        self.has_last = True
        if isinstance(result, Session):
            self.tkn = result.tkn

    @staticmethod
    def used_in(words: list[str]) -> bool:
        return any(word in NAMES for word in words)

    def substitute(self, words: list[str]) -> list[Word]:
        """The typed words, with each ``$tkn`` and ``$_`` replaced by its value."""
        out: list[Word] = []
        for word in words:
            if word == "$tkn":
                if self.tkn is None:
                    raise UsageError("$tkn: no session created yet (sh_create sets it)")
                out.append(Value(self.tkn))
            elif word == "$_":
                if not self.has_last:
                    raise UsageError("$_: no result yet")
                out.append(Value(self.last))
            else:
                out.append(Text(word))
        return out
