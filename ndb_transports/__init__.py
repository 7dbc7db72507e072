"""Thin transports that drive the `ndb_proto` core over real sockets.

* `ndb_transports.asyncio.NdbClient`: asyncio.
* `ndb_transports.trio.NdbClient`: trio.
* `ndb_transports.sync.NdbClient`: blocking sockets, safe to share between threads.

Each moves bytes between its socket and the core and wakes waiting callers; the commands are
generated once from `ndb_proto.calls` (see ``_generate.py``).
"""
