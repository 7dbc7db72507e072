"""Embedded NemesisDB 0.7.4-compatible server.

``Engine`` answers request texts exactly like a NemesisDB 0.7.4 server would, without any
networking; see ``ndb_server.engine`` for its interface and its documented deviations.
"""

from ndb_server.engine import Engine

__all__ = ["Engine"]
