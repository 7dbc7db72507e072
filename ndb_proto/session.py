"""The session handle returned by ``sh_create``."""

from __future__ import annotations


class Session:
    """A NemesisDB session token, as NemesisDB's Python client exposes it.

    ``tkn`` is the u64 token. ``tknValid`` keeps the upstream client's meaning: the token is
    non-zero. The transports return subclasses bound to their client, so that
    ``session.set({...})`` works; anything that takes a token also takes a Session.
    """

    __slots__ = ("tkn",)

    def __init__(self, tkn: int) -> None:
        self.tkn = tkn

    @property
    def tknValid(self) -> bool:
        return self.tkn > 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tkn={self.tkn})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Session):
            return self.tkn == other.tkn
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.tkn)
