#!/usr/bin/env python3
"""Writes BENCHMARKS.md (markdown, on stdout) from bench/run.sh's results.

    report.py RESULTS_DIR > BENCHMARKS.md
    report.py --only encryption RESULTS_DIR   (BENCH_ONLY=encryption: that section alone)
    report.py --only network RESULTS_DIR      (BENCH_ONLY=network: section 9 alone)

With BENCH_NET_PLOT=PATH (run.sh sets bench/throughput-vs-rtt.png for the
full report) section 9's plot is drawn there, referenced as
BENCH_NET_PLOT_REF (default: PATH).

RESULTS_DIR holds meta.tsv, throughput.tsv, rss.tsv, small.json,
fanout.tsv, subset.tsv, subset.json, whole.json, subset.seconds and
checksums.md, as bench/run.sh writes them, and encryption.tsv (section 8).
"""

import csv
import json
import os
import statistics
import sys

from netreport import network

MiB = 1 << 20

TOOL_CMD = {
    ("upload", "plugin"): "`gpbackup_s3_plugin backup_data CFG PATH < FILE`",
    ("upload", "curl"): "`curl --aws-sigv4 ... -T FILE URL` (one PUT)",
    ("upload", "aws"): "`aws s3 cp - s3://BUCKET/KEY < FILE`",
    ("upload", "rclone"): "`rclone rcat REMOTE:BUCKET/KEY < FILE`",
    ("download", "plugin"): "`gpbackup_s3_plugin restore_data CFG PATH > /dev/null`",
    ("download", "curl"): "`curl --aws-sigv4 ... -o /dev/null URL` (one GET)",
    ("download", "aws"): "`aws s3 cp s3://BUCKET/KEY - > /dev/null`",
    ("download", "rclone"): "`rclone cat REMOTE:BUCKET/KEY > /dev/null`",
}
TOOL_NAME = {"plugin": "gpbackup_s3_plugin", "curl": "curl", "aws": "aws-cli", "rclone": "rclone"}


