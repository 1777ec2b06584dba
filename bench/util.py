#!/usr/bin/env python3
"""Helpers for bench/run.sh (python3 standard library only).

    util.py stamp FILE TAG
        Makes FILE's content unique to TAG by overwriting 32 bytes at every
        64 KiB. Garage stores data in content-addressed blocks and skips
        writing a block it already has, so uploading the same bytes twice
        would make the second upload cheaper than the first; a stamp at
        every 64 KiB changes every block of any alignment (blocks are
        1 MiB). Costs a few milliseconds per GiB and keeps FILE in the page
        cache.

    util.py offsets SIZE OUT
        Writes a gprestore-style offsets file (`N s1 e1 ... sN eN`, no
        trailing newline) with 20 ranges of varied sizes for an object of
        SIZE bytes (SIZE >= 64 MiB): a `0 0`, small ranges of a few KiB,
        adjacent pairs, MiB-sized ranges, one larger than a default 8 MiB
        request. Prints "N REQUESTED_BYTES".

    util.py extract FILE OFFSETS
        Prints the SHA-256 and the length of FILE's bytes at those ranges,
        concatenated in order (what restore_data_subset must write).

    util.py smallcalls PLUGIN CONFIG DIR N OUT_JSON
        N sequential pairs: `PLUGIN backup_data CONFIG DIR/gpbackup_small_I`
        with 1 KiB of fresh random bytes on stdin, then `restore_data` of
        the same path, stdout captured and compared. Times each process
        (wall clock, fork to exit) and writes the statistics as JSON.

    util.py diff BEFORE_JSON AFTER_JSON
        Prints AFTER - BEFORE for the counters of two countproxy.py
        snapshots, as JSON.

    util.py wait-idle STATS_JSON [TIMEOUT_S]
        Waits until the proxy reports no active connection.
"""

import hashlib
import json
import os
import statistics
import subprocess
import sys
import time

KiB = 1 << 10
MiB = 1 << 20


def stamp(path, tag):
    size = os.path.getsize(path)
    seed = hashlib.sha256(f"{tag} {time.time_ns()}".encode()).digest()
    fd = os.open(path, os.O_WRONLY)
    try:
        for off in range(0, size, 64 * KiB):
            mark = seed[:24] + off.to_bytes(8, "little")
            n = min(len(mark), size - off)
            os.pwrite(fd, mark[:n], off)
        os.fsync(fd)  # no writeback of these pages during the next measurement
    finally:
        os.close(fd)


def offsets(size, out):
    if size < 64 * MiB:
        sys.exit(f"offsets: the object must be at least 64 MiB, not {size} bytes")
    scale = size / (64 * MiB)

    def at(mib):  # a position laid out for 64 MiB, scaled to the object
        return int(mib * MiB * scale)

    ranges = [(0, 0)]  # a table missing from the TOC

    def add(start, length):
        ranges.append((start, start + length))

    add(1000, 3 * KiB)
    add(at(2), 2 * KiB)
    add(at(4), 300 * KiB)
    a = at(8)
    add(a, 1 * MiB)  # adjacent pair, MiB-sized
    add(a + 1 * MiB, 3 * MiB + 123)
    add(at(13), 5 * KiB)
    add(at(15.3), 2 * MiB + 17)
    add(at(19), 7 * KiB)
    c = at(24)
    add(c, 4 * KiB)  # adjacent pair, small
    add(c + 4 * KiB, 9 * KiB)
    add(at(25), 1 * MiB)
    add(at(28), 6 * MiB)
    add(at(35), 12 * KiB)
    add(at(37), 9 * MiB + 5)  # more than one 8 MiB request
    add(at(47), 1 * KiB)
    d = at(50)
    add(d, 2 * MiB)  # adjacent pair, MiB-sized
    add(d + 2 * MiB, 2 * MiB)
    add(at(56), 3 * KiB)
    add(size - 5 * KiB, 5 * KiB)  # the object's last bytes
    prev_end = 0
    for s, e in ranges[1:]:
        assert prev_end <= s <= e <= size, (s, e, prev_end, size)
        prev_end = e
    with open(out, "w") as f:
        f.write(f"{len(ranges)} " + " ".join(f"{s} {e}" for s, e in ranges))
    print(len(ranges), sum(e - s for s, e in ranges))


