"""ndb_cli: NemesisDB on the command line (the ``ndb`` command).

A thin application over `ndb_transports.asyncio`: its commands, their parameters, help texts and
completions are read from `ndb_proto.calls` (`ndb_cli.surface`), so it has no command of its own.
Importing `ndb_proto` or `ndb_transports` never imports this package.
"""
