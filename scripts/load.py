#!/usr/bin/env python3
"""End-to-end load benchmark for Gatehouse.

Builds the release binary, serves a fresh SQLite database from a separate process, drives it
with wrk (Debian package `wrk`), and prints per scenario: requests per second, p50 and p99
latency, errors, the server's CPU milliseconds per request (from /proc/<pid>/stat) and its peak
RSS. Writes target/bench/load.md (the table), load.json (the figures) and load.svg (a chart).

    python3 scripts/load.py                 # 10 s per scenario
    python3 scripts/load.py --duration 5 --skip-build
    python3 scripts/load.py --soak 60       # a mixed soak instead: reads, logins, signups
                                            # (at Gatehouse's default hashing cost)

The soak runs /users/me, logins and registrations at once for the given seconds and reports,
per kind, requests, errors and p99, and the server's RSS and open files at the start and the
end (target/bench/soak.md and soak.json): a leak of memory or descriptors shows there.

The scenarios hash at the peer parameters (argon2id m=64 MiB, t=3, p=4) so logins compare at
equal cost; the soak at Gatehouse's defaults, as it is deployed (`--hashing` chooses). Load generator and server share the machine: CPU per request is the figure that
survives that; requests per second depend on what wrk takes for itself.
"""

import argparse
import http.client
import json
import math
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "scripts" / "load"
OUT = ROOT / "target" / "bench"
BINARY = ROOT / "target" / "release" / "gatehouse"
CLK_TCK = os.sysconf("SC_CLK_TCK")
EMAIL = "load@example.com"
PASSWORD = "correct horse battery staple"
PEER_HASHING = {"ARGON2_MEMORY_KIB": "65536", "ARGON2_ITERATIONS": "3", "ARGON2_PARALLELISM": "4"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The release binary on its own database, as a separate process."""

    def __init__(self, data_dir, port):
        self.data_dir, self.port = data_dir, port
        self.base = f"http://127.0.0.1:{port}"
        self.env = dict(
            os.environ,
            DATABASE_URL=str(data_dir / "gatehouse.db"),
            BIND_ADDR=f"127.0.0.1:{port}",
            RUST_LOG="warn",
            COOKIE_SECURE="false",
            # One client address sending thousands of logins is the load, not an attack.
            RATE_LIMIT="off",
            **PEER_HASHING,
        )
        self.process = None

    def start(self):
        """Starts the server; returns milliseconds until /health first answered 200."""
        started = time.perf_counter()
        self.process = subprocess.Popen([BINARY, "serve"], env=self.env, cwd=self.data_dir)
        while True:
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=1) as r:
                    if r.status == 200:
                        return (time.perf_counter() - started) * 1000
            except OSError:
                if self.process.poll() is not None:
                    sys.exit("the server exited during startup")
                time.sleep(0.002)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=15)

    def cpu_ticks(self):
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    def open_files(self):
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def rss_kib(self, field="VmRSS"):
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def cli(self, *args):
        return subprocess.run([BINARY, *args], env=self.env, cwd=self.data_dir,
                              check=True, capture_output=True, text=True).stdout

    def request(self, method, path, body=None, headers=None):
        data = body.encode() if isinstance(body, str) else body
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()


def form(**fields):
    return urllib.parse.urlencode(fields)


def login(server):
    status, _, body = server.request(
        "POST", "/auth/jwt/login", form(username=EMAIL, password=PASSWORD),
        {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, body
    return json.loads(body)


class RssSampler(threading.Thread):
    """Samples the server's RSS every 50 ms while a scenario runs: the peak of all of it and,
    with `anon`, of its anonymous part (the heap and the stacks, without the code mapped from
    files)."""

    def __init__(self, server, anon=False):
        super().__init__(daemon=True)
        self.server, self.anon, self.running = server, anon, True
        self.peak = self.peak_anon = 0

    def run(self):
        while self.running:
            self.peak = max(self.peak, self.server.rss_kib())
            if self.anon:
                self.peak_anon = max(self.peak_anon, self.server.rss_kib("RssAnon"))
            time.sleep(0.05)

    def stop(self):
        self.running = False
        self.join()
        return self.peak


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def millis(text):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * UNITS[unit]


def run_wrk(server, path, connections, duration, threads=2, script=None, headers=(), env=None):
    command = ["wrk", "--latency", "-t", str(threads), "-c", str(connections),
               "-d", f"{duration}s", "--timeout", "10s"]
    for header in headers:
        command += ["-H", header]
    if script:
        command += ["-s", str(LUA / script)]
    command.append(server.base + path)
    output = subprocess.run(command, check=True, capture_output=True, text=True,
                            env=dict(os.environ, **(env or {}))).stdout
    if "Latency Distribution" not in output:
        sys.exit(f"wrk gave no latency figures for {path}:\n{output}")
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "requests": requests,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        # Anchored: the thread statistics above also end in percentages, such as "69.50%".
        "p50_ms": millis(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1)),
        "p99_ms": millis(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1)),
        "errors": (int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
    }


def measured(server, name, load):
    """Runs `load` and adds the server's CPU per request and peak RSS to its figures."""
    sampler = RssSampler(server)
    sampler.start()
    before = server.cpu_ticks()
    figures = load()
    cpu_ms = (server.cpu_ticks() - before) * 1000 / CLK_TCK
    figures["peak_rss_mib"] = sampler.stop() / 1024
    figures["cpu_ms_per_request"] = cpu_ms / max(figures["requests"], 1)
    figures["scenario"] = name
    print(f"  {name:<28} {figures['rps']:>9.1f} req/s  p50 {figures['p50_ms']:7.2f} ms  "
          f"p99 {figures['p99_ms']:7.2f} ms  errors {figures['errors']}  "
          f"cpu {figures['cpu_ms_per_request']:.3f} ms/req  rss {figures['peak_rss_mib']:.1f} MiB",
          flush=True)
    return figures


def health_during_login_flood(server, duration):
    """/health latency, one request at a time, while 16 connections flood the login."""
    flood = {}
    flooder = threading.Thread(target=lambda: flood.update(run_wrk(
        server, "/auth/jwt/login", 16, duration, script="login.lua", env=login_env())))
    flooder.start()
    time.sleep(0.5)
    latencies = []
    connection = http.client.HTTPConnection("127.0.0.1", server.port)
    deadline = time.perf_counter() + duration - 1
    errors = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        latencies.append((time.perf_counter() - started) * 1000)
        errors += response.status != 200
        time.sleep(0.01)
    flooder.join()
    latencies.sort()
    return {
        "requests": flood["requests"],
        "rps": flood["rps"],
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
        "errors": errors + flood["errors"],
        "note": f"/health p50/p99 over {len(latencies)} probes; req/s and CPU are the logins'",
    }


def soak(server, duration, bearer):
    """Reads, logins and signups at once for `duration` seconds; the server's RSS and open
    files before and after."""
    start = {"rss_mib": server.rss_kib() / 1024, "anon_mib": server.rss_kib("RssAnon") / 1024,
             "open_files": server.open_files()}
    kinds = {
        "users_me (16 connections)": dict(path="/users/me", connections=16, headers=[bearer]),
        "login (4 connections)": dict(path="/auth/jwt/login", connections=4,
                                      script="login.lua", env=login_env()),
        "register (4 connections)": dict(path="/auth/register", connections=4,
                                         script="register.lua"),
    }
    figures = {}

    def drive(name, load):
        figures[name] = run_wrk(server, load.pop("path"), load.pop("connections"), duration,
                                **load)

    sampler = RssSampler(server, anon=True)
    sampler.start()
    workers = [threading.Thread(target=drive, args=item) for item in kinds.items()]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    peak = sampler.stop() / 1024
    time.sleep(1)  # what is still held once the load stops
    end = {"rss_mib": server.rss_kib() / 1024, "anon_mib": server.rss_kib("RssAnon") / 1024,
           "open_files": server.open_files()}
    return {"duration_s": duration, "start": start, "end": end, "peak_rss_mib": peak,
            "peak_anon_mib": sampler.peak_anon / 1024, "kinds": figures}


def write_soak(result):
    OUT.mkdir(parents=True, exist_ok=True)
    rows = ["| kind | requests | req/s | errors | p99 ms |", "|---|---:|---:|---:|---:|"]
    for name, f in result["kinds"].items():
        rows.append(f"| {name} | {f['requests']} | {f['rps']:.1f} | {f['errors']} "
                    f"| {f['p99_ms']:.2f} |")
    start, end = result["start"], result["end"]
    text = "\n".join([
        f"# Gatehouse soak, {result['duration_s']} s\n",
        f"{machine()}; wrk on the same machine.\n",
        *rows, "",
        f"- RSS: {start['rss_mib']:.1f} MiB at the start, {end['rss_mib']:.1f} MiB at the end "
        f"(peak {result['peak_rss_mib']:.1f} MiB)",
        f"- of which anonymous (heap and stacks; the rest is code mapped from the binary and "
        f"its libraries): {start['anon_mib']:.1f} MiB at the start, {end['anon_mib']:.1f} MiB "
        f"at the end (peak {result['peak_anon_mib']:.1f} MiB)",
        f"- open files: {start['open_files']} at the start, {end['open_files']} at the end", ""])
    (OUT / "soak.md").write_text(text)
    (OUT / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    print(text)


def login_env():
    return {"LOAD_EMAIL": urllib.parse.quote(EMAIL),
            "LOAD_PASSWORD_FORM": urllib.parse.quote_plus(PASSWORD)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--skip-build", action="store_true", help="use the existing binary")
    parser.add_argument("--soak", type=int, metavar="SECONDS",
                        help="run the mixed soak for SECONDS instead of the scenarios")
    parser.add_argument("--hashing", choices=["peer", "default"],
                        help="argon2id at the peers' cost (m=64 MiB, t=3, p=4: the scenarios' "
                             "default) or at Gatehouse's own defaults (the soak's default)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found; install it with: sudo apt-get install -y wrk")
    if not args.skip_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)

    data_dir = Path(tempfile.mkdtemp(prefix="gatehouse-load-"))
    server = Server(data_dir, free_port())
    if (args.hashing or ("default" if args.soak else "peer")) == "default":
        for name in PEER_HASHING:
            server.env.pop(name)
    d, c = args.duration, args.connections
    try:
        first_start = server.start()
        server.stop()
        startup_ms = server.start()
        idle_rss = server.rss_kib() / 1024
        print(f"startup: {first_start:.0f} ms on a new database, {startup_ms:.0f} ms on an "
              f"existing one; idle RSS {idle_rss:.1f} MiB", flush=True)

        status, _, body = server.request("POST", "/auth/register",
                                         json.dumps({"email": EMAIL, "password": PASSWORD}),
                                         {"Content-Type": "application/json"})
        assert status == 201, body
        bearer = f"Authorization: Bearer {login(server)['access_token']}"
        client = dict(line.split("=", 1) for line in server.cli(
            "clients", "create", "--name", "load", "--scope", "read").splitlines()
            if "=" in line and not line.startswith("#"))
        status, _, body = server.request(
            "POST", "/auth/token", form(grant_type="client_credentials",
                                        client_id=client["client_id"],
                                        client_secret=client["client_secret"]),
            {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200, body
        client_bearer = f"Authorization: Bearer {json.loads(body)['access_token']}"
        status, headers, _ = server.request(
            "POST", "/auth/cookie/login", form(username=EMAIL, password=PASSWORD),
            {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 204
        access_cookie = next(re.match(r"gatehouse_access=([^;]+)", cookie).group(1)
                             for cookie in headers.get_all("Set-Cookie")
                             if cookie.startswith("gatehouse_access="))
        cookie = f"Cookie: gatehouse_access={access_cookie}"
        refresh_chains = 8
        tokens_file = data_dir / "refresh-tokens.txt"
        tokens_file.write_text("\n".join(login(server)["refresh_token"]
                                         for _ in range(refresh_chains)) + "\n")

        time.sleep(1)  # let the setup's hashing memory go back before measuring RSS
        run_wrk(server, "/users/me", c, 2, headers=[bearer])  # warm-up, not reported
        if args.soak:
            write_soak(soak(server, args.soak, bearer))
            return
        print(f"scenarios: {d} s each, {c} connections unless named", flush=True)
        results = [
            measured(server, "users_me", lambda: run_wrk(
                server, "/users/me", c, d, headers=[bearer])),
            measured(server, "secret (client token)", lambda: run_wrk(
                server, "/secret", c, d, headers=[client_bearer])),
            measured(server, "cookie page (/)", lambda: run_wrk(
                server, "/", c, d, headers=[cookie])),
            measured(server, "cookie page (/account)", lambda: run_wrk(
                server, "/account", c, d, headers=[cookie])),
            measured(server, "users_me, 256 connections", lambda: run_wrk(
                server, "/users/me", 256, d, headers=[bearer])),
            measured(server, f"refresh ({refresh_chains} chains)", lambda: run_wrk(
                server, "/auth/jwt/refresh", refresh_chains, d, threads=refresh_chains,
                script="refresh.lua", env={"LOAD_REFRESH_TOKENS": str(tokens_file)})),
            measured(server, "login (16 connections)", lambda: run_wrk(
                server, "/auth/jwt/login", 16, d, script="login.lua", env=login_env())),
            measured(server, "health during login flood", lambda: health_during_login_flood(
                server, d)),
        ]
        users_before = count_users(data_dir)
        register = measured(server, "register (16 connections)", lambda: run_wrk(
            server, "/auth/register", 16, d, script="register.lua"))
        stored = count_users(data_dir) - users_before
        register["note"] = f"{stored} users stored for {register['requests']} requests"
        results.append(register)
        print(f"  register: {register['note']}", flush=True)
    finally:
        if server.process and server.process.poll() is None:
            server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    summary = {"startup_ms_existing_db": startup_ms, "startup_ms_new_db": first_start,
               "idle_rss_mib": idle_rss, "duration_s": d, "connections": c,
               "machine": machine(), "scenarios": results}
    write_outputs(summary)


def count_users(data_dir):
    with sqlite3.connect(data_dir / "gatehouse.db") as db:
        return db.execute("SELECT COUNT(*) FROM users").fetchone()[0]


def machine():
    cpus = os.cpu_count()
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    load = os.getloadavg()[0]
    return f"{cpus} × {model}; load average {load:.2f} at the end"


def write_outputs(summary):
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "load.json").write_text(json.dumps(summary, indent=2))
    rows = ["| scenario | req/s | p50 ms | p99 ms | errors | server CPU ms/req | peak RSS MiB |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for r in summary["scenarios"]:
        rows.append(f"| {r['scenario']} | {r['rps']:.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
                    f"| {r['errors']} | {r['cpu_ms_per_request']:.3f} | {r['peak_rss_mib']:.1f} |")
    notes = [f"- {r['scenario']}: {r['note']}" for r in summary["scenarios"] if "note" in r]
    text = "\n".join([
        "# Gatehouse load benchmark", "",
        f"{summary['machine']}. {summary['duration_s']} s per scenario, wrk on the same machine.",
        f"Startup to first answer: {summary['startup_ms_existing_db']:.0f} ms on an existing "
        f"database ({summary['startup_ms_new_db']:.0f} ms on a new one). "
        f"Idle RSS {summary['idle_rss_mib']:.1f} MiB.", "", *rows, "", *notes, ""])
    (OUT / "load.md").write_text(text)
    (OUT / "load.svg").write_text(chart(summary["scenarios"]))
    print(f"\nwrote {OUT / 'load.md'}, load.json and load.svg\n\n{text}")


def chart(results):
    """Two bar charts side by side, on log scales (the figures span five orders of
    magnitude): req/s and server CPU ms per request, per scenario."""
    width, bar_h, gap, label_w, panel_w = 980, 22, 10, 230, 340
    height = 60 + len(results) * (bar_h + gap)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'font-family="system-ui, sans-serif" font-size="13">',
             '<rect width="100%" height="100%" fill="#fff"/>']
    for panel, (key, title, colour) in enumerate([
            ("rps", "requests per second", "#1f4e79"),
            ("cpu_ms_per_request", "server CPU ms per request", "#a4262c")]):
        x0 = label_w + panel * (panel_w + 60)
        values = [max(r[key], 1e-6) for r in results]
        low, high = math.log10(min(values) / 2), math.log10(max(values))
        parts.append(f'<text x="{x0}" y="24" font-weight="bold">{title} (log scale)</text>')
        for i, r in enumerate(results):
            y = 40 + i * (bar_h + gap)
            if panel == 0:
                parts.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">'
                             f'{escape(r["scenario"])}</text>')
            w = max(1, (math.log10(max(r[key], 1e-6)) - low) / (high - low) * (panel_w - 70))
            parts.append(f'<rect x="{x0}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                         f'fill="{colour}" rx="3"/>')
            value = f"{r[key]:.1f}" if key == "rps" else f"{r[key]:.3f}"
            parts.append(f'<text x="{x0 + w + 6:.1f}" y="{y + 15}">{value}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


if __name__ == "__main__":
    main()
