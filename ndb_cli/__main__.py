"""``python -m ndb_cli``: the same as the ``ndb`` command."""

import sys

from ndb_cli.app import main

sys.exit(main())
