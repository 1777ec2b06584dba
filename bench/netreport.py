#!/usr/bin/env python3
"""Section 9 of BENCHMARKS.md, "Network model", from bench/netbench.py's
results (net_ceiling.tsv, net_matrix.tsv, net_small.tsv in RESULTS_DIR),
used by bench/report.py:

    network(res, meta, plot_path, plot_ref) -> (markdown lines, targets)

targets are (name, measured, ok) rows for report.py's targets table; ok is
None when a measurement is missing. With plot_path it draws throughput
against RTT for every tool with gnuplot (when gnuplot is missing, the text
says so and the tables are still written).
"""

import csv
import json
import os
import shutil
import statistics
import subprocess

MiB = 1 << 20
GiB = 1 << 30
TOOLS = ("plugin", "aws", "rclone", "curl")
NAME = {"plugin": "gpbackup_s3_plugin", "aws": "aws-cli", "rclone": "rclone", "curl": "curl"}
OPNAME = {("upload", "plugin"): "backup_data", ("download", "plugin"): "restore_data"}


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def parse_rate(text):
    units = {"": 1, "B": 1, "K": 1024, "KiB": 1024, "M": MiB, "MiB": MiB, "G": GiB, "GiB": GiB,
             "KB": 1e3, "MB": 1e6, "GB": 1e9}
    t = text.strip().removesuffix("/s")
    i = len(t)
    while i and not (t[i - 1].isdigit() or t[i - 1] == "."):
        i -= 1
    return float(t[:i]) * units[t[i:]]


def net_meta(meta):
    return dict(kv.split("=", 1) for kv in meta.get("net", "").split() if "=" in kv)


def completion_s(server_s):
    """The server's own seconds in CompleteMultipartUpload (a POST with an
    uploadId, as the proxy's request kinds name it)."""
    return sum(v for k, v in server_s.items() if k.startswith("POST ?") and "uploadId" in k[6:].split("&"))


def cells(res):
    """(rtt, scheme, tool, op, procs) -> aggregated results of its reps."""
    out = {}
    for r in read_tsv(os.path.join(res, "net_matrix.tsv")):
        key = (int(r["rtt_ms"]), r["scheme"], r["tool"], r["op"], int(r["procs"]))
        out.setdefault(key, []).append(r)
    agg = {}
    for key, rows in out.items():
        ok = [r for r in rows if r["errors"] == "0"]
        rates = [int(r["bytes"]) / MiB / float(r["seconds"]) for r in ok]
        done = [completion_s(json.loads(r.get("server_s") or "{}")) for r in ok]
        net = [int(r["bytes"]) / MiB / (float(r["seconds"]) - d) for r, d in zip(ok, done) if float(r["seconds"]) > d]
        agg[key] = {
            "mibps": statistics.median(rates) if rates else None,
            "seconds": statistics.median(float(r["seconds"]) for r in ok) if ok else None,
            # Server time completing the upload (per process), and the rate
            # without it: the part of the wall time no client can save.
            "complete_s": statistics.median(done) if done else None,
            "mibps_net": statistics.median(net) if net and any(done) else None,
            "cpu_per_gib": sum(float(r["cpu_s"]) for r in ok) / (sum(int(r["bytes"]) for r in ok) / GiB) if ok else None,
            "cpu_s": sum(float(r["cpu_s"]) for r in ok),
            "gib": sum(int(r["bytes"]) for r in ok) / GiB,
            "rss_mib": max(int(r["maxrss_kb"]) for r in rows) / 1024,
            "errors": sum(int(r["errors"]) for r in rows),
            "conns": statistics.median(float(r["conns"]) for r in rows),
            "tls": statistics.median(float(r["tls"]) for r in rows),
            "requests": statistics.median(float(r["requests"]) for r in rows),
            "methods": json.loads(rows[-1]["methods"]),
            "reps": len(rows),
        }
    return agg


def without_completion(c, want, cap, name):
    """A second row for an upload cell whose multipart completion the
    server took its time over: the same target, its wall time less that."""
    if not c or not c.get("mibps_net") or not c.get("complete_s"):
        return []
    r = c["mibps_net"] / cap
    return [(f"{name}, less the server's own {c['complete_s']:.2f} s completing the upload: ≥ {want}x the cap",
             f"{r:.2f}x ({c['mibps_net']:.1f} MiB/s)", r >= want)]


