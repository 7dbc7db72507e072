"""NemesisDB's session example, with ndb: one session per user, keys set, read and overwritten.

    python examples/sessions.py [ws://host:port/]

With no URL it starts an embedded NemesisDB-compatible server for the run.
"""

from __future__ import annotations

import asyncio
import sys

from ndb_transports.asyncio import NdbClient


async def main(url: str) -> None:
    async with NdbClient() as client:
        if not await client.open(url):
            raise SystemExit(f"cannot connect to {url}")

        # A session holds its own keys, separate from the KV store and from other sessions.
        session = await client.sh_create()
        await client.sh_set(session.tkn, {"fname": "James", "sname": "smith"})
        print("created:", await client.sh_get(session.tkn, ("fname", "sname")))

        # Setting an existing key overwrites it.
        await client.sh_set(session.tkn, {"sname": "Smith"})
        print("overwritten:", await client.sh_get(session.tkn, key="sname"))

        # Several users, each with a session; a Session is bound to its client.
        user1 = await client.sh_create()
        user2 = await client.sh_create()
        await user1.set({"username": "user1", "roles": ["NewUser", "ReadOnly"]})
        await user2.set({"username": "user2", "blocked": True})
        print("user1:", await user1.get(("username", "blocked")))
        print("user2:", await user2.get(("username", "blocked")))

        # A session that expires: emptied 60 s after the last set or add.
        cart = await client.sh_create(durationSeconds=60, extendOnSetAdd=True)
        await cart.set({"items": ["book"]})
        print("cart:", await cart.info())

        print("sessions:", await client.sh_info_all())
        await client.sh_end_all()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        asyncio.run(main(sys.argv[1]))
    else:
        from ndb_server.thread import ServerThread

        with ServerThread() as server:
            print("embedded server at", server.url)
            asyncio.run(main(server.url))
