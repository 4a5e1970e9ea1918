#!/usr/bin/env python3
"""Data-task benchmarks (issue 5): bulk_insert into PostgreSQL and SQLite, and a
resumed download. Standard library only; run through scripts/bench-data.sh.

    python3 benches/bench_data.py BIN WORK [--rows N] [--reps R] [--only sqlite,pg,http,ftp]
                                  [--pg-url URL] [--psql PATH] [--download-mb M]
                                  [--ftp-python PY] [--json OUT]

- CSV: WORK/sales-N.csv, `id,name,amount,day` with a header, every 100th amount
  empty (NULL); generated once and reused.
- PostgreSQL (needs --pg-url or CHECKFLOW_TEST_PG_URL, and psql): per repetition,
  a fresh `sales (id bigint, name text, amount numeric(12,2), day date)`, then
  `psql -c "\\copy sales FROM ... (FORMAT csv, HEADER true)"` timed; a fresh
  table again, then `checkflow run` of a package holding one bulk_insert task,
  timed. The order alternates between repetitions; a CHECKPOINT precedes each load.
- SQLite: per repetition a new database file; a package creates the table and
  loads the CSV with bulk_insert (one transaction); rows/s = rows / wall of the
  whole `checkflow run`. The sqlite3 shell's `.import` of the same file is timed
  as a reference when `sqlite3` is installed.
- HTTP download: a Range-capable HTTP server (in this process, sendfile) serves a
  file of M MiB and counts the body bytes it sends per request. A full download is
  timed; then a second download is killed with SIGKILL once its `.part` file
  reaches half the size, and rerun: the bytes the server sent on the rerun are
  compared with the bytes missing from the `.part` file.
- FTP download: the same with pyftpdlib (REST), when --ftp-python has it.

Wall times are medians of the repetitions. Every figure printed was measured.
"""

import argparse
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socketserver
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

# --- helpers ---------------------------------------------------------------