def g(x, digits=1):
    """A count per call: integers plainly, fractions with `digits`."""
    return f"{x:.0f}" if abs(x - round(x)) < 1e-9 else f"{x:.{digits}f}"


def methods_text(m):
    return ", ".join(f"{k} {g(v)}" for k, v in sorted(m.items()))


def plot(agg, rtts, path, cap=None):
    """gnuplot: MiB/s against RTT, upload/download x HTTP/HTTPS, one line per
    tool (solid: 1 process; dashed: the aggregate of 8). Returns None or why
    not."""
    gp = shutil.which("gnuplot")
    if not gp:
        return "gnuplot is not installed (apt-get install gnuplot-nox)"
    procs_set = sorted({k[4] for k in agg})
    blocks, plots = [], {}
    for op in ("upload", "download"):
        for scheme in ("http", "https"):
            lines = []
            for ti, tool in enumerate(TOOLS):
                for pi, procs in enumerate(procs_set):
                    pts = [(rtt, agg[(rtt, scheme, tool, op, procs)]["mibps"]) for rtt in rtts
                           if (rtt, scheme, tool, op, procs) in agg and agg[(rtt, scheme, tool, op, procs)]["mibps"]]
                    if not pts:
                        continue
                    name = f"d_{op}_{scheme}_{tool}_{procs}"
                    blocks.append(f"${name} << EOD\n" + "\n".join(f"{x} {y:.2f}" for x, y in pts) + "\nEOD")
                    title = f"{NAME[tool]}" + ("" if procs == 1 else f" x{procs}")
                    lines.append(f"${name} using 1:2 with linespoints lc {ti + 1} dt {pi + 1} pt {ti + 5} "
                                 f"title '{title}'")
            if cap:
                lines.append(f"{cap:.2f} with lines dt 3 lc rgb 'gray40' title 'aggregate cap'")
            plots[(op, scheme)] = lines
    script = ["set terminal pngcairo size 1400,1000 font ',10' noenhanced", f"set output '{path}'",
              "set multiplot layout 2,2 title 'Throughput against RTT through the network model'",
              "set xlabel 'RTT (ms)'", "set ylabel 'MiB/s'", "set grid", "set key outside right top", "set yrange [0:*]"]
    script = blocks + script
    for (op, scheme), lines in plots.items():
        script.append(f"set title '{op}, {scheme.upper()}'")
        script.append("plot " + ", ".join(lines) if lines else "plot 0 notitle")
    script.append("unset multiplot")
    r = subprocess.run([gp], input="\n".join(script) + "\n", text=True, capture_output=True)
    if r.returncode != 0 or not os.path.exists(path):
        return f"gnuplot failed: {r.stderr.strip()[:300]}"
    return None


