#!/usr/bin/env python3
"""Gatehouse at scale: the admin lists and the hot paths, at a small and a large data set.

For each backend (a new SQLite file; a new database of the local PostgreSQL) and each size,
fills a new database with `gatehouse seed` (N accounts and 10 × N audit events; its timings
are recorded), adds a superuser, starts the release binary and measures, one request at a
time over one kept-alive connection, the median and p90 latency of:

    /admin/users                  first page, a search (part of one address), a broad search
                                  (one domain of fifty), a deep page (after the middle
                                  account), the last-sign-in sort
    /admin/audit                  first page, filtered by event, by an account's id, by part of
                                  an address, and a deep page (after the middle event)
    hot paths                     GET /users/me, login, register, refresh

and, with wrk, the server's CPU per /users/me request (on PostgreSQL also with two instances
of one database served at once). Writes target/bench/scale.md and
scale.json.

    python3 scripts/scale.py                                  # 1,000, 10,000 and 1,000,000 accounts
    python3 scripts/scale.py --sizes 10000 --backends sqlite --skip-build

Needs wrk, and for PostgreSQL a server on 127.0.0.1:5432 with trust authentication for the
user postgres (override with SCALE_POSTGRES_URL); its database scale_gatehouse is dropped and
recreated for every size. A million accounts take about a gigabyte of SQLite per ten million
events (see the README's "Performance").
"""