def say(*a):
    print(*a, flush=True)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def timed(cmd, env=None, stdin_text=None):
    """Runs a command: (wall seconds, CPU seconds (user + system), peak RSS MiB, stdout).

    CPU and peak RSS come from GNU time when it is installed: the rusage of a
    child forked from this Python would count Python's own pages, copied at the
    fork, in its peak RSS. Without it they come from wait4 (RSS then an upper bound)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, tempfile.NamedTemporaryFile(
        "r", suffix=".time"
    ) as tf:
        full = [GNU_TIME, "-f", "%U %S %M", "-o", tf.name, *cmd] if GNU_TIME else cmd
        t0 = time.perf_counter()
        p = subprocess.Popen(
            full,
            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
            text=True,
        )
        if stdin_text is not None:
            p.stdin.write(stdin_text)
            p.stdin.close()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read()
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[:3])} exited {p.returncode}:\n{text[-3000:]}\n{err.read()[-3000:]}")
        cpu, rss = ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024
        if GNU_TIME:
            fields = tf.read().split()[-3:]
            cpu, rss = float(fields[0]) + float(fields[1]), int(fields[2]) / 1024
    return wall, cpu, rss, text


def run_checkflow(binary, package, env=None):
    """Runs `checkflow run PACKAGE --log json`: (wall s, {path: duration ms}, CPU s, peak RSS MiB)."""
    wall, cpu, rss, out = timed([binary, "run", package, "--log", "json"], env)
    durations = {}
    for line in out.splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event") == "finished" and "duration_ms" in ev:
            durations[ev.get("path")] = ev["duration_ms"]
    return wall, durations, cpu, rss


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# --- the CSV ---------------------------------------------------------------


def generated_csv(path, rows, header, line):
    """Writes PATH: HEADER, then line(i) for i in 1..=ROWS. Kept between runs:
    a file with its .done marker is reused as it is."""
    done = path + ".done"
    if os.path.exists(path) and os.path.exists(done):
        return path
    say(f"   generating {path} ({rows:,} rows)")
    t0 = time.perf_counter()
    with open(path, "w", buffering=1 << 20) as f:
        f.write(header)
        chunk = []
        for i in range(1, rows + 1):
            chunk.append(line(i))
            if len(chunk) == 10000:
                f.write("".join(chunk))
                chunk.clear()
        f.write("".join(chunk))
    open(done, "w").close()
    say(f"   {os.path.getsize(path):,} bytes in {time.perf_counter() - t0:.1f} s")
    return path


def make_csv(work, rows):
    """WORK/sales-ROWS.csv (reused if it is there and complete)."""
    days = [f"2026-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 29)]

    def line(i):
        amount = "" if i % 100 == 0 else f"{(i * 7919) % 1000000 // 100}.{i % 100:02d}"
        return f"{i},customer {i * 31 % 999983},{amount},{days[i % len(days)]}\n"

    return generated_csv(os.path.join(work, f"sales-{rows}.csv"), rows, "id,name,amount,day\n", line)


NARROW_PG = "id bigint, name text, amount numeric(12,2), day date"
NARROW_SQLITE = "id INTEGER, name TEXT, amount NUMERIC(12,2), day DATE"


def bulk_package(path, conn, csv_path, create_sql=None):
    pid = uuid.uuid4()
    tasks = []
    after = ""
    if create_sql:
        tasks.append(
            f"  - name: Create\n    type: sql\n    connection: dw\n    sql: {json.dumps(create_sql)}\n"
        )
        after = "    after: [Create]\n"
    tasks.append(
        "  - name: Load\n    type: bulk_insert\n    connection: dw\n    table: sales\n"
        f"    file: {json.dumps(csv_path)}\n    \"null\": \"\"\n{after}"
    )
    with open(path, "w") as f:
        f.write(
            f"id: {pid}\nname: bench_bulk\nconnections:\n  dw: {conn}\ntasks:\n" + "".join(tasks)
        )


# --- PostgreSQL ------------------------------------------------------------


def psql(psql_bin, url, *args, capture=False):
    cmd = [psql_bin, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, *args]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:6])} ... failed: {p.stderr}")
    return p.stdout


def bench_pg(a, csv_path, rows, results):
    url = a.pg_url
    say("== bulk_insert into PostgreSQL vs psql \\copy")
    say(f"   server: {psql(a.psql, url, '-Atc', 'select version()').strip()[:60]}")
    settings = psql(
        a.psql,
        url,
        "-Atc",
        "select string_agg(name || '=' || setting, ' ') from pg_settings "
        "where name in ('fsync','synchronous_commit','full_page_writes','wal_level','max_wal_size','shared_buffers')",
    ).strip()
    say(f"   settings: {settings}")
    pkg = os.path.join(a.work, "pg.yaml")
    bulk_package(pkg, "{ kind: postgres, url_env: CHECKFLOW_BENCH_PG_URL }", csv_path)
    env = dict(os.environ, CHECKFLOW_BENCH_PG_URL=url)
    fresh = f"DROP TABLE IF EXISTS sales; CREATE TABLE sales ({NARROW_PG}); CHECKPOINT;"
    check = "select count(*), count(amount), sum(amount), sum(id), min(day), max(day) from sales"
    copy_cmd = f"\\copy sales FROM '{csv_path}' WITH (FORMAT csv, HEADER true)"
    walls = {"psql": [], "checkflow": []}
    cpus = {"psql": [], "checkflow": []}
    task_ms, rss = [], []
    sums = {}
    for rep in range(a.reps):
        order = ["psql", "checkflow"] if rep % 2 == 0 else ["checkflow", "psql"]
        for who in order:
            psql(a.psql, url, "-c", fresh)
            if who == "psql":
                wall, cpu, _, _ = timed([a.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", copy_cmd])
            else:
                wall, durs, cpu, peak = run_checkflow(a.binary, pkg, env)
                task_ms.append(durs.get("Load", float("nan")))
                rss.append(peak)
            walls[who].append(wall)
            cpus[who].append(cpu)
            sums[who] = psql(a.psql, url, "-Atc", check).strip()
            say(f"   rep {rep + 1} {who:9} {wall:7.2f} s  {rows / wall:12,.0f} rows/s  (client CPU {cpu:.2f} s)")
    if sums["psql"] != sums["checkflow"]:
        raise SystemExit(f"the tables differ: psql {sums['psql']} / checkflow {sums['checkflow']}")
    count = int(sums["psql"].split("|")[0])
    if count != rows:
        raise SystemExit(f"expected {rows} rows, found {count}")
    mp, mc = median(walls["psql"]), median(walls["checkflow"])
    ratio = mc / mp
    per_rep = [c / p for p, c in zip(walls["psql"], walls["checkflow"])]
    say(
        f"   median: psql \\copy {mp:.2f} s ({rows / mp:,.0f} rows/s); checkflow {mc:.2f} s "
        f"({rows / mc:,.0f} rows/s; task {median(task_ms) / 1000:.2f} s); ratio {ratio:.2f}x "
        f"(per repetition {', '.join(f'{r:.2f}' for r in per_rep)})"
    )
    say(
        f"   client CPU (user + system): psql {median(cpus['psql']):.2f} s, checkflow {median(cpus['checkflow']):.2f} s; "
        f"checkflow peak RSS {max(rss):.0f} MiB"
    )
    say(f"   both tables: count, count(amount), sum(amount), sum(id), min(day), max(day) = {sums['psql']}")
    verdict = "PASS" if ratio <= 1.5 else "MISS"
    say(f"   goal: within 1.5x of psql \\copy: {verdict}")
    results["postgres"] = {
        "rows": rows,
        "psql_wall_s": walls["psql"],
        "checkflow_wall_s": walls["checkflow"],
        "checkflow_task_ms": task_ms,
        "psql_cpu_s": cpus["psql"],
        "checkflow_cpu_s": cpus["checkflow"],
        "checkflow_peak_rss_mib": rss,
        "median_ratio": ratio,
        "settings": settings,
        "goal": verdict,
    }


# --- SQLite ----------------------------------------------------------------


def bench_sqlite(a, csv_path, rows, results):
    say("== bulk_insert into SQLite")
    dbdir = os.path.join(a.work, "sqlite")
    os.makedirs(dbdir, exist_ok=True)
    db = os.path.join(dbdir, "dw.db")
    pkg = os.path.join(dbdir, "sqlite.yaml")
    bulk_package(
        pkg, "{ kind: sqlite, path: dw.db }", csv_path, create_sql=f"CREATE TABLE sales ({NARROW_SQLITE})"
    )
    walls, task_ms, cpus, rss = [], [], [], []
    for rep in range(a.reps):
        for suffix in ("", "-journal", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
        wall, durs, cpu, peak = run_checkflow(a.binary, pkg)
        walls.append(wall)
        cpus.append(cpu)
        rss.append(peak)
        task_ms.append(durs.get("Load", float("nan")))
        c = sqlite3.connect(db)
        got = c.execute("select count(*), count(amount), sum(id) from sales").fetchone()
        c.close()
        if got[0] != rows:
            raise SystemExit(f"SQLite holds {got[0]} rows, expected {rows}")
        say(
            f"   rep {rep + 1} checkflow {wall:7.2f} s  {rows / wall:12,.0f} rows/s "
            f"(task {task_ms[-1] / 1000:.2f} s, {rows / (task_ms[-1] / 1000):,.0f} rows/s; CPU {cpu:.2f} s; peak RSS {peak:.0f} MiB)"
        )
    ref = []
    if shutil.which("sqlite3"):
        for rep in range(a.reps):
            rdb = os.path.join(dbdir, "ref.db")
            if os.path.exists(rdb):
                os.remove(rdb)
            subprocess.run(["sqlite3", rdb, f"CREATE TABLE sales ({NARROW_SQLITE})"], check=True)
            wall, _, _, _ = timed(["sqlite3", rdb], stdin_text=f".import --csv --skip 1 {csv_path} sales\n")
            ref.append(wall)
            say(f"   rep {rep + 1} sqlite3 .import {ref[-1]:7.2f} s  {rows / ref[-1]:12,.0f} rows/s (reference)")
        os.remove(os.path.join(dbdir, "ref.db"))
    mw = median(walls)
    rate = rows / mw
    verdict = "PASS" if rate >= 500_000 else "MISS"
    say(
        f"   median: checkflow {mw:.2f} s = {rate:,.0f} rows/s (task {median(task_ms) / 1000:.2f} s)"
        + (f"; sqlite3 .import {median(ref):.2f} s = {rows / median(ref):,.0f} rows/s" if ref else "")
    )
    say(f"   goal: 500,000 rows/s or more: {verdict}")
    results["sqlite"] = {
        "rows": rows,
        "checkflow_wall_s": walls,
        "checkflow_task_ms": task_ms,
        "checkflow_cpu_s": cpus,
        "checkflow_peak_rss_mib": rss,
        "rows_per_s": rate,
        "sqlite3_import_wall_s": ref,
        "goal": verdict,
    }


# --- HTTP download -----------------------------------------------------------


class Served:
    """What the HTTP server sent: one entry per GET (start offset, status, body bytes)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []

    def add(self, entry):
        with self.lock:
            self.requests.append(entry)

    def take(self):
        with self.lock:
            r, self.requests = self.requests, []
            return r


