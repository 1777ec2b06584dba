#!/usr/bin/env python3
"""A counting TCP proxy for the benchmark (bench/run.sh).

    countproxy.py UPSTREAM_HOST UPSTREAM_PORT PORT_FILE STATS_FILE

Listens on a free 127.0.0.1 port (written to PORT_FILE once listening),
forwards every connection to UPSTREAM_HOST:UPSTREAM_PORT unchanged and counts:

- down: bytes from the server to the client (response headers and bodies:
  what a client pulls over the wire);
- up: bytes from the client to the server;
- requests: HTTP/1.x request lines seen in the client-to-server stream, by
  method (GET, HEAD, ...). Request bodies (PUT uploads) are scanned too; a
  random body matching "METHOD /... HTTP/1.x\\r\\n" is not a practical
  concern;
- connections: accepted so far, and active right now.

After every change of the connection count (and at most every 0.2 s while
data flows) it rewrites STATS_FILE atomically as JSON with these totals. The
caller takes differences between two snapshots; it waits for active == 0
after its client exited, so every byte of that client is counted.

With COUNTPROXY_RESET_RATE=P (0 <= P <= 1) it also injects faults: each
request line seen is, with probability P, followed by a reset of its
connection (both sides aborted) after a random 0-4 MiB more bytes in either
direction, so requests break off mid-body; `resets` counts them.

Stops on SIGTERM or SIGINT.
"""

import asyncio
import json
import os
import random
import re
import signal
import sys
import time

REQUEST_LINE = re.compile(rb"(GET|HEAD|PUT|POST|DELETE|OPTIONS) [^ \r\n]* HTTP/1\.[01]\r\n")
RESET_RATE = float(os.environ.get("COUNTPROXY_RESET_RATE", "0"))
# Longest request line we expect to see split across two reads.
CARRY = 8192


class Stats:
    def __init__(self, path):
        self.path = path
        self.down = 0
        self.up = 0
        self.requests = {}
        self.connections = 0
        self.active = 0
        self.resets = 0
        self.last_write = 0.0

    def snapshot(self):
        return {
            "down": self.down,
            "up": self.up,
            "requests": sum(self.requests.values()),
            "by_method": dict(sorted(self.requests.items())),
            "connections": self.connections,
            "active": self.active,
            "resets": self.resets,
        }

    def write(self, force=False):
        now = time.monotonic()
        if not force and now - self.last_write < 0.2:
            return
        self.last_write = now
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.snapshot(), f)
        os.replace(tmp, self.path)


async def pump(reader, writer, on_data):
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            on_data(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            pass


async def handle(client_reader, client_writer, upstream, stats):
    stats.connections += 1
    stats.active += 1
    stats.write(force=True)
    try:
        try:
            server_reader, server_writer = await asyncio.open_connection(*upstream)
        except OSError:
            client_writer.close()
            return
        tail = bytearray()
        doomed = [None]  # bytes left before this connection is reset

        def countdown(n):
            if doomed[0] is None:
                return
            doomed[0] -= n
            if doomed[0] <= 0:
                doomed[0] = None
                stats.resets += 1
                for w in (server_writer, client_writer):
                    w.transport.abort()

        def upward(data):
            nonlocal tail
            stats.up += len(data)
            # Scan the new bytes plus a short carry-over, counting only matches
            # that end inside the new bytes (so none is counted twice).
            buf = bytes(tail) + data
            for m in REQUEST_LINE.finditer(buf):
                if m.end() > len(tail):
                    method = m.group(1).decode()
                    stats.requests[method] = stats.requests.get(method, 0) + 1
                    if doomed[0] is None and random.random() < RESET_RATE:
                        doomed[0] = random.randint(0, 4 << 20)
            tail = bytearray(buf[-CARRY:])
            stats.write()
            countdown(len(data))

        def downward(data):
            stats.down += len(data)
            stats.write()
            countdown(len(data))

        tasks = {
            asyncio.create_task(pump(client_reader, server_writer, upward)),
            asyncio.create_task(pump(server_reader, client_writer, downward)),
        }
        # Once either side has closed, the exchange is over (HTTP clients do
        # not half-close); give the other direction a moment to drain.
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if pending:
            done, pending = await asyncio.wait(pending, timeout=2.0)
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        for w in (server_writer, client_writer):
            try:
                w.close()
                await w.wait_closed()
            except (OSError, ConnectionError):
                pass
    finally:
        stats.active -= 1
        stats.write(force=True)


async def main():
    if len(sys.argv) != 5:
        sys.exit("usage: countproxy.py UPSTREAM_HOST UPSTREAM_PORT PORT_FILE STATS_FILE")
    upstream = (sys.argv[1], int(sys.argv[2]))
    port_file, stats_file = sys.argv[3], sys.argv[4]
    stats = Stats(stats_file)
    stats.write(force=True)
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, upstream, stats), host="127.0.0.1", port=0
    )
    port = server.sockets[0].getsockname()[1]
    with open(port_file + ".tmp", "w") as f:
        f.write(f"{port}\n")
    os.replace(port_file + ".tmp", port_file)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    stats.write(force=True)


if __name__ == "__main__":
    asyncio.run(main())
