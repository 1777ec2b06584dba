#!/usr/bin/env python3
"""bench/run.sh section 9: the clients through the network model
(examples/netmodel.rs), one proxy configuration per call (python3 standard
library only).

    netbench.py run RTT_MS SCHEME PORT STATS_JSON CA_PEM OUT_DIR
    netbench.py ceiling LABEL ENDPOINT CA_PEM OUT_DIR
    netbench.py sweep RTT_MS SCHEME PORT STATS_JSON CA_PEM OUT_DIR

SCHEME is http or https (CA_PEM: the proxy's CA, ignored for http). Runs,
through 127.0.0.1:PORT:
  - the throughput matrix: 1 process and NET_PROCS processes, upload and
    download, each tool in turn (plugin, aws, rclone, curl); appends rows
    to OUT_DIR/net_matrix.tsv;
  - small calls: NET_SMALL_N 1 KiB backup_data, restore_data, curl PUT and
    curl GET; appends rows to OUT_DIR/net_small.tsv.
sweep runs only the plugin, 1 process, backup_data then restore_data of
NET_BIG under each setting of requests in flight and part size in
NET_SWEEP ("CONCURRENCY:PART_MiB ..."), the same setting for both; appends
rows to OUT_DIR/net_sweep.tsv (the evidence for the defaults).
Per cell it takes the proxy's counters before and after (a snapshot written
after the processes exited, with no connection open) and divides the
difference by the number of processes (or calls); server_s is the server's
own time by request kind (from a request's end to its answer), per process.

Environment (from run.sh): PLUGIN, PLUGIN_HOME, NET_AWS, NET_RCLONE (empty
when unavailable), S3_ACCESS_KEY, S3_SECRET_KEY, BUCKET, FOLDER, DATE,
NET_TS, NET_LOCAL (the local path prefix gpbackup would pass), NET_DIRECT
(the server's own endpoint, for checks and clean-up), NET_BIG, NET_PART
(files: the 1-process and the per-process upload), NET_BIG_KEY,
NET_PART_KEY (objects for downloads), NET_PROCS, NET_SMALL_N, NET_REPS,
NET_TIMEOUT, NET_TOOLS (space-separated subset).
"""

import json
import os
import statistics
import subprocess
import sys
import time

E = os.environ
TIME = "/usr/bin/time"


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}]   {msg}", file=sys.stderr, flush=True)


def snapshot(stats, after=None, timeout=60.0):
    """The proxy's counters once written after `after` (epoch seconds) with
    no connection open."""
    deadline = time.monotonic() + timeout
    after_ms = None if after is None else int(after * 1000) + 1
    while True:
        try:
            with open(stats) as f:
                s = json.load(f)
            if s["active"] == 0 and (after_ms is None or s["t_unix_ms"] > after_ms):
                return s
        except (OSError, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"netbench: the proxy still has open connections after {timeout} s")
        time.sleep(0.02)


def counts(a, b, n):
    keys = ("connections", "tls_handshakes", "tls_resumed", "requests", "up", "down", "uncounted_streams")
    d = {k: (b[k] - a[k]) / n for k in keys}
    d["methods"] = {m: (b["by_method"].get(m, 0) - a["by_method"].get(m, 0)) / n for m in b["by_method"]}
    d["methods"] = {m: v for m, v in d["methods"].items() if v}
    # Seconds the server took answering, by request kind, per process.
    st_a, st_b = a.get("server_time", {}), b.get("server_time", {})
    d["server_s"] = {k: round((t["seconds"] - st_a.get(k, {}).get("seconds", 0.0)) / n, 4) for k, t in st_b.items()}
    d["server_s"] = {k: v for k, v in d["server_s"].items() if v > 0}
    return d


