"""A supervisor process for tests that kill it: runs a feed until killed.

Usage: python supervisor_child.py SIM_URL FEED_NAME. Prints one JSON line with the
worker pids once ticks flow, then waits.
"""

from __future__ import annotations

import json
import sys
import time

from kitefeed.engine import Feed

CREDENTIALS = {"key_a": "token-a-3f9c1e", "key_b": "token-b-77d2aa"}


def main() -> None:
    url, name = sys.argv[1], sys.argv[2]
    feed = Feed(CREDENTIALS, url=url, name=name, ring_capacity=1024).start()
    feed.subscribe([256265, 408065])
    with feed.open_reader() as reader:
        reader.read(timeout=20)
    print(json.dumps({"workers": [handle.process.pid for handle in feed._supervisor.workers]}), flush=True)
    time.sleep(120)


if __name__ == "__main__":
    main()
