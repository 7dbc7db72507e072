"""Embedded NemesisDB 0.7.4-compatible server.

``Engine`` answers request texts exactly like a NemesisDB 0.7.4 server would, without any
networking; see ``ndb_server.engine`` for its interface and its documented deviations.
``MemoryServer`` serves it to clients at a ``memory://`` URL, with no socket and a virtual clock.
"""

from ndb_server.engine import Engine
from ndb_server.memory import MemoryServer

__all__ = ["Engine", "MemoryServer"]