class Runner:
    def __init__(self, rtt, scheme, port, stats, ca, out):
        self.rtt, self.scheme, self.stats, self.ca, self.out = rtt, scheme, stats, ca, out
        self.ep = f"{scheme}://127.0.0.1:{port}"
        self.work = os.path.join(out, "..", f"net-{rtt}-{scheme}")
        os.makedirs(self.work, exist_ok=True)
        self.cfg = self.config("config.yaml")
        self.prefix = f"{E['FOLDER']}/backups/{E['DATE']}/{E['NET_TS']}"
        self.timeout = int(E.get("NET_TIMEOUT", "1200"))

    def config(self, name, extra=""):
        """A plugin config through the proxy (plus `extra` option lines)."""
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            f.write(
                f"executablepath: {E['PLUGIN']}\noptions:\n  endpoint: {self.ep}\n  region: us-east-1\n"
                f"  aws_access_key_id: {E['S3_ACCESS_KEY']}\n  aws_secret_access_key: {E['S3_SECRET_KEY']}\n"
                f"  bucket: {E['BUCKET']}\n  folder: {E['FOLDER']}\n  encryption: \"off\"\n"
            )
            if self.scheme == "https":
                f.write(f"  ca_cert_file: {self.ca}\n")
            f.write(extra)
        os.chmod(path, 0o600)
        return path

    # -------------------------------------------------------- commands
    def env(self, tool):
        env = dict(E)
        env.pop("NET_SWEEP", None)
        env["HOME"] = E["PLUGIN_HOME"]
        if tool == "aws":
            env.update(AWS_ACCESS_KEY_ID=E["S3_ACCESS_KEY"], AWS_SECRET_ACCESS_KEY=E["S3_SECRET_KEY"],
                       AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=E["NET_AWS_CONFIG"],
                       AWS_SHARED_CREDENTIALS_FILE="/dev/null")
            env.pop("AWS_CA_BUNDLE", None)
        if tool == "rclone":
            env["RCLONE_CONFIG_BENCH_ENDPOINT"] = self.ep
            env.pop("AWS_CA_BUNDLE", None)
        return env

    def curl(self):
        c = ["curl", "-sS", "--fail", "--aws-sigv4", "aws:amz:us-east-1:s3",
             "--user", f"{E['S3_ACCESS_KEY']}:{E['S3_SECRET_KEY']}", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]
        if self.scheme == "https":
            c += ["--cacert", self.ca]
        return c

    def argv(self, tool, op, key, src):
        """(argv, stdin file or None, stdout) for one transfer of `key`
        (a name under the bench prefix); src: the file uploaded."""
        local = f"{E['NET_LOCAL']}/{E['NET_TS']}/{key}"
        full = f"{self.prefix}/{key}"
        url = f"{self.ep}/{E['BUCKET']}/{full}"
        if tool == "plugin":
            return ([E["PLUGIN"], "backup_data", self.cfg, local], src) if op == "upload" else \
                ([E["PLUGIN"], "restore_data", self.cfg, local], None)
        if tool.startswith("plugin:"):  # a sweep's setting: its own config file
            cfg = tool.split(":", 1)[1]
            return ([E["PLUGIN"], "backup_data", cfg, local], src) if op == "upload" else \
                ([E["PLUGIN"], "restore_data", cfg, local], None)
        if tool == "curl":
            return (self.curl() + ["-o", "/dev/null", "-T", src, url], None) if op == "upload" else \
                (self.curl() + ["-o", "/dev/null", url], None)
        if tool == "aws":
            extra = ["--endpoint-url", self.ep, "--only-show-errors"]
            if self.scheme == "https":
                extra += ["--ca-bundle", self.ca]
            s3 = f"s3://{E['BUCKET']}/{full}"
            return ([E["NET_AWS"], "s3", "cp", "-", s3] + extra, src) if op == "upload" else \
                ([E["NET_AWS"], "s3", "cp", s3, "-"] + extra, None)
        if tool == "rclone":
            extra = ["--ca-cert", self.ca] if self.scheme == "https" else []
            r = f"bench:{E['BUCKET']}/{full}"
            return ([E["NET_RCLONE"], "rcat", r] + extra, src) if op == "upload" else \
                ([E["NET_RCLONE"], "cat", r] + extra, None)
        raise ValueError(tool)

    def launch(self, tool, op, key, src, idx):
        argv, stdin = self.argv(tool, op, key, src)
        tout = os.path.join(self.work, f"time.{idx}")
        err = open(os.path.join(self.work, f"err.{idx}"), "w+b")
        # /dev/null opened one way, as a shell's redirection does (the plugin
        # takes a read-write /dev/null for a closed descriptor).
        fin = open(stdin or "/dev/null", "rb")
        fout = open("/dev/null", "wb")
        p = subprocess.Popen(["timeout", "-k", "10", str(self.timeout), TIME, "-v", "-o", tout] + argv,
                             stdin=fin, stdout=fout, stderr=err, env=self.env(tool))
        fin.close()
        fout.close()
        return p, tout, err

    # -------------------------------------------------------- helpers
    def head_size(self, key):
        r = subprocess.run(["curl", "-sS", "--fail", "-I", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user",
                            f"{E['S3_ACCESS_KEY']}:{E['S3_SECRET_KEY']}", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                            f"{E['NET_DIRECT']}/{E['BUCKET']}/{self.prefix}/{key}"], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            if line.lower().startswith("content-length:"):
                return int(line.split(":", 1)[1])
        return None

    def delete(self, key):
        subprocess.run(["curl", "-sS", "-o", "/dev/null", "-X", "DELETE", "--aws-sigv4", "aws:amz:us-east-1:s3",
                        "--user", f"{E['S3_ACCESS_KEY']}:{E['S3_SECRET_KEY']}", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                        f"{E['NET_DIRECT']}/{E['BUCKET']}/{self.prefix}/{key}"], capture_output=True)

    # -------------------------------------------------------- matrix
    def cell(self, tool, op, procs, rep, names=None, table="net_matrix.tsv", extra=None, keep=False):
        src = E["NET_BIG"] if procs == 1 else E["NET_PART"]
        size = os.path.getsize(src)
        if names is None:
            names = [f"up_{self.rtt}_{self.scheme}_{tool}_{procs}_{rep}_{i}" for i in range(procs)] \
                if op == "upload" else [E["NET_BIG_KEY"] if procs == 1 else E["NET_PART_KEY"]] * procs
        before = snapshot(self.stats)
        t0 = time.time()
        running = [self.launch(tool, op, names[i], src, i) for i in range(procs)]
        codes = [p.wait() for p, _, _ in running]
        t1 = time.time()
        after = snapshot(self.stats, after=t1)
        cpu, rss, errors, samples = 0.0, 0, 0, []
        for i, (p, tout, err) in enumerate(running):
            err.seek(0)
            text = err.read().decode(errors="replace").strip()
            err.close()
            u = s = r = 0
            try:
                for line in open(tout):
                    k, _, v = line.strip().partition(": ")
                    if k == "User time (seconds)":
                        u = float(v)
                    elif k == "System time (seconds)":
                        s = float(v)
                    elif k == "Maximum resident set size (kbytes)":
                        r = int(v)
            except OSError:
                pass
            cpu += u + s
            rss = max(rss, r)
            bad = codes[i] != 0 or (tool.startswith("plugin") and text)
            if not bad and op == "upload" and self.head_size(names[i]) != size:
                bad, text = True, f"stored size {self.head_size(names[i])}, not {size}"
            if bad:
                errors += 1
                samples.append(f"{tool} {op} #{i}: exit {codes[i]}: {text[:200]}")
        if op == "upload" and not keep:
            for n in names:
                self.delete(n)
        c = counts(before, after, procs)
        total = size * procs
        row = dict(extra or {})
        row |= {"rtt_ms": self.rtt, "scheme": self.scheme, "tool": tool.split(":")[0], "op": op, "procs": procs, "rep": rep,
               "bytes": total, "seconds": round(t1 - t0, 4), "cpu_s": round(cpu, 3), "maxrss_kb": rss,
               "errors": errors, "conns": c["connections"], "tls": c["tls_handshakes"], "tls_resumed": c["tls_resumed"],
               "requests": c["requests"], "methods": json.dumps(c["methods"], sort_keys=True),
               "server_s": json.dumps(c["server_s"], sort_keys=True)}
        path = os.path.join(self.out, table)
        new = not os.path.exists(path)
        with open(path, "a") as f:
            if new:
                f.write("\t".join(row) + "\n")
            f.write("\t".join(str(v) for v in row.values()) + "\n")
        mibps = total / (1 << 20) / (t1 - t0)
        label = f"plugin {extra['setting']}" if extra else tool
        log(f"{self.rtt} ms {self.scheme} {label} {op} x{procs}: {mibps:.1f} MiB/s, "
            f"{cpu / (total / (1 << 30)):.1f} CPU s/GiB, max RSS {rss // 1024} MiB, "
            f"{c['connections']:g} conn/{c['tls_handshakes']:g} TLS/{c['requests']:g} req per process"
            + (f", {errors} ERRORS" if errors else ""))
        for line in samples[:3]:
            log("    " + line)

    def matrix(self):
        tools = E.get("NET_TOOLS", "plugin curl").split()
        reps = int(E.get("NET_REPS", "1"))
        for procs in (1, int(E.get("NET_PROCS", "8"))):
            for op in ("upload", "download"):
                for rep in range(1, reps + 1):
                    k = (rep - 1) % len(tools)
                    for tool in tools[k:] + tools[:k]:
                        self.cell(tool, op, procs, rep)

    # -------------------------------------------------------- defaults sweep
    def sweep(self):
        """backup_data then restore_data of NET_BIG under each setting (the
        restore reads the parts the backup wrote with that setting)."""
        for setting in E.get("NET_SWEEP", "6:8").split():
            conc, part = setting.split(":")
            cfg = self.config(f"sweep-{conc}-{part}.yaml",
                              f"  backup_max_concurrent_requests: {conc}\n  restore_max_concurrent_requests: {conc}\n"
                              f"  backup_multipart_chunksize: {part}MB\n  restore_multipart_chunksize: {part}MB\n")
            key = f"sweep_{self.rtt}_{self.scheme}_{conc}_{part}"
            extra = {"setting": setting, "concurrency": conc, "part_mib": part}
            self.cell("plugin:" + cfg, "upload", 1, 1, names=[key], table="net_sweep.tsv", extra=extra, keep=True)
            self.cell("plugin:" + cfg, "download", 1, 1, names=[key], table="net_sweep.tsv", extra=extra)
            self.delete(key)

    # -------------------------------------------------------- small calls
    def small(self):
        n = int(E.get("NET_SMALL_N", "10"))
        payload_path = os.path.join(self.work, "small.bin")
        rows = []
        for kind in ("backup_data", "restore_data", "curl_put", "curl_get"):
            before = snapshot(self.stats)
            ms, errors = [], 0
            for i in range(n):
                name = f"small_{self.rtt}_{self.scheme}_{i:03d}"
                local = f"{E['NET_LOCAL']}/{E['NET_TS']}/gpbackup_{name}"
                url = f"{self.ep}/{E['BUCKET']}/{self.prefix}/gpbackup_{name}"
                if kind == "backup_data":
                    payload = os.urandom(1024)
                    with open(os.path.join(self.work, f"{name}.bin"), "wb") as f:
                        f.write(payload)
                    argv, inp = [E["PLUGIN"], "backup_data", self.cfg, local], payload
                elif kind == "restore_data":
                    argv, inp = [E["PLUGIN"], "restore_data", self.cfg, local], b""
                elif kind == "curl_put":
                    with open(payload_path, "wb") as f:
                        f.write(os.urandom(1024))
                    argv, inp = self.curl() + ["-o", "/dev/null", "-T", payload_path, url + "_curl"], b""
                else:
                    argv, inp = self.curl() + [url + "_curl"], b""
                t0 = time.perf_counter()
                r = subprocess.run(argv, input=inp, capture_output=True, timeout=120, env=self.env("plugin"))
                ms.append((time.perf_counter() - t0) * 1000)
                ok = r.returncode == 0 and not (kind in ("backup_data", "restore_data") and r.stderr)
                if ok and kind == "restore_data":
                    ok = r.stdout == open(os.path.join(self.work, f"{name}.bin"), "rb").read()
                if ok and kind == "curl_get":
                    ok = len(r.stdout) == 1024
                if not ok:
                    errors += 1
                    if errors <= 2:
                        log(f"    {kind} #{i}: exit {r.returncode}: {r.stderr.decode(errors='replace').strip()[:200]}")
            after = snapshot(self.stats, after=time.time())
            c = counts(before, after, n)
            rows.append({"rtt_ms": self.rtt, "scheme": self.scheme, "call": kind, "n": n,
                         "median_ms": round(statistics.median(ms), 2), "min_ms": round(min(ms), 2),
                         "conns": c["connections"], "tls": c["tls_handshakes"], "requests": c["requests"],
                         "methods": json.dumps(c["methods"], sort_keys=True), "errors": errors})
            log(f"{self.rtt} ms {self.scheme} small {kind}: median {statistics.median(ms):.1f} ms, "
                f"{c['connections']:g} conn/{c['tls_handshakes']:g} TLS/{c['requests']:g} req per call {c['methods']}"
                + (f", {errors} ERRORS" if errors else ""))
        for i in range(n):
            for suffix in ("", "_curl"):
                self.delete(f"gpbackup_small_{self.rtt}_{self.scheme}_{i:03d}{suffix}")
        path = os.path.join(self.out, "net_small.tsv")
        new = not os.path.exists(path)
        with open(path, "a") as f:
            if new:
                f.write("\t".join(rows[0]) + "\n")
            for row in rows:
                f.write("\t".join(str(v) for v in row.values()) + "\n")


def ceiling(label, endpoint, ca, out):
    """curl PUT and GET of NET_BIG through ENDPOINT (the server itself, or an
    uncapped, undelayed proxy): the proxy's own cost."""
    path = os.path.join(out, "net_ceiling.tsv")
    new = not os.path.exists(path)
    size = os.path.getsize(E["NET_BIG"])
    curl = ["curl", "-sS", "--fail", "-o", "/dev/null", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user",
            f"{E['S3_ACCESS_KEY']}:{E['S3_SECRET_KEY']}", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]
    if endpoint.startswith("https:"):
        curl += ["--cacert", ca]
    url = f"{endpoint}/{E['BUCKET']}/{E['FOLDER']}/backups/{E['DATE']}/{E['NET_TS']}/ceiling_{label}"
    with open(path, "a") as f:
        if new:
            f.write("label\top\trep\tseconds\tbytes\n")
        for rep in range(1, int(E.get("NET_REPS", "1")) + 2):
            for op, extra in (("upload", ["-T", E["NET_BIG"]]), ("download", [])):
                t0 = time.perf_counter()
                r = subprocess.run(curl + extra + [url], capture_output=True)
                sec = time.perf_counter() - t0
                if r.returncode != 0:
                    raise SystemExit(f"netbench ceiling {label} {op}: {r.stderr.decode(errors='replace')[:300]}")
                f.write(f"{label}\t{op}\t{rep}\t{sec:.4f}\t{size}\n")
                log(f"ceiling {label} {op} #{rep}: {size / (1 << 20) / sec:.0f} MiB/s")


def main():
    a = sys.argv[1:]
    if len(a) == 5 and a[0] == "ceiling":
        ceiling(a[1], a[2], a[3], a[4])
    elif len(a) == 7 and a[0] == "sweep":
        Runner(int(a[1]), a[2], int(a[3]), a[4], a[5], a[6]).sweep()
    elif len(a) == 7 and a[0] == "run":
        r = Runner(int(a[1]), a[2], int(a[3]), a[4], a[5], a[6])
        if E.get("NET_SKIP_MATRIX") != "1":
            r.matrix()
        r.small()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