import argparse
import datetime
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402  (the load benchmark's server and wrk helpers)

POSTGRES = os.environ.get("SCALE_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DATABASE = "scale_gatehouse"
ADMIN = "admin@example.com"
PASSWORD = "correct horse battery staple"
REPEAT = 25


def uuid_of(n):
    """The id `gatehouse seed` gives account (and event) number n."""
    return f"{n:08x}-0000-4000-8000-{n:012x}"


def address_of(n):
    return f"user{n}@example{n % 50}.com"


def psql(sql, url=POSTGRES):
    subprocess.run(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True,
                   capture_output=True)


class Client:
    """One kept-alive connection, timing each request."""

    def __init__(self, port, cookie=None, bearer=None):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {}
        if cookie:
            self.headers["Cookie"] = cookie
        if bearer:
            self.headers["Authorization"] = f"Bearer {bearer}"

    def request(self, method, path, body=None, headers=None):
        started = time.perf_counter()
        try:
            self.connection.request(method, path, body=body,
                                    headers={**self.headers, **(headers or {})})
            response = self.connection.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The server closed the connection while it idled: open a new one.
            self.connection.close()
            self.connection.connect()
            started = time.perf_counter()
            self.connection.request(method, path, body=body,
                                    headers={**self.headers, **(headers or {})})
            response = self.connection.getresponse()
        payload = response.read()
        return response.status, payload, (time.perf_counter() - started) * 1000, response

    def timed(self, method, path, body_of=None, headers=None, expect=(200,)):
        """Median and p90 milliseconds of REPEAT requests (after one to warm up)."""
        times = []
        for i in range(REPEAT + 1):
            body = body_of(i) if body_of else None
            status, payload, ms, _ = self.request(method, path, body, headers)
            if status not in expect:
                sys.exit(f"{method} {path}: {status} {payload[:300]!r}")
            if i:
                times.append(ms)
        times.sort()
        return {"median_ms": statistics.median(times), "p90_ms": times[int(len(times) * 0.9) - 1]}


def form(**fields):
    return urllib.parse.urlencode(fields)


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def seed(server, users):
    started = time.perf_counter()
    output = subprocess.run(
        [load.BINARY, "seed", "--users", str(users), "--events", str(users * 10), "--password-stdin"],
        input=PASSWORD + "\n", env=server.env, cwd=server.data_dir, check=True,
        capture_output=True, text=True).stdout
    took = time.perf_counter() - started
    match = re.search(r"accounts in ([\d.]+) s, \d+ audit events in ([\d.]+) s", output)
    subprocess.run([load.BINARY, "create-superuser", "--email", ADMIN, "--password-stdin"],
                   input=PASSWORD + "\n", env=server.env, cwd=server.data_dir, check=True,
                   capture_output=True, text=True)
    return {"seconds": took, "accounts_s": float(match.group(1)), "events_s": float(match.group(2))}


def measure(server, users):
    events = users * 10
    anonymous = Client(server.port)
    status, payload, _, response = anonymous.request(
        "POST", "/auth/cookie/login", form(username=ADMIN, password=PASSWORD), FORM)
    assert status in (200, 204), payload
    access = re.search(r"gatehouse_access=([^;]+)", response.getheader("Set-Cookie")).group(1)
    admin = Client(server.port, cookie=f"gatehouse_access={access}")
    middle = users // 2
    figures = {
        "users: first page": admin.timed("GET", "/admin/users"),
        "users: search": admin.timed("GET", "/admin/users?q=" + urllib.parse.quote(f"user{middle + 7}@")),
        "users: broad search": admin.timed("GET", "/admin/users?q=example7.com"),
        "users: deep page": admin.timed("GET", f"/admin/users?after={uuid_of(middle)}"),
        "users: last sign-in": admin.timed("GET", "/admin/users?sort=last_sign_in"),
        "audit: first page": admin.timed("GET", "/admin/audit"),
        "audit: by event": admin.timed("GET", "/admin/audit?event=password_changed"),
        "audit: by account": admin.timed("GET", f"/admin/audit?q={uuid_of(users // 3)}"),
        "audit: by address": admin.timed("GET", "/admin/audit?q=" + urllib.parse.quote(address_of(users // 3))),
        "audit: deep page": admin.timed("GET", f"/admin/audit?after={uuid_of(events // 2)}"),
    }
    user = address_of(1)
    tokens = json.loads(anonymous.request(
        "POST", "/auth/jwt/login", form(username=user, password=PASSWORD), FORM)[1])
    me = Client(server.port, bearer=tokens["access_token"])
    figures["hot: /users/me"] = me.timed("GET", "/users/me")
    figures["hot: login"] = anonymous.timed(
        "POST", "/auth/jwt/login", lambda _: form(username=user, password=PASSWORD), FORM)
    stamp = time.time_ns()
    figures["hot: register"] = anonymous.timed(
        "POST", "/auth/register",
        lambda i: json.dumps({"email": f"new{stamp}-{i}@example.org", "password": PASSWORD}),
        {"Content-Type": "application/json"}, expect=(201,))
    refresh = {"token": tokens["refresh_token"]}

    def rotate(_):
        return json.dumps({"refresh_token": refresh["token"]})

    times = []
    for i in range(REPEAT + 1):
        status, payload, ms, _ = anonymous.request(
            "POST", "/auth/jwt/refresh", rotate(i), {"Content-Type": "application/json"})
        assert status == 200, payload
        refresh["token"] = json.loads(payload)["refresh_token"]
        if i:
            times.append(ms)
    times.sort()
    figures["hot: refresh"] = {"median_ms": statistics.median(times), "p90_ms": times[int(len(times) * 0.9) - 1]}
    wrk = load.measured(server, "/users/me (wrk)", lambda: load.run_wrk(
        server, "/users/me", 32, 10, headers=[f"Authorization: Bearer {tokens['access_token']}"]))
    figures["hot: /users/me under load"] = {
        "rps": wrk["rps"], "cpu_ms_per_request": wrk["cpu_ms_per_request"], "errors": wrk["errors"]}
    if server.env["DATABASE_URL"].startswith("postgres"):
        figures["hot: /users/me, two instances"] = two_instances(server, tokens["access_token"])
    return figures


def two_instances(server, access):
    """/users/me on two instances of one PostgreSQL database at once, 16 connections each: the
    requests per second of both together, and their CPU per request."""
    second = load.Server(server.data_dir, load.free_port())
    second.env = {**server.env, "BIND_ADDR": f"127.0.0.1:{second.port}"}
    second.start()
    try:
        results = {}
        before = server.cpu_ticks() + second.cpu_ticks()
        threads = [threading.Thread(target=lambda s=s: results.update({s.port: load.run_wrk(
            s, "/users/me", 16, 10, threads=1, headers=[f"Authorization: Bearer {access}"])}))
            for s in (server, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        cpu_ms = (server.cpu_ticks() + second.cpu_ticks() - before) * 1000 / load.CLK_TCK
    finally:
        second.stop()
    requests = sum(r["requests"] for r in results.values())
    return {"rps": sum(r["rps"] for r in results.values()),
            "cpu_ms_per_request": cpu_ms / max(requests, 1),
            "errors": sum(r["errors"] for r in results.values())}


def run(backend, users):
    data_dir = Path(tempfile.mkdtemp(prefix=f"gatehouse-scale-{backend}-"))
    server = load.Server(data_dir, load.free_port())
    server.env["RUST_LOG"] = "error"
    if backend == "postgres":
        psql(f"DROP DATABASE IF EXISTS {DATABASE}")
        psql(f"CREATE DATABASE {DATABASE}")
        server.env["DATABASE_URL"] = POSTGRES.rsplit("/", 1)[0] + "/" + DATABASE
    else:
        server.env["DATABASE_CREATE"] = "true"
    print(f"{backend}, {users:,} accounts: seeding", flush=True)
    seeded = seed(server, users)
    print(f"  seeded in {seeded['seconds']:.1f} s", flush=True)
    server.start()
    try:
        figures = measure(server, users)
    finally:
        server.stop()
    size = sum(f.stat().st_size for f in data_dir.glob("gatehouse.db*")) if backend == "sqlite" else None
    subprocess.run(["rm", "-rf", str(data_dir)], check=True)
    for name, value in figures.items():
        print(f"  {name:<28} {value}", flush=True)
    return {"backend": backend, "users": users, "events": users * 10, "seed": seeded,
            "sqlite_bytes": size, "figures": figures}


def write(results, command):
    out = load.OUT
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.json").write_text(json.dumps(results, indent=2))
    sizes = sorted({r["users"] for r in results})
    lines = [f"# Gatehouse at scale ({datetime.date.today()})", "",
             f"{load.machine()}; `{command}`.", "",
             "Median (p90) ms of one request at a time; the last row is wrk's CPU per request.", ""]
    for backend in sorted({r["backend"] for r in results}):
        rows = {r["users"]: r for r in results if r["backend"] == backend}
        lines += [f"## {backend}", "",
                  "| | " + " | ".join(f"{n:,} accounts" for n in sizes if n in rows) + " |",
                  "|---|" + "---:|" * len(rows)]
        lines.append("| seed (accounts + 10× events) | " + " | ".join(
            f"{rows[n]['seed']['accounts_s']:.1f} s + {rows[n]['seed']['events_s']:.1f} s"
            for n in sizes if n in rows) + " |")
        for name in rows[next(iter(rows))]["figures"]:
            cells = []
            for n in sizes:
                if n not in rows:
                    continue
                value = rows[n]["figures"].get(name, {"median_ms": float("nan"), "p90_ms": float("nan")})
                if "median_ms" in value:
                    cells.append(f"{value['median_ms']:.2f} ({value['p90_ms']:.2f})")
                else:
                    cells.append(f"{value['cpu_ms_per_request']:.3f} ms CPU, {value['rps']:,.0f} req/s")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        if backend == "sqlite":
            lines += ["", "The database file: " + ", ".join(
                f"{rows[n]['sqlite_bytes'] / 2**20:,.0f} MiB" for n in sizes if n in rows) + "."]
        lines.append("")
    (out / "scale.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,1000000",
                        help="numbers of accounts, comma-separated (events are ten times as many)")
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--skip-build", action="store_true", help="use the existing binary")
    args = parser.parse_args()
    if not args.skip_build:
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=load.ROOT, check=True)
    results = []
    for backend in args.backends.split(","):
        for users in map(int, args.sizes.split(",")):
            results.append(run(backend, users))
            write(results, " ".join(["python3", "scripts/scale.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
