"""Embedded NemesisDB 0.7.4-compatible server.

``Engine`` answers request texts exactly like a NemesisDB 0.7.4 server would, without any
networking; see ``ndb_server.engine`` for its interface and its documented deviations.
``MemoryServer`` serves it to clients at a ``memory://`` URL, with no socket and a virtual clock;
``ServerThread`` serves it on a loopback port from a thread of its own. Both take the options of
``ndb_server.options.ServerOptions``, among them a ``clock`` (a ``VirtualClock``, whose
``new_event_loop()`` gives asyncio code the same time, or trio's ``MockClock``) that the
server's time follows.
"""

from ndb_server.engine import Engine
from ndb_server.memory import MemoryServer
from ndb_server.options import ServerOptions
from ndb_server.thread import ServerThread
from ndb_transports.clock import VirtualClock

__all__ = ["Engine", "MemoryServer", "ServerOptions", "ServerThread", "VirtualClock"]
