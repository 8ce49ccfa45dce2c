"""A drip campaign: one email a week, until the weeks run out or the user unsubscribes.

Run it:  python examples/email_loop.py [STORE]   (STORE: "memory:" or a SQLite file)

No process waits a week: `sleep` is a durable timer whose deadline is
recorded. This demo runs on a `VirtualClock`, so the weeks pass in
milliseconds; in production leave `clock=` out.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from typing import Any

import durable
from durable import activity, call, now, race, receive, sleep, workflow

WEEK = timedelta(days=7)


@activity(name="email.send")
def send_email(user: str, subject: str, day: str) -> str:
    return f"msg-{user}-{day}"


@workflow(name="email_loop")
def email_loop(user: str, weeks: int = 4) -> Any:
    sent = []
    for week in range(1, weeks + 1):
        today = yield now()
        sent.append((yield call(send_email, user, f"Week {week} tips", today.date().isoformat())))
        if week == weeks:
            break
        index, _ = yield race(sleep(WEEK), receive("unsubscribe"))
        if index == 1:
            return {"user": user, "sent": sent, "unsubscribed": True}
    return {"user": user, "sent": sent, "unsubscribed": False}


async def main(store: str = "memory:") -> None:
    async with durable.Engine(store, clock=durable.VirtualClock()) as engine:
        handle = await engine.start(email_loop, "ann@example.com", 4, id="drip-ann")
        print(await handle.result())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "memory:"))