def extract(path, offsets_file):
    words = open(offsets_file).read().split()
    n = int(words[0])
    h = hashlib.sha256()
    total = 0
    with open(path, "rb") as f:
        for i in range(n):
            s, e = int(words[1 + 2 * i]), int(words[2 + 2 * i])
            f.seek(s)
            data = f.read(e - s)
            assert len(data) == e - s
            h.update(data)
            total += len(data)
    print(h.hexdigest(), total)


def pct(values, p):
    """Nearest-rank percentile."""
    v = sorted(values)
    k = max(0, min(len(v) - 1, -(-p * len(v) // 100) - 1))
    return v[int(k)]


def summary(ms):
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "median_ms": statistics.median(ms),
        "p95_ms": pct(ms, 95),
        "mean_ms": statistics.fmean(ms),
        "min_ms": min(ms),
        "max_ms": max(ms),
    }


def smallcalls(plugin, config, directory, n, out):
    backup_ms, restore_ms, errors = [], [], []
    for i in range(n):
        path = f"{directory}/gpbackup_small_{i:04d}"
        payload = os.urandom(KiB)
        t0 = time.perf_counter_ns()
        b = subprocess.run([plugin, "backup_data", config, path], input=payload, capture_output=True, timeout=120)
        t1 = time.perf_counter_ns()
        r = subprocess.run([plugin, "restore_data", config, path], capture_output=True, timeout=120)
        t2 = time.perf_counter_ns()
        backup_ms.append((t1 - t0) / 1e6)
        restore_ms.append((t2 - t1) / 1e6)
        if b.returncode != 0 or b.stderr:
            errors.append(f"backup_data #{i}: exit {b.returncode}: {b.stderr.decode(errors='replace').strip()}")
        if r.returncode != 0 or r.stderr:
            errors.append(f"restore_data #{i}: exit {r.returncode}: {r.stderr.decode(errors='replace').strip()}")
        elif r.stdout != payload:
            errors.append(f"restore_data #{i}: {len(r.stdout)} bytes back, not the 1024 written")
    # Where a small call's time goes: the machine's process-spawn floor, the
    # plugin's own start-up, start-up plus reading and validating the config
    # (a segment-scope hook makes no request), and the rest is the request.
    floor = {"spawn /bin/true": ["/bin/true"], "--version": [plugin, "--version"],
             "config only (segment hook)": [plugin, "setup_plugin_for_backup", config, directory, "segment", '"0"']}
    breakdown = {}
    for name, argv in floor.items():
        times = []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            subprocess.run(argv, capture_output=True, timeout=60)
            times.append((time.perf_counter_ns() - t0) / 1e6)
        breakdown[name] = summary(times)
    result = {
        "pairs": n,
        "bytes_each": KiB,
        "breakdown": breakdown,
        "backup_data": summary(backup_ms),
        "restore_data": summary(restore_ms),
        "errors": len(errors),
        "error_samples": errors[:5],
    }
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    for e in errors[:5]:
        print(e, file=sys.stderr)


def diff(before, after):
    a = json.load(open(before))
    b = json.load(open(after))
    methods = sorted(set(a["by_method"]) | set(b["by_method"]))
    print(
        json.dumps(
            {
                "down": b["down"] - a["down"],
                "up": b["up"] - a["up"],
                "requests": b["requests"] - a["requests"],
                "by_method": {m: b["by_method"].get(m, 0) - a["by_method"].get(m, 0) for m in methods},
                "connections": b["connections"] - a["connections"],
            }
        )
    )


def wait_idle(stats, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if json.load(open(stats))["active"] == 0:
                return
        except (OSError, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            sys.exit(f"wait-idle: the proxy still has active connections after {timeout} s")
        time.sleep(0.05)


def main():
    args = sys.argv[1:]
    cmd = args[0] if args else ""
    if cmd == "stamp" and len(args) == 3:
        stamp(args[1], args[2])
    elif cmd == "offsets" and len(args) == 3:
        offsets(int(args[1]), args[2])
    elif cmd == "extract" and len(args) == 3:
        extract(args[1], args[2])
    elif cmd == "smallcalls" and len(args) == 6:
        smallcalls(args[1], args[2], args[3], int(args[4]), args[5])
    elif cmd == "diff" and len(args) == 3:
        diff(args[1], args[2])
    elif cmd == "wait-idle" and len(args) in (2, 3):
        wait_idle(args[1], float(args[2]) if len(args) == 3 else 10.0)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