def read_tsv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def load(res):
    meta = {}
    with open(os.path.join(res, "meta.tsv")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("\t")
            meta[k] = v
    return meta


def cell(text):
    """Text safe inside a markdown table cell."""
    return text.replace("|", "\\|")


def fmt_ratio(x):
    return "n/a" if x is None else f"{x:.2f}x"


def verdict(ok):
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def encryption(res):
    """Section 8 (plain, encrypted, and encrypted and signed) and its
    targets, or ([], []) without results."""
    path = os.path.join(res, "encryption.tsv")
    if not os.path.exists(path):
        return [], []
    rows = read_tsv(path)
    rate, cpu, rss, small, small_cpu = {}, {}, {}, {}, {}
    for r in rows:
        key = (r["op"], r["mode"])
        if r["op"] == "small_pair":
            # bytes: the number of pairs of the timed loop.
            n = int(r["bytes"])
            small.setdefault(r["mode"], []).append(float(r["seconds"]) * 1000 / n)
            small_cpu.setdefault(r["mode"], []).append(float(r["cpu_seconds"]) * 1000 / n)
            continue
        gib = int(r["bytes"]) / (1 << 30)
        rate.setdefault(key, []).append(int(r["bytes"]) / MiB / float(r["seconds"]))
        cpu.setdefault(key, []).append(float(r["cpu_seconds"]) / gib)
        rss.setdefault(key, []).append(int(r.get("maxrss_kb") or 0) / 1024)
    big = [r for r in rows if r["op"] != "small_pair"]
    mib = int(big[0]["bytes"]) // MiB
    reps = len(rate[("backup_data", "plain")])
    signed = ("backup_data", "signed") in rate
    out = [f"## 8. Client-side encryption: {mib} MiB, plain, encrypted (age){' and signed' if signed else ''}", ""]
    out.append(
        "The same random file through `backup_data` and `restore_data` (to /dev/null) with the plain config, with"
    )
    out.append(
        "`encryption_recipients` (restores with `encryption_identity_file`)"
        + (", and signed as well (`encryption_signing_key_file`, restores with `encryption_verify_key`)" if signed else "")
        + f", rotated in {reps} rounds; median"
    )
    out.append("MiB/s, the plugin's CPU seconds (user + system, GNU time) per GiB of plaintext, and its largest peak RSS.")
    out.append("")
    modes = ["plain", "encrypted"] + (["signed"] if signed else [])
    head = " | ".join(f"{m.capitalize()} MiB/s" for m in modes)
    out.append(
        f"| Command | {head} | Encrypted/plain | "
        + " | ".join(f"{m.capitalize()} CPU s/GiB" for m in modes)
        + " | "
        + " | ".join(f"{m.capitalize()} peak RSS MiB" for m in modes)
        + " |"
    )
    out.append("| --- |" + " ---: |" * (3 * len(modes) + 1))
    worst, peak = None, 0.0
    for op in ("backup_data", "restore_data"):
        r = {m: statistics.median(rate[(op, m)]) for m in modes}
        c = {m: statistics.median(cpu[(op, m)]) for m in modes}
        m_rss = {m: max(rss[(op, m)]) for m in modes}
        peak = max([peak] + [m_rss[m] for m in modes if m != "plain"])
        for m in modes[1:]:
            worst = r[m] / r["plain"] if worst is None else min(worst, r[m] / r["plain"])
        out.append(
            f"| `{op}` | "
            + " | ".join(f"{r[m]:.1f}" for m in modes)
            + f" | {r['encrypted'] / r['plain']:.2f}x | "
            + " | ".join(f"{c[m]:.2f}" for m in modes)
            + " | "
            + " | ".join(f"{m_rss[m]:.1f}" for m in modes)
            + " |"
        )
    out.append("")
    targets = [
        ("encrypted throughput ≥ 0.8x plain (issue 16), the worse of backup and restore", fmt_ratio(worst), worst >= 0.8),
        ("encrypted peak RSS ≤ 128 MiB, backup and restore", f"{peak:.1f} MiB", 0 < peak <= 128),
    ]
    if "encrypted" in small and "signed" in small:
        e, g = statistics.median(small["encrypted"]), statistics.median(small["signed"])
        ec, gc = statistics.median(small_cpu["encrypted"]), statistics.median(small_cpu["signed"])
        out.append(
            f"Signing per object: 1 KiB `backup_data` + `restore_data` pairs, {len(small['signed'])} timed loops of "
            "each; median per pair."
        )
        out.append("")
        out.append("| Pair | Encrypted | Encrypted and signed | Difference |")
        out.append("| --- | ---: | ---: | ---: |")
        out.append(f"| wall ms | {e:.1f} | {g:.1f} | {g - e:+.1f} |")
        out.append(f"| CPU ms | {ec:.1f} | {gc:.1f} | {gc - ec:+.1f} |")
        out.append("")
    return out, targets


def main():
    plot = os.environ.get("BENCH_NET_PLOT") or None
    plot_ref = os.environ.get("BENCH_NET_PLOT_REF") or plot
    if sys.argv[1:3] == ["--only", "network"]:
        res = sys.argv[3]
        meta = load(res)
        section, targets = network(res, meta, plot, plot_ref)
        print("\n".join(section))
        print("| Target (issue 17) | Measured | Result |\n| --- | ---: | --- |")
        for name, measured, ok in targets:
            print(f"| {name} | {measured} | {verdict(ok)} |")
        if meta.get("quick") == "1":
            print("\n(Quick run: reduced sizes, the ratios are indicative only.)")
        print(f"\nServer: {meta.get('server', '?')}; load average {meta.get('load_start', '?')} at the start, "
              f"{meta.get('load_end', '?')} at the end; {meta.get('cpu', '?')}, {os.cpu_count()} CPUs.")
        return
    if sys.argv[1] == "--only":
        res = sys.argv[3]
        meta = load(res)
        section, enc_targets = encryption(res)
        print("\n".join(section))
        print("| Target | Measured | Result |\n| --- | ---: | --- |")
        for target in enc_targets:
            print(f"| {target[0]} | {target[1]} | {verdict(target[2])} |")
        print(f"\nServer: {meta.get('server', '?')}; load average {meta.get('load_start', '?')} at the start, "
              f"{meta.get('load_end', '?')} at the end; {meta.get('cpu', '?')}, {os.cpu_count()} CPUs.")
        return
    res = sys.argv[1]
    meta = load(res)
    quick = meta.get("quick") == "1"
    out = []
    w = out.append

    # ------------------------------------------------------------ throughput
    rows = read_tsv(os.path.join(res, "throughput.tsv"))
    med = {}  # (op, tool) -> median MiB/s
    runs = {}
    rss = {}
    size = {}
    failed = {}
    for r in rows:
        key = (r["op"], r["tool"])
        size[key] = int(r["bytes"])
        if r["status"] != "ok":
            failed.setdefault(key, []).append(r["status"])
            continue
        runs.setdefault(key, []).append(int(r["bytes"]) / MiB / float(r["seconds"]))
        rss[key] = max(rss.get(key, 0), int(r["maxrss_kb"]))
    for key, v in runs.items():
        med[key] = statistics.median(v)

    def ratio(op, a, b):
        if (op, a) in med and (op, b) in med:
            return med[(op, a)] / med[(op, b)]
        return None

    big_mib = next(iter(size.values())) // MiB if size else 0

    # ------------------------------------------------------------ other sections
    rss_rows = read_tsv(os.path.join(res, "rss.tsv"))
    small = json.load(open(os.path.join(res, "small.json")))
    fan = read_tsv(os.path.join(res, "fanout.tsv"))[0]
    sub = read_tsv(os.path.join(res, "subset.tsv"))[0]
    sub_wire = json.load(open(os.path.join(res, "subset.json")))
    whole_wire = json.load(open(os.path.join(res, "whole.json")))
    sub_sec = float(open(os.path.join(res, "subset.seconds")).read())
    whole_sec = float(open(os.path.join(res, "whole.seconds")).read())
    checksums = open(os.path.join(res, "checksums.md")).read().strip()

    # ------------------------------------------------------------ header
    w("# Benchmarks")
    w("")
    if quick:
        w(f"> **QUICK RUN (`BENCH_QUICK=1`): reduced sizes (see Sizes below), load average {meta.get('load_start')}")
        w("> at the start. These numbers only show that the benchmark works; they are not reference")
        w("> numbers. Run `make bench` on an idle machine for those.**")
        w("")
    w(f"Written by `make bench` (`bench/run.sh`) on {meta.get('date', '?')}. Everything runs on this")
    w("machine over loopback (127.0.0.1): the S3 server, the plugin and the comparison clients share the")
    w("same CPUs, so every number includes the server's own cost.")
    w("")
    w("## Machine")
    w("")
    w("| | |")
    w("| --- | --- |")
    w(f"| CPUs (`nproc`) | {meta.get('nproc')} |")
    w(f"| CPU | {meta.get('cpu')} (flags: {meta.get('cpu_flags') or 'none of interest'}) |")
    w(f"| Memory | {meta.get('memory')} |")
    w(f"| Kernel | {meta.get('kernel')} |")
    w(f"| OS | {meta.get('os')} |")
    w(f"| Load average (1, 5, 15 min) | {meta.get('load_start')} at the start, {meta.get('load_end')} at the end |")
    w(f"| S3 server | {meta.get('server')} |")
    w(f"| Plugin | {meta.get('plugin_version')}, commit {meta.get('git')}, {meta.get('rustc')} |")
    w(f"| curl | {meta.get('curl')} |")
    w(f"| aws-cli | {meta.get('aws')} |")
    w(f"| rclone | {meta.get('rclone')} |")
    w(f"| Other | {meta.get('openssl')}, {meta.get('python')}, GNU time |")
    w(f"| Sizes | {meta.get('sizes')}, {meta.get('reps')} rounds per throughput measurement |")
    w("")

    # ------------------------------------------------------------ targets
    def rss_of(cmd, which):
        cand = [r for r in rss_rows if r["cmd"] == cmd]
        cand.sort(key=lambda r: int(r["mib"]))
        if not cand:
            return None, None
        r = cand[0] if which == "small" else cand[-1]
        return int(r["mib"]), int(r["maxrss_kb"]) / 1024

    targets = []
    up_curl = ratio("upload", "plugin", "curl")
    up_aws = ratio("upload", "plugin", "aws")
    dn_curl = ratio("download", "plugin", "curl")
    up_rc = ratio("upload", "plugin", "rclone")
    dn_rc = ratio("download", "plugin", "rclone")
    targets.append(("backup_data ≥ 0.9x curl PUT", fmt_ratio(up_curl), None if up_curl is None else up_curl >= 0.9))
    targets.append(("backup_data ≥ 3x aws-cli upload", fmt_ratio(up_aws), None if up_aws is None else up_aws >= 3))
    targets.append(("restore_data ≥ 0.9x curl GET", fmt_ratio(dn_curl), None if dn_curl is None else dn_curl >= 0.9))
    targets.append(("backup_data ahead of rclone rcat", fmt_ratio(up_rc), None if up_rc is None else up_rc > 1))
    targets.append(("restore_data ahead of rclone cat", fmt_ratio(dn_rc), None if dn_rc is None else dn_rc > 1))
    for cmd in ("backup_data", "restore_data"):
        sizes = sorted({int(r["mib"]) for r in rss_rows if r["cmd"] == cmd})
        for m in sizes:
            peak = max(int(r["maxrss_kb"]) for r in rss_rows if r["cmd"] == cmd and int(r["mib"]) == m) / 1024
            targets.append((f"{cmd} peak RSS ≤ 128 MiB, {m} MiB stream", f"{peak:.1f} MiB", peak <= 128))
        if len(sizes) >= 2:
            (m1, p1), (m2, p2) = rss_of(cmd, "small"), rss_of(cmd, "large")
            flat = p2 <= max(p1 * 1.10, p1 + 8)
            targets.append(
                (
                    f"{cmd} peak RSS the same for {m1} and {m2} MiB (within 10% or 8 MiB)",
                    f"{p1:.1f} → {p2:.1f} MiB",
                    flat,
                )
            )
    for cmd in ("backup_data", "restore_data"):
        m = small[cmd].get("median_ms")
        targets.append((f"{cmd} small call (1 KiB) ≤ 10 ms median", f"{m:.1f} ms", m <= 10))
    sub_ratio = sub_wire["down"] / int(sub["requested"])
    targets.append(("restore_data_subset fetches ≤ 1.01x the bytes requested", f"{sub_ratio:.4f}x", sub_ratio <= 1.01))
    targets.append(("fan-out without errors", f"{fan['errors']} errors", int(fan["errors"]) == 0))
    net_section, net_targets = network(res, meta, plot, plot_ref)
    targets.extend((f"{name} (issue 17)", measured, ok) for name, measured, ok in net_targets)
    enc_section, enc_targets = encryption(res)
    targets.extend(enc_targets)

    w("## Targets")
    w("")
    w("| Target (issue 3) | Measured | Result |")
    w("| --- | ---: | --- |")
    for name, measured, ok in targets:
        w(f"| {name} | {measured} | {verdict(ok)} |")
    w("")
    if quick:
        w("(Quick run: the ratios are indicative only.)")
        w("")

    # ------------------------------------------------------------ 1
    w(f"## 1. Throughput, {big_mib} MiB of random data")
    w("")
    w(f"Median of {meta.get('reps')} runs per tool; the tools take turns within a round and the order")
    w("rotates between rounds. Wall clock from process start to exit (so aws-cli's Python start-up is")
    w("included); MiB/s = 2^20 bytes per second. Peak RSS is the largest of the runs.")
    w("")
    for op, title in (("upload", "Upload"), ("download", "Download")):
        w(f"### {title}")
        w("")
        w("| Tool | Command | Runs (MiB/s) | Median MiB/s | vs curl | Peak RSS |")
        w("| --- | --- | --- | ---: | ---: | ---: |")
        for tool in ("plugin", "curl", "aws", "rclone"):
            key = (op, tool)
            if key not in med and key not in failed:
                w(f"| {TOOL_NAME[tool]} | {TOOL_CMD[key]} | not available | n/a | n/a | n/a |")
                continue
            runs_s = ", ".join(f"{x:.0f}" for x in runs.get(key, []))
            if key in failed:
                runs_s += (", " if runs_s else "") + "failed: " + ", ".join(failed[key])
            m = med.get(key)
            r = ratio(op, tool, "curl")
            w(
                f"| {TOOL_NAME[tool]} | {TOOL_CMD[key]} | {runs_s} | {'n/a' if m is None else f'{m:.1f}'} | "
                f"{fmt_ratio(r)} | {f'{rss[key] / 1024:.0f} MiB' if key in rss else 'n/a'} |"
            )
        w("")
        verb = "backup_data" if op == "upload" else "restore_data"
        w(
            f"{verb} against curl: {fmt_ratio(ratio(op, 'plugin', 'curl'))}, against aws-cli: "
            f"{fmt_ratio(ratio(op, 'plugin', 'aws'))}, against rclone: {fmt_ratio(ratio(op, 'plugin', 'rclone'))}."
        )
        w("")

    # ------------------------------------------------------------ 2
    w("## 2. Peak memory (default settings)")
    w("")
    w('`/usr/bin/time -v` "Maximum resident set size" of the plugin process.')
    w("")
    w("| Command | Stream | Peak RSS | Wall | MiB/s | Input / output |")
    w("| --- | ---: | ---: | ---: | ---: | --- |")
    for r in rss_rows:
        if r["cmd"] == "skipped":
            w(f"| (skipped) | {r['mib']} MiB | | | | {cell(r['note'])} |")
            continue
        sec = float(r["seconds"])
        w(
            f"| {r['cmd']} | {int(r['mib'])} MiB | {int(r['maxrss_kb']) / 1024:.1f} MiB | {sec:.1f} s | "
            f"{int(r['mib']) / sec:.0f} | {cell(r['note'])} |"
        )
    w("")

    # ------------------------------------------------------------ 3
    w(f"## 3. Small calls: {small['pairs']} sequential 1 KiB backup_data + restore_data pairs")
    w("")
    w("Each process timed from spawn to exit by a Python driver (stdin/stdout through pipes, as")
    w("gpbackup_helper does); every restored payload compared with the one written.")
    w("")
    w("| Command | Median | p95 | Mean | Min | Max |")
    w("| --- | ---: | ---: | ---: | ---: | ---: |")
    for cmd in ("backup_data", "restore_data"):
        s = small[cmd]
        w(
            f"| {cmd} | {s['median_ms']:.1f} ms | {s['p95_ms']:.1f} ms | {s['mean_ms']:.1f} ms | "
            f"{s['min_ms']:.1f} ms | {s['max_ms']:.1f} ms |"
        )
    for name, s in small.get("breakdown", {}).items():
        w(
            f"| {name} | {s['median_ms']:.1f} ms | {s['p95_ms']:.1f} ms | {s['mean_ms']:.1f} ms | "
            f"{s['min_ms']:.1f} ms | {s['max_ms']:.1f} ms |"
        )
    w("")
    w("The last rows split a call's time: what any process costs to spawn on this machine, the")
    w("plugin's own start-up (`--version`), start-up plus reading and validating the config (a")
    w("segment-scope hook, which sends no request); the rest of a `backup_data` is building the")
    w("client, one signed PUT and the server's work. Cut so far: no async runtime for")
    w("`plugin_api_version`, static keys used as they are (no credential-chain or instance-metadata")
    w("probing), no TLS set-up for `http://` endpoints, no HEAD before a restore or after an upload,")
    w("one connection pool per process, nothing written outside the log for one-request uploads.")
    w("")
    w(f"Errors: {small['errors']}." + (" " + "; ".join(small["error_samples"]) if small["errors"] else ""))
    w("")

    # ------------------------------------------------------------ 4
    n, each, sec = int(fan["processes"]), int(fan["mib_each"]), float(fan["seconds"])
    w(f"## 4. Segment fan-out: {n} concurrent backup_data processes x {each} MiB")
    w("")
    w("Each process is fed through a pipe (`dd if=FILE skip=... | gpbackup_s3_plugin backup_data`), as")
    w("the segments' COPY ... PROGRAM does; distinct keys; all started together.")
    w("")
    w("| Total | Wall | Aggregate MiB/s | Non-zero exits | Processes with stderr output | Objects of the right size |")
    w("| ---: | ---: | ---: | ---: | ---: | ---: |")
    w(
        f"| {n * each} MiB | {sec:.1f} s | {n * each / sec:.1f} | {fan['nonzero_exits']} | {fan['with_stderr']} | "
        f"{fan['objects_ok']} of {n} |"
    )
    w("")

    # ------------------------------------------------------------ 5
    requested = int(sub["requested"])
    obj = int(sub["object"])
    w("## 5. restore_data_subset: bytes on the wire")
    w("")
    w(f"A {obj // MiB} MiB object written by backup_data; an offsets file of {sub['ranges']} ranges (a `0 0`,")
    w("ranges of a few KiB, adjacent pairs, MiB-sized ranges, one over 8 MiB). A counting TCP proxy")
    w("(`bench/countproxy.py`) sits between the plugin and the server and counts the server-to-client")
    w("bytes (response headers and bodies) and the HTTP requests. The output was checked against the")
    w("expected bytes (SHA-256).")
    w("")
    w("| Command | Bytes requested | Bytes received from the server | Ratio | HTTP requests | Connections | Wall |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")

    def methods(d):
        return ", ".join(f"{v} {k}" for k, v in d["by_method"].items() if v) or "0"

    w(
        f"| restore_data_subset | {requested:,} | {sub_wire['down']:,} | {sub_wire['down'] / requested:.4f}x | "
        f"{sub_wire['requests']} ({methods(sub_wire)}) | {sub_wire['connections']} | {sub_sec:.2f} s |"
    )
    w(
        f"| restore_data (whole object, for comparison) | {obj:,} | {whole_wire['down']:,} | "
        f"{whole_wire['down'] / obj:.4f}x | {whole_wire['requests']} ({methods(whole_wire)}) | "
        f"{whole_wire['connections']} | {whole_sec:.2f} s |"
    )
    w("")
    w(
        f"The subset moved {sub_wire['down'] / whole_wire['down'] * 100:.1f}% of what a whole restore moves. "
        "Wall times here include the Python proxy and are not throughput figures."
    )
    w("")
    w("<details><summary>Offsets file</summary>")
    w("")
    w("```")
    w(sub["offsets"])
    w("```")
    w("")
    w("</details>")
    w("")

    # ------------------------------------------------------------ 6
    w("## 6. Checksum throughput on this CPU (`cargo bench --bench checksums`)")
    w("")
    w("The plugin stores CRC-64/NVME checksums (per part and per object) and checks them before")
    w("writing a restored byte; every upload request also carries a CRC32C that the server verifies.")
    w("")
    w(checksums)
    w("")
    w("What each choice would cost per byte moved: SHA-256 is what SigV4 payload signing computes")
    w("over every body (the SDK's default on plain HTTP), MD5 is Content-MD5, CRC32C is what the")
    w("plugin sends instead (a header the server verifies), CRC-64/NVME is what it stores. So the")
    w("plugin sends `UNSIGNED-PAYLOAD` with a CRC32C header (the body is still covered end to end:")
    w("by the server's CRC check, and by TLS where `encryption` is on), computes each part's CRCs")
    w("once while the previous part is on the wire, and spends no SHA-256 or MD5 on data at all.")
    w("")

    # ------------------------------------------------------------ faults
    faults_path = os.path.join(res, "faults.json")
    if os.path.exists(faults_path):
        f = json.load(open(faults_path))
        w(f"## 7. Faults: {f['mib']} MiB round trip through a proxy resetting 10% of requests")
        w("")
        w("`bench/countproxy.py` with `COUNTPROXY_RESET_RATE=0.1`: after one request line in ten, the")
        w("connection is aborted 0-4 MiB later, mid-body. The plugin (`retry_max_attempts: 30`) must")
        w("bring the stream back byte-identical (checked by SHA-256).")
        w("")
        w("| Requests | Resets injected | backup_data | restore_data | Identical |")
        w("| ---: | ---: | ---: | ---: | --- |")
        w(
            f"| {f['requests']} | {f['resets']} | {f['upload_s']:.1f} s ({f['mib'] / f['upload_s']:.0f} MiB/s) | "
            f"{f['download_s']:.1f} s ({f['mib'] / f['download_s']:.0f} MiB/s) | {'yes' if f['identical'] else 'NO'} |"
        )
        w("")

    # ------------------------------------------------------------ encryption
    for line in enc_section:
        w(line)

    # ------------------------------------------------------------ network
    for line in net_section:
        w(line)

    # ------------------------------------------------------------ method
    w("## Method")
    w("")
    w("- Data: AES-128-CTR keystream from `openssl enc` (incompressible). Before every upload the file")
    w("  gets a fresh 32-byte stamp every 64 KiB, so no two uploads share a block: Garage stores")
    w("  content-addressed blocks and skips writing blocks it already has, which would otherwise flatter")
    w("  whichever tool uploads second.")
    w("- Every tool runs with its default transfer settings: the plugin 8 MiB parts with 6 in flight")
    w("  (uploads) and 8 MiB ranged GETs with 6 in flight (downloads); aws-cli 8 MiB multipart chunks")
    w("  and 10 threads; rclone 5 MiB chunks, 4 concurrent; curl one request. aws-cli runs with")
    w("  `--only-show-errors` (no progress display), rclone and aws-cli with path-style requests and")
    w("  keys from the environment.")
    w("- The stdin tools read the file through a redirection (`< FILE`); curl reads it with `-T FILE`.")
    w("  Uploads are checked by a HEAD of the object (its size); the plugin's download object is")
    w("  compared byte for byte once, outside the timing.")
    w("- All processes and the server share the machine's CPUs; on a machine shared with other work")
    w("  (see the load average above) the numbers vary between runs.")
    w("- The plugin's log goes to a temporary `$HOME/gpAdminLogs`; objects are deleted after each")
    w("  section; the server and its data directory are removed at the end.")
    w("")
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
