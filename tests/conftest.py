"""The embedded server fixtures (``ndb_server``, ``ndb_server_factory``) come from the
``ndb_server.pytest_plugin`` entry point once the package is installed; this makes them
available when the tests run from a bare checkout too."""

import sys

if "ndb_server.pytest_plugin" not in sys.modules:
    from ndb_server.pytest_plugin import (  # noqa: F401
        ndb_memory_server,
        ndb_memory_server_factory,
        ndb_server,
        ndb_server_factory,
    )