def network(res, meta, plot_path=None, plot_ref=None):
    ceil = read_tsv(os.path.join(res, "net_ceiling.tsv"))
    agg = cells(res)
    small = read_tsv(os.path.join(res, "net_small.tsv"))
    if not agg and not ceil:
        return [], []
    nm = net_meta(meta)
    cap = parse_rate(nm.get("total_rate", "100MiB")) / MiB
    rtts = sorted({k[0] for k in agg})
    procs_set = sorted({k[4] for k in agg})
    many = max(procs_set) if procs_set else 8
    out = []
    w = out.append
    w("## 9. Network model: latency, bandwidth caps, TLS")
    w("")
    w("Every client talks to the server through `examples/netmodel.rs`, a userspace TCP proxy (tokio; TLS by")
    w("rustls with aws-lc-rs). Each direction of each connection is a timestamped queue: bytes read at *t*")
    w("are written at *t* + RTT/2, in order; a new connection's first bytes wait one more RTT (the TCP")
    w("handshake); at most a 4 MiB window is in flight per connection and direction, released one-way delay")
    w("after delivery (the ACK's trip), so one connection carries at most window/RTT; token buckets cap each")
    w(f"connection at {nm.get('conn_rate', '?')}/s and all connections together at {nm.get('total_rate', '?')}/s")
    w("per direction. For HTTPS the proxy terminates TLS 1.3/1.2 with a CA made at start (given to each")
    w("client: `ca_cert_file`, `--ca-bundle`, `--ca-cert`, `--cacert`) behind the delay stage, so TLS round")
    w("trips pay the RTT; it counts connections, completed TLS handshakes, and HTTP/1.1 requests parsed in")
    w("the plaintext stream. Not modelled: slow start and congestion control, loss, jitter, the server's")
    w("own window.")
    w("")
    w(f"Sizes: {nm.get('big', '?')} per single-process transfer, {many} processes x {nm.get('part', '?')} at once;")
    w(f"{nm.get('reps', '1')} run(s) per cell (median). Same machine as above: server, proxy and clients")
    w(f"share its {meta.get('nproc', '?')} CPUs. The aggregate cap ({nm.get('total_rate', '?')}/s) is one the machine delivers")
    w("with the clients' own CPU use: under load from other work, 8 curl processes reached only 70-90 MiB/s")
    w("through a 100 MiB/s cap over HTTPS; a cap above that would measure the CPU, not the modelled link.")
    reach = []
    for scheme in ("http", "https"):
        for op in ("upload", "download"):
            c = agg.get((min(rtts) if rtts else 0, scheme, "curl", op, many))
            if c and c["mibps"]:
                reach.append(f"{op} {scheme.upper()} {c['mibps']:.0f} MiB/s ({c['mibps'] / cap:.2f}x)")
    if reach:
        w(f"Is the cap deliverable? {many} curl processes (the cheapest client) at RTT {min(rtts)} ms reached: "
          + "; ".join(reach) + ".")
    w("")
    if ceil:
        w("### The model's own ceiling (no delay, no caps)")
        w("")
        w("curl PUT and GET of one object, direct to the server and through the proxy (HTTP, and HTTPS")
        w("terminated by the proxy); best of the runs.")
        w("")
        w("| Path | Upload MiB/s | Download MiB/s | vs direct (up / down) |")
        w("| --- | ---: | ---: | ---: |")
        best = {}
        for r in ceil:
            k = (r["label"], r["op"])
            best[k] = max(best.get(k, 0), int(r["bytes"]) / MiB / float(r["seconds"]))
        for label in ("direct", "proxy-http", "proxy-https"):
            up, dn = best.get((label, "upload")), best.get((label, "download"))
            du, dd = best.get(("direct", "upload")), best.get(("direct", "download"))
            rel = f"{up / du:.2f}x / {dn / dd:.2f}x" if up and dn and du and dd else "n/a"
            w(f"| {label} | {up or 0:.0f} | {dn or 0:.0f} | {rel} |")
        w("")
    for procs in procs_set:
        w(f"### {'One process' if procs == 1 else f'{procs} concurrent processes (aggregate MiB/s)'}")
        w("")
        w("Per cell: MiB/s, client CPU seconds (user + system, GNU time) per GiB, peak RSS (largest process),")
        w("and per process: TCP connections / TLS handshakes / HTTP requests counted by the proxy.")
        w("")
        w("| Tool | Scheme | RTT | Up MiB/s | Up CPU s/GiB | Up RSS | Up conn/TLS/req | Down MiB/s | Down CPU s/GiB "
          "| Down RSS | Down conn/TLS/req | Errors |")
        w("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for tool in TOOLS:
            for scheme in ("http", "https"):
                for rtt in rtts:
                    parts, errors, seen = [], 0, False
                    for op in ("upload", "download"):
                        c = agg.get((rtt, scheme, tool, op, procs))
                        if not c:
                            parts += ["n/a"] * 4
                            continue
                        seen = True
                        errors += c["errors"]
                        parts += [f"{c['mibps']:.1f}" if c["mibps"] else "failed",
                                  f"{c['cpu_per_gib']:.1f}" if c["cpu_per_gib"] is not None else "n/a",
                                  f"{c['rss_mib']:.0f} MiB", f"{g(c['conns'])}/{g(c['tls'])}/{g(c['requests'])}"]
                    if seen:
                        w(f"| {NAME[tool]} | {scheme.upper()} | {rtt} ms | " + " | ".join(parts) + f" | {errors} |")
        w("")
    far_rtt = max(rtts) if rtts else None
    done_rows = [(tool, scheme, procs, agg[(far_rtt, scheme, tool, "upload", procs)])
                 for procs in procs_set for scheme in ("http", "https") for tool in TOOLS
                 if (far_rtt, scheme, tool, "upload", procs) in agg
                 and agg[(far_rtt, scheme, tool, "upload", procs)]["complete_s"]]
    if done_rows:
        w(f"### Uploads: the server's own completion time (RTT {far_rtt} ms)")
        w("")
        w("The proxy times the server itself: from a request's last byte reaching it to the first byte of its")
        w("answer, by request kind. s3s-fs answers CompleteMultipartUpload only after copying every part into")
        w("one new file (hashing each with MD5), so a multipart upload ends with seconds in which no byte moves")
        w("and no client can help; a single PUT (curl) has no such step. Per process (the mean for several),")
        w("and the rate without it.")
        w("")
        w("| Tool | Scheme | Processes | Wall s | Server's completion s | MiB/s | MiB/s without it |")
        w("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for tool, scheme, procs, c in done_rows:
            w(f"| {NAME[tool]} | {scheme.upper()} | {procs} | {c['seconds']:.2f} | {c['complete_s']:.2f} | "
              f"{c['mibps']:.1f} | {c['mibps_net']:.1f} |" if c["mibps_net"] else
              f"| {NAME[tool]} | {scheme.upper()} | {procs} | {c['seconds']:.2f} | {c['complete_s']:.2f} | "
              f"{c['mibps']:.1f} | n/a |")
        w("")
    sweep = read_tsv(os.path.join(res, "net_sweep.tsv"))
    if sweep:
        w(f"### Defaults: requests in flight and part size (plugin, 1 process, HTTPS, RTT {sweep[0]['rtt_ms']} ms)")
        w("")
        w("backup_data then restore_data of the same stream under each setting (the restore reads the parts that")
        w("backup wrote), `backup_/restore_max_concurrent_requests` and `backup_/restore_multipart_chunksize`")
        w("alike; the default is 6 requests of 8 MiB. \"Without completion\": less the server's own time")
        w("completing the upload (see above).")
        w("")
        w("| In flight | Part | Up MiB/s | Up x cap | Up without completion | Up RSS | Down MiB/s | Down x cap "
          "| Down RSS | CPU s/GiB up / down | Errors |")
        w("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        by = {}
        for r in sweep:
            by.setdefault(r["setting"], {})[r["op"]] = r
        for setting, ops in by.items():
            conc, part = setting.split(":")
            cols, errors = [], 0
            cpu = []
            for op in ("upload", "download"):
                r = ops.get(op)
                if not r:
                    cols += ["n/a"] * (4 if op == "upload" else 3)
                    cpu.append("n/a")
                    continue
                errors += int(r["errors"])
                sec, mib = float(r["seconds"]), int(r["bytes"]) / MiB
                rate = mib / sec
                cols += [f"{rate:.1f}", f"{rate / cap:.2f}x"]
                if op == "upload":
                    done = completion_s(json.loads(r.get("server_s") or "{}"))
                    cols.append(f"{mib / (sec - done):.1f} ({done:.2f} s)" if done and sec > done else "n/a")
                cols.append(f"{int(r['maxrss_kb']) / 1024:.0f} MiB")
                cpu.append(f"{float(r['cpu_s']) / (int(r['bytes']) / GiB):.1f}")
            mark = " (default)" if setting == "6:8" else ""
            w(f"| {conc}{mark} | {part} MiB | " + " | ".join(cols) + f" | {' / '.join(cpu)} | {errors} |")
        w("")
    if plot_path and agg:
        why = plot(agg, rtts, plot_path, cap)
        if why:
            w(f"(No plot: {why}.)")
        else:
            w(f"![Throughput against RTT]({plot_ref or plot_path})")
        w("")
    if small:
        w("### Small calls at a distance (1 KiB)")
        w("")
        w("Sequential calls, wall clock from spawn to exit (median and fastest), with the connections, TLS")
        w("handshakes and requests counted per call; the minimum is 1 connection, 1 handshake (HTTPS) and 1")
        w("request. curl does the same PUT or GET in one request.")
        w("")
        w("| RTT | Scheme | Call | Median ms | Min ms | Conns | TLS | Requests (by method) | Minimum | Errors |")
        w("| ---: | --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: |")
        for r in small:
            minimum = "1/1/1" if r["scheme"] == "https" else "1/0/1"
            name = {"curl_put": "curl PUT", "curl_get": "curl GET"}.get(r["call"], r["call"])
            w(f"| {r['rtt_ms']} ms | {r['scheme'].upper()} | {name} | {float(r['median_ms']):.1f} | "
              f"{float(r['min_ms']):.1f} | {g(float(r['conns']))} | {g(float(r['tls']))} | "
              f"{g(float(r['requests']))} ({methods_text(json.loads(r['methods']))}) | {minimum} | {r['errors']} |")
        w("")

    # ------------------------------------------------------------ targets
    targets = []
    far = max(rtts) if rtts else 50
    for scheme in ("http", "https"):
        for op in ("upload", "download"):
            p = agg.get((far, scheme, "plugin", op, 1), {}).get("mibps")
            others = [agg.get((far, scheme, t, op, 1), {}).get("mibps") for t in ("aws", "rclone")]
            others = [x for x in others if x]
            best = max(others) if others else None
            r = p / best if p and best else None
            targets.append((f"{OPNAME[(op, 'plugin')]} at {far} ms, 1 process, {scheme.upper()}: ≥ 1.0x the faster of "
                            f"aws-cli and rclone", "n/a" if r is None else f"{r:.2f}x ({p:.1f} vs {best:.1f} MiB/s)",
                            None if r is None else r >= 1.0))
            r = p / cap if p else None
            targets.append((f"{OPNAME[(op, 'plugin')]} at {far} ms, 1 process, {scheme.upper()}: ≥ 0.8x the "
                            f"{cap:.0f} MiB/s aggregate cap", "n/a" if r is None else f"{r:.2f}x ({p:.1f} MiB/s)",
                            None if r is None else r >= 0.8))
            targets += without_completion(agg.get((far, scheme, "plugin", op, 1)), 0.8, cap,
                                          f"{OPNAME[(op, 'plugin')]} at {far} ms, 1 process, {scheme.upper()}")
    for scheme in ("http", "https"):
        for op in ("upload", "download"):
            c = agg.get((far, scheme, "plugin", op, many))
            if not c:
                targets.append((f"{many} x {OPNAME[(op, 'plugin')]} at {far} ms {scheme.upper()}", "n/a", None))
                continue
            r = c["mibps"] / cap if c["mibps"] else 0
            ok = r >= 0.9 and c["errors"] == 0 and c["rss_mib"] <= 128
            targets.append((f"{many} x {OPNAME[(op, 'plugin')]} at {far} ms, {scheme.upper()}: aggregate ≥ 0.9x cap, "
                            f"0 errors, each RSS ≤ 128 MiB",
                            f"{r:.2f}x ({c['mibps'] or 0:.1f} MiB/s), {c['errors']} errors, {c['rss_mib']:.0f} MiB", ok))
            targets += without_completion(c, 0.9, cap, f"{many} x {OPNAME[(op, 'plugin')]} at {far} ms, {scheme.upper()}")
    for call in ("backup_data", "restore_data"):
        rows = [r for r in small if r["call"] == call and r["scheme"] == "https" and int(r["rtt_ms"]) == far]
        if not rows:
            targets.append((f"small {call} over HTTPS at {far} ms: 1 connection, 1 handshake, 1 request", "n/a", None))
            continue
        r = rows[0]
        cc, tt, qq = float(r["conns"]), float(r["tls"]), float(r["requests"])
        targets.append((f"small {call} over HTTPS at {far} ms: 1 connection, 1 handshake, 1 request",
                        f"{g(cc)} / {g(tt)} / {g(qq)}", cc <= 1 and tt <= 1 and qq <= 1))
    for procs in procs_set:
        for op in ("upload", "download"):
            def pooled(tool):
                ks = [k for k in agg if k[1] == "https" and k[2] == tool and k[3] == op and k[4] == procs]
                gib = sum(agg[k]["gib"] for k in ks)
                return sum(agg[k]["cpu_s"] for k in ks) / gib if gib else None

            p, c = pooled("plugin"), pooled("curl")
            r = p / c if p and c else None
            who = "1 process" if procs == 1 else f"{procs} processes at once"
            targets.append((f"{OPNAME[(op, 'plugin')]} CPU s/GiB over HTTPS ≤ 1.2x curl's ({who}, all RTTs)",
                            "n/a" if r is None else f"{r:.2f}x ({p:.1f} vs {c:.1f} s/GiB)",
                            None if r is None else r <= 1.2))
    return out, targets