def make_handler(root, served):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            path = os.path.join(root, os.path.basename(self.path.split("?")[0]))
            try:
                f = open(path, "rb")
            except OSError:
                self.send_error(404)
                return
            with f:
                st = os.fstat(f.fileno())
                size = st.st_size
                etag = f'"{size:x}-{st.st_mtime_ns:x}"'
                lm = self.date_time_string(int(st.st_mtime))
                start, end, status = 0, size - 1, 200
                rng = self.headers.get("Range")
                if_range = self.headers.get("If-Range")
                m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
                if m and (if_range is None or if_range in (etag, lm)):
                    start = int(m.group(1))
                    if m.group(2):
                        end = min(int(m.group(2)), size - 1)
                    if start >= size:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        served.add({"start": start, "status": 416, "sent": 0})
                        return
                    status = 206
                length = end - start + 1
                self.send_response(status)
                self.send_header("Content-Length", str(length))
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", lm)
                self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                self.end_headers()
                self.wfile.flush()
                sent = 0
                try:
                    while sent < length:
                        n = os.sendfile(self.connection.fileno(), f.fileno(), start + sent, min(length - sent, 1 << 24))
                        if n == 0:
                            break
                        sent += n
                except OSError:
                    self.close_connection = True
                finally:
                    served.add({"start": start, "status": status, "sent": sent})

    return Handler


class ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def make_blob(path, mib):
    if os.path.exists(path) and os.path.getsize(path) == mib << 20:
        return
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))


def download_package(path, url, to, conn=""):
    with open(path, "w") as f:
        f.write(
            f"id: {uuid.uuid4()}\nname: bench_download\n"
            "checkpoint: { file: dl.ckpt, usage: if_exists, save: true }\n"
            f"{conn}tasks:\n"
            f"  - {{ name: Get, type: download, url: {json.dumps(url)}, to: {json.dumps(to)}, fail_package_on_failure: true"
            + (", connection: ftp" if conn else "")
            + " }\n"
        )


def kill_at_half(binary, pkg, part, size, env=None):
    """Starts the run, SIGKILLs it once `part` holds half of `size`: (.part bytes after the kill, seconds)."""
    p = subprocess.Popen([binary, "run", pkg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    t0 = time.perf_counter()
    while True:
        try:
            n = os.path.getsize(part)
        except OSError:
            n = 0
        if n >= size // 2:
            os.kill(p.pid, signal.SIGKILL)
            break
        if p.poll() is not None:
            raise SystemExit("the download ended before it could be interrupted (make it larger: --download-mb)")
        time.sleep(0.0005)
    p.wait()
    return os.path.getsize(part), time.perf_counter() - t0


def resume_scenario(a, label, pkg_dir, pkg, target, size, want_hash, sent_since, env=None):
    """Full download, then a download killed at half and resumed. Figures go to a dict."""
    part = target + ".part"

    def clean():
        for p in (target, part, part + ".meta", os.path.join(pkg_dir, "dl.ckpt")):
            if os.path.exists(p):
                os.remove(p)

    fulls = []
    for rep in range(a.reps):
        clean()
        sent_since()
        wall, durs, _, _ = run_checkflow(a.binary, pkg, env)
        sent = sum(r["sent"] for r in sent_since())
        fulls.append(wall)
        say(f"   full download rep {rep + 1}: {wall:.2f} s, {size / wall / 2**20:,.0f} MiB/s, server sent {sent:,} bytes")
    if sha256_file(target) != want_hash:
        raise SystemExit(f"{label}: the downloaded file differs from the served one")
    resumes = []
    for rep in range(a.reps):
        clean()
        sent_since()
        kept, t_kill = kill_at_half(a.binary, pkg, part, size, env)
        first = sent_since()
        missing = size - kept
        time.sleep(0.2)
        wall, durs, _, _ = run_checkflow(a.binary, pkg, env)
        reqs = sent_since()
        sent = sum(r["sent"] for r in reqs)
        starts = [r["start"] for r in reqs]
        ok = sha256_file(target) == want_hash
        if not ok:
            raise SystemExit(f"{label}: the resumed file differs from the served one")
        entry = {
            "size": size,
            "killed_after_s": t_kill,
            "first_run_server_sent": sum(r["sent"] for r in first),
            "part_after_kill": kept,
            "missing": missing,
            "rerun_server_sent": sent,
            "rerun_requests": reqs,
            "rerun_wall_s": wall,
            "rerun_task_ms": durs.get("Get"),
            "sha256_ok": ok,
        }
        resumes.append(entry)
        say(
            f"   resume rep {rep + 1}: killed after {t_kill:.2f} s with {kept:,} bytes in .part "
            f"({kept / size:.0%}); first run: server sent {entry['first_run_server_sent']:,}; "
            f"rerun: {len(reqs)} request(s) from byte {starts}, server sent {sent:,} bytes for {missing:,} missing "
            f"(extra {sent - missing:+,}); {wall:.2f} s, {missing / wall / 2**20:,.0f} MiB/s; SHA-256 ok"
        )
    clean()
    exact = all(r["rerun_server_sent"] == r["missing"] for r in resumes)
    verdict = "PASS" if exact else "MISS"
    say(
        f"   median full download {median(fulls):.2f} s ({size / median(fulls) / 2**20:,.0f} MiB/s); "
        f"rerun sends only the missing bytes: {verdict}"
    )
    return {"full_wall_s": fulls, "resumes": resumes, "goal": verdict}


def served_blob(a):
    """The file both download benchmarks serve: `a.download_mb` MiB in
    WORK/served/big.bin. Returns (served folder, size in bytes, SHA-256)."""
    root = os.path.join(a.work, "served")
    os.makedirs(root, exist_ok=True)
    blob = os.path.join(root, "big.bin")
    make_blob(blob, a.download_mb)
    return root, os.path.getsize(blob), sha256_file(blob)


def bench_http(a, results):
    say("== download over HTTP, resumed after SIGKILL")
    root, size, want = served_blob(a)
    served = Served()
    srv = ThreadingServer(("127.0.0.1", 0), make_handler(root, served))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        port = srv.server_address[1]
        d = os.path.join(a.work, "http")
        os.makedirs(d, exist_ok=True)
        pkg = os.path.join(d, "dl.yaml")
        target = os.path.join(d, "big.bin")
        download_package(pkg, f"http://127.0.0.1:{port}/big.bin", target)
        say(f"   {size:,} bytes from http://127.0.0.1:{port}/big.bin")
        results["http"] = resume_scenario(a, "HTTP", d, pkg, target, size, want, served.take)
    finally:
        srv.shutdown()


FTP_SERVER = r"""
import json, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
port, root, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
auth = DummyAuthorizer()
auth.add_user("etl", "secret", root, perm="elr")
class Handler(FTPHandler):
    rest = 0
    def ftp_REST(self, line):
        try:
            self.rest = int(line)
        except ValueError:
            pass
        return super().ftp_REST(line)
    def log_transfer(self, cmd, filename, receive, completed, elapsed, bytes):
        with open(log, "a") as f:
            f.write(json.dumps({"start": self.rest, "status": cmd, "sent": bytes, "completed": completed}) + "\n")
        self.rest = 0
Handler.authorizer = auth
Handler.passive_ports = range(40200, 40301)
FTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


def bench_ftp(a, results):
    say("== download over FTP (REST), resumed after SIGKILL")
    ok = subprocess.run([a.ftp_python, "-c", "import pyftpdlib"], capture_output=True).returncode == 0
    if not ok:
        say(f"   skipped: {a.ftp_python} cannot import pyftpdlib")
        return
    import socket

    root, size, want = served_blob(a)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    log = os.path.join(a.work, "ftp-transfers.jsonl")
    open(log, "w").close()
    srv = subprocess.Popen(
        [a.ftp_python, "-c", FTP_SERVER, str(port), root, log],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or srv.poll() is not None:
                    raise SystemExit("pyftpdlib did not start")
                time.sleep(0.05)
        read = [0]

        def sent_since():
            # pyftpdlib logs a transfer when its data channel closes: wait for it.
            time.sleep(0.3)
            with open(log) as f:
                lines = f.read().splitlines()
            new = [json.loads(x) for x in lines[read[0]:]]
            read[0] = len(lines)
            return new

        d = os.path.join(a.work, "ftp")
        os.makedirs(d, exist_ok=True)
        pkg = os.path.join(d, "dl.yaml")
        target = os.path.join(d, "big.bin")
        conn = (
            "connections:\n"
            f"  ftp: {{ kind: ftp, host: 127.0.0.1, port: {port}, user: etl, password_env: CHECKFLOW_BENCH_FTP_PASSWORD }}\n"
        )
        download_package(pkg, f"ftp://127.0.0.1:{port}/big.bin", target, conn)
        env = dict(os.environ, CHECKFLOW_BENCH_FTP_PASSWORD="secret")
        say(f"   {size:,} bytes from ftp://127.0.0.1:{port}/big.bin (pyftpdlib, sendfile)")
        results["ftp"] = resume_scenario(a, "FTP", d, pkg, target, size, want, sent_since, env)
    finally:
        srv.kill()
        srv.wait()


# --- main --------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("work")
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="sqlite,pg,http,ftp")
    ap.add_argument("--pg-url", default=os.environ.get("CHECKFLOW_TEST_PG_URL"))
    ap.add_argument("--psql", default=shutil.which("psql") or "psql")
    ap.add_argument("--download-mb", type=int, default=1024)
    ap.add_argument("--ftp-python", default=os.path.expanduser("~/.cache/checkflow/venv/bin/python"))
    ap.add_argument("--json")
    a = ap.parse_args()
    a.binary = os.path.abspath(a.binary)
    a.work = os.path.abspath(a.work)
    os.makedirs(a.work, exist_ok=True)
    only = set(a.only.split(","))
    results = {"load_before": loadavg(), "rows": a.rows, "reps": a.reps}
    say(f"== data benchmarks: {a.rows:,} rows, {a.reps} repetition(s); load average {loadavg()}")
    if only & {"sqlite", "pg"}:
        csv_path = make_csv(a.work, a.rows)
        if "sqlite" in only:
            bench_sqlite(a, csv_path, a.rows, results)
            say(f"   load average {loadavg()}")
        if "pg" in only:
            if not a.pg_url:
                say("== PostgreSQL skipped: no --pg-url and no CHECKFLOW_TEST_PG_URL")
            else:
                bench_pg(a, csv_path, a.rows, results)
                say(f"   load average {loadavg()}")
    if "http" in only:
        bench_http(a, results)
        say(f"   load average {loadavg()}")
    if "ftp" in only:
        bench_ftp(a, results)
        say(f"   load average {loadavg()}")
    results["load_after"] = loadavg()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
