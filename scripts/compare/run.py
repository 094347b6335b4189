#!/usr/bin/env python3
"""Side-by-side benchmark of Gatehouse and two peer authentication services.

Builds Gatehouse (cargo build --release) and the peers from the package registries —
fastapi-users from PyPI (a venv in target/compare/venv-fastapi-users, versions pinned in
fastapi-users-requirements.txt) and better-auth from npm (`npm ci` of better-auth/package-lock.json
into target/compare/better-auth) — then, round after round, starts each system on this machine,
signs one user up and in, and drives it with wrk:

    gatehouse-sqlite     the release binary on a new SQLite file
    gatehouse-postgres   the release binary on a new database of the local PostgreSQL
    fastapi-users        fastapi_users_app.py (SQLAlchemy on SQLite), uvicorn --workers 2
    better-auth          better-auth/server.mjs (the local PostgreSQL), Node, 2 cluster workers

Per system and round: GET /users/me (better-auth: GET /api/auth/get-session with its session
cookie) with 2 threads and 32 connections — req/s, p50, p99, errors, the server's CPU ms per
request summed over its whole process tree (/proc), and for those on PostgreSQL the database
server's CPU ms per request (its background processes and the backends of that database);
then logins with 8 connections — req/s and errors; the tree's peak RSS and its RSS a second
after the load. Rounds rotate the order so that no system always goes first.

Writes target/compare/results.json (every round), results.md (median and min–max per system,
the date, the machine and the command) and results.svg (CPU per /users/me request, req/s).

    python3 scripts/compare/run.py [--rounds 2] [--duration 10] [--skip-build]
    python3 scripts/compare/run.py --only better-auth --rounds 1 --duration 5 --skip-build

Needs wrk, psql, python3-venv, Node 20 with npm, and PostgreSQL on 127.0.0.1:5432 with trust
authentication for the user postgres (override with COMPARE_POSTGRES_URL); its databases
compare_gatehouse and compare_betterauth are dropped and recreated at every start.
"""

import argparse
import datetime
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import load  # noqa: E402  (scripts/load.py: Server, run_wrk, RssSampler, login helpers)

OUT = load.ROOT / "target" / "compare"
VENV = OUT / "venv-fastapi-users"
BETTER_AUTH = OUT / "better-auth"
POSTGRES = os.environ.get("COMPARE_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
ME_CONNECTIONS, LOGIN_CONNECTIONS = 32, 8


# ---- /proc: process trees and the PostgreSQL server -------------------------------------------

def stat(pid):
    """Fields of /proc/<pid>/stat after the command name: [0] is field 3 (state)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tree(pid):
    """The process and all its descendants (from /proc/<pid>/task/*/children)."""
    pids, i = [pid], 0
    while i < len(pids):
        for children in Path(f"/proc/{pids[i]}/task").glob("*/children"):
            try:
                pids += [int(child) for child in children.read_text().split()]
            except OSError:
                pass
        i += 1
    return pids


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            fields = stat(pid)
        except OSError:
            continue  # exited meanwhile
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            total += int(stat(pid)[21]) * PAGE_KIB
        except OSError:
            pass
    return total


BACKEND = re.compile(r"postgres: (?:\S+: )?\S+ (\S+) (?:\[local\]|\S+\(\d+\))")


def postgres_pids(database):
    """PostgreSQL's processes but the backends of other databases (other work on this server)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            backend = BACKEND.match((entry / "cmdline").read_bytes().decode(errors="replace"))
        except OSError:
            continue
        if not backend or backend.group(1) == database:
            pids.append(int(entry.name))
    return pids


def recreate_database(name):
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", f"{POSTGRES}/postgres",
                    "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
                    "-c", f"CREATE DATABASE {name}"],
                   check=True, capture_output=True, text=True)


# ---- the systems --------------------------------------------------------------------------------

class System:
    """One service: start/stop, sign one user in, and what wrk sends to it."""

    me_path, login_path = "/users/me", "/auth/jwt/login"
    login_script, database = "login.lua", None
    request = load.Server.request  # uses only self.base

    def login_env(self):
        return load.login_env()

    def rss_kib(self):  # for load.RssSampler
        return rss_kib(tree(self.pid))

    def sign_in(self):
        """Registers the user and logs in the fastapi-users way; returns wrk's headers."""
        status, _, body = self.request("POST", "/auth/register",
                                       json.dumps({"email": load.EMAIL, "password": load.PASSWORD}),
                                       {"Content-Type": "application/json"})
        assert status == 201, (status, body)
        return [f"Authorization: Bearer {load.login(self)['access_token']}"]


class Gatehouse(System):
    hashing = "argon2id m=64 MiB t=3 p=4 (load.PEER_HASHING)"

    def __init__(self, name, database=None):
        self.name, self.database = name, database

    def start(self):
        self.dir = Path(tempfile.mkdtemp(prefix="compare-gatehouse-"))
        self.server = load.Server(self.dir, load.free_port())
        self.server.env["RUST_LOG"] = "error"  # not the development mode's warnings
        if self.database:
            recreate_database(self.database)
            self.server.env["DATABASE_URL"] = f"{POSTGRES}/{self.database}"
        self.server.start()
        self.base, self.pid = self.server.base, self.server.process.pid

    def stop(self):
        self.server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Peer(System):
    """A peer started as its own process group, ready once `ready_path` answers 200."""

    ready_path = "/"

    def command(self, port):
        """(argv, working directory, environment variables) of the server on `port`."""
        raise NotImplementedError

    def start(self):
        self.dir = Path(tempfile.mkdtemp(prefix=f"compare-{self.name}-"))
        port = load.free_port()
        self.base = f"http://127.0.0.1:{port}"
        argv, cwd, env = self.command(port)
        self.log = open(self.dir / "server.log", "wb")
        self.process = subprocess.Popen(argv, cwd=cwd, env=dict(os.environ, **env),
                                        stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self.pid = self.process.pid
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.base + self.ready_path, timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        log = (self.dir / "server.log").read_text(errors="replace")[-3000:]
        self.stop()
        sys.exit(f"{self.name} did not start:\n{log}")

    def stop(self):
        for sig in (signal.SIGTERM, signal.SIGKILL):  # its own group: the workers too
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class FastapiUsers(Peer):
    name, ready_path = "fastapi-users", "/docs"
    hashing = "pwdlib argon2id m=64 MiB t=3 p=4 (its default)"

    def command(self, port):
        env = {"DATABASE_URL": f"sqlite+aiosqlite:///{self.dir}/users.db",
               "SECRET": secrets.token_hex(32)}
        python = str(VENV / "bin" / "python")
        subprocess.run([python, HERE / "fastapi_users_app.py"], cwd=self.dir,
                       env=dict(os.environ, **env), check=True)  # the tables
        return ([python, "-m", "uvicorn", "fastapi_users_app:app", "--app-dir", str(HERE),
                 "--workers", "2", "--host", "127.0.0.1", "--port", str(port),
                 "--log-level", "warning", "--no-access-log"], self.dir, env)


class BetterAuth(Peer):
    name, database, ready_path = "better-auth", "compare_betterauth", "/api/auth/ok"
    me_path, login_path, login_script = "/api/auth/get-session", "/api/auth/sign-in/email", \
        HERE / "post_json.lua"
    hashing = "scrypt N=16384 r=16 p=1 (its default)"
    credentials = {"email": load.EMAIL, "password": load.PASSWORD}

    def command(self, port):
        recreate_database(self.database)
        return (["node", "server.mjs"], BETTER_AUTH,
                {"DATABASE_URL": f"{POSTGRES}/{self.database}", "PORT": str(port),
                 "WORKERS": "2", "BETTER_AUTH_SECRET": secrets.token_hex(32),
                 "NODE_ENV": "production"})

    def login_env(self):
        return {"LOAD_JSON": json.dumps(self.credentials)}

    def sign_in(self):
        json_type = {"Content-Type": "application/json"}
        status, _, body = self.request("POST", "/api/auth/sign-up/email",
                                       json.dumps({**self.credentials, "name": "load"}), json_type)
        assert status == 200, (status, body)
        status, headers, body = self.request("POST", self.login_path,
                                             json.dumps(self.credentials), json_type)
        assert status == 200, (status, body)
        cookie = next(c.split(";", 1)[0] for c in headers.get_all("Set-Cookie")
                      if c.startswith("better-auth.session_token="))
        return [f"Cookie: {cookie}"]


SYSTEMS = [Gatehouse("gatehouse-sqlite"), Gatehouse("gatehouse-postgres", "compare_gatehouse"),
           FastapiUsers(), BetterAuth()]


# ---- building -----------------------------------------------------------------------------------

def build(skip_gatehouse, names):
    if not skip_gatehouse and {"gatehouse-sqlite", "gatehouse-postgres"} & names:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=load.ROOT, check=True)
    if "fastapi-users" in names:
        requirements = HERE / "fastapi-users-requirements.txt"
        installed = VENV / "requirements.txt"
        if not installed.exists() or installed.read_text() != requirements.read_text():
            subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
            subprocess.run([VENV / "bin" / "pip", "install", "-q", "-r", requirements], check=True)
            shutil.copy(requirements, installed)
    if "better-auth" in names:
        BETTER_AUTH.mkdir(parents=True, exist_ok=True)
        lock = HERE / "better-auth" / "package-lock.json"
        if not (BETTER_AUTH / "node_modules").exists() or \
                (BETTER_AUTH / "package-lock.json").read_bytes() != lock.read_bytes():
            shutil.copy(HERE / "better-auth" / "package.json", BETTER_AUTH)
            shutil.copy(lock, BETTER_AUTH)
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=BETTER_AUTH, check=True)
        shutil.copy(HERE / "better-auth" / "server.mjs", BETTER_AUTH)


def output(*argv):
    return subprocess.run(argv, capture_output=True, text=True).stdout.strip()


def versions(names):
    found = {"gatehouse": output("git", "-C", load.ROOT, "describe", "--always", "--dirty"),
             "postgresql": output("psql", f"{POSTGRES}/postgres", "-Atc", "SHOW server_version")}
    if "fastapi-users" in names:
        found.update(json.loads(output(
            VENV / "bin" / "python", "-c",
            "import importlib.metadata as m, json, sys; print(json.dumps({**{n: m.version(n) for n"
            " in ('fastapi-users', 'fastapi', 'uvicorn', 'SQLAlchemy')}, 'python': sys.version"
            ".split()[0]}))")))
    if "better-auth" in names:
        for package in ("better-auth", "pg"):
            manifest = BETTER_AUTH / "node_modules" / package / "package.json"
            found[package] = json.loads(manifest.read_text())["version"]
        found["node"] = output("node", "--version")
    return found


# ---- measuring ----------------------------------------------------------------------------------

def measure(system, duration):
    """Starts the system, loads it, stops it; returns its figures."""
    system.start()
    try:
        headers = system.sign_in()
        status, _, body = system.request("GET", system.me_path, headers=dict(
            h.split(": ", 1) for h in headers))
        assert status == 200 and load.EMAIL.encode() in body, (status, body)
        sampler = load.RssSampler(system)
        sampler.start()
        load.run_wrk(system, system.me_path, ME_CONNECTIONS, 2, headers=headers)  # warm-up

        def processes():
            return (set(tree(system.pid)),
                    set(postgres_pids(system.database) if system.database else []))

        def loaded(path, connections, **wrk):
            before = processes()
            ticks = [cpu_ticks(pids) for pids in before]
            figures = load.run_wrk(system, path, connections, duration, **wrk)
            # Processes started meanwhile (a pool's new connection) count from zero.
            ticks = [cpu_ticks(old | new) - tick
                     for old, new, tick in zip(before, processes(), ticks)]
            per_request = [t * 1000 / load.CLK_TCK / max(figures["requests"], 1) for t in ticks]
            figures["cpu_ms_per_request"] = per_request[0]
            if system.database:
                figures["postgres_cpu_ms_per_request"] = per_request[1]
            return figures

        me = loaded(system.me_path, ME_CONNECTIONS, headers=headers)
        login = loaded(system.login_path, LOGIN_CONNECTIONS, script=system.login_script,
                       env=system.login_env())
        peak = sampler.stop()
        time.sleep(1)
        after = system.rss_kib()
    finally:
        system.stop()
    return {"me": me, "login": login, "peak_rss_mib": peak / 1024, "after_rss_mib": after / 1024}


METRICS = [  # (heading, how to read it from a round's figures, format)
    ("/users/me req/s", lambda f: f["me"]["rps"], "{:.0f}"),
    ("p50 ms", lambda f: f["me"]["p50_ms"], "{:.1f}"),
    ("p99 ms", lambda f: f["me"]["p99_ms"], "{:.1f}"),
    ("errors", lambda f: f["me"]["errors"], "{:.0f}"),
    ("server CPU ms/req", lambda f: f["me"]["cpu_ms_per_request"], "{:.3f}"),
    ("PostgreSQL CPU ms/req", lambda f: f["me"].get("postgres_cpu_ms_per_request"), "{:.3f}"),
    ("login req/s", lambda f: f["login"]["rps"], "{:.1f}"),
    ("login errors", lambda f: f["login"]["errors"], "{:.0f}"),
    ("peak RSS MiB", lambda f: f["peak_rss_mib"], "{:.0f}"),
    ("RSS after MiB", lambda f: f["after_rss_mib"], "{:.0f}"),
]


def summarise(runs, names):
    """Per system and metric: median, min and max over the rounds."""
    summary = {}
    for name in names:
        rounds = [run["figures"] for run in runs if run["system"] == name]
        summary[name] = {}
        for heading, read, _ in METRICS:
            values = [read(f) for f in rounds if read(f) is not None]
            if values:
                summary[name][heading] = {"median": statistics.median(values),
                                          "min": min(values), "max": max(values)}
    return summary


def cell(figure, form):
    if figure is None:
        return "–"
    text = form.format(figure["median"])
    if figure["min"] != figure["max"]:
        text += f" ({form.format(figure['min'])}–{form.format(figure['max'])})"
    return text


def machine():
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    return {"nproc": os.cpu_count(), "cpu": model, "load_average_at_end": os.getloadavg()[0]}


def write(result):
    summary, systems = result["summary"], {s.name: s for s in SYSTEMS}
    rows = ["| system | " + " | ".join(h for h, _, _ in METRICS) + " |",
            "|---|" + "---:|" * len(METRICS)]
    for name, figures in summary.items():
        rows.append(f"| {name} | " + " | ".join(cell(figures.get(h), form)
                                                 for h, _, form in METRICS) + " |")
    m, v = result["machine"], result["versions"]
    notes = [f"- {name}: {systems[name].hashing}" for name in summary]
    if {"gatehouse-postgres", "better-auth"} <= summary.keys():
        ratio = (summary["gatehouse-postgres"]["/users/me req/s"]["median"]
                 / summary["better-auth"]["/users/me req/s"]["median"])
        notes.append(f"- On the same PostgreSQL server, Gatehouse serves /users/me at {ratio:.1f}× "
                     "better-auth's get-session throughput.")
    text = "\n".join([
        "# Gatehouse and its peers", "",
        f"{result['date']}; {m['nproc']} × {m['cpu']} (nproc {m['nproc']}), load average "
        f"{m['load_average_at_end']:.2f} at the end; wrk on the same machine. "
        f"{result['rounds']} round(s) of {result['duration_s']} s per load, interleaved; "
        "median (min–max) over the rounds.", "",
        f"Command: `{result['command']}`", "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".", "",
        *rows, "",
        "/users/me: GET /users/me with a bearer token (better-auth: GET /api/auth/get-session "
        f"with its session cookie), {ME_CONNECTIONS} connections; CPU summed over the server's "
        "process tree (and, apart, over PostgreSQL's processes serving its database). "
        f"Logins: {LOGIN_CONNECTIONS} connections, each system hashing as follows:", "",
        *notes, ""])
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (OUT / "results.md").write_text(text)
    (OUT / "results.svg").write_text(chart(summary))
    print(f"\nwrote {OUT / 'results.md'}, results.json and results.svg\n\n{text}")


def chart(summary):
    """Three panels of horizontal bars on linear scales: CPU ms per /users/me request (the
    server's, then PostgreSQL's stacked on it), /users/me req/s and login req/s."""
    bar_h, gap, label_w, panel_w = 24, 12, 170, 280
    panels = [("CPU ms per /users/me request", ["server CPU ms/req", "PostgreSQL CPU ms/req"],
               ["#a4262c", "#e8a0a4"], "{:.3f}"),
              ("/users/me req/s", ["/users/me req/s"], ["#1f4e79"], "{:.0f}"),
              ("login req/s", ["login req/s"], ["#4d7c0f"], "{:.1f}")]
    width, height = label_w + len(panels) * (panel_w + 50), 70 + len(summary) * (bar_h + gap)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'font-family="system-ui, sans-serif" font-size="13">',
             '<rect width="100%" height="100%" fill="#fff"/>']
    for i, name in enumerate(summary):
        parts.append(f'<text x="{label_w - 8}" y="{55 + i * (bar_h + gap)}" text-anchor="end">'
                     f'{load.escape(name)}</text>')
    for p, (title, keys, colours, form) in enumerate(panels):
        x0 = label_w + p * (panel_w + 50)
        parts.append(f'<text x="{x0}" y="24" font-weight="bold">{title}</text>')
        totals = [sum(summary[n].get(k, {"median": 0})["median"] for k in keys) for n in summary]
        scale = (panel_w - 100) / max(max(totals), 1e-9)
        for i, name in enumerate(summary):
            x, y, labels = x0, 38 + i * (bar_h + gap), []
            for key, colour in zip(keys, colours):
                if key not in summary[name]:
                    continue
                value = summary[name][key]["median"]
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{value * scale:.1f}" '
                             f'height="{bar_h}" fill="{colour}"/>')
                x += value * scale
                labels.append(form.format(value))
            parts.append(f'<text x="{x + 6:.1f}" y="{y + 17}">{" + ".join(labels)}</text>')
    parts.append(f'<text x="{label_w}" y="{height - 8}" fill="#555">medians; light red: '
                 'PostgreSQL server CPU for the systems on PostgreSQL</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="rounds over all systems (2)")
    parser.add_argument("--duration", type=int, default=10,
                        help="seconds of each load, /users/me and login (10)")
    parser.add_argument("--skip-build", action="store_true",
                        help="use the existing target/release/gatehouse (peers are still "
                             "installed when missing)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        choices=[s.name for s in SYSTEMS],
                        help="run only this system (repeatable): " +
                             ", ".join(s.name for s in SYSTEMS))
    args = parser.parse_args()
    for tool in ("wrk", "psql", "node", "npm"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (wrk, psql: apt-get install wrk postgresql-client)")
    systems = [s for s in SYSTEMS if not args.only or s.name in args.only]
    names = {s.name for s in systems}
    build(args.skip_build, names)

    runs = []
    for number in range(args.rounds):
        order = systems[number % len(systems):] + systems[:number % len(systems)]
        print(f"round {number + 1}: {', '.join(s.name for s in order)}", flush=True)
        for system in order:
            figures = measure(system, args.duration)
            runs.append({"round": number + 1, "system": system.name, "figures": figures})
            me, login = figures["me"], figures["login"]
            database = (f" + PostgreSQL {me['postgres_cpu_ms_per_request']:.3f}"
                        if system.database else "")
            print(f"  {system.name:<19} me {me['rps']:7.0f} req/s p99 {me['p99_ms']:6.1f} ms "
                  f"errors {me['errors']} cpu {me['cpu_ms_per_request']:.3f}{database} ms/req | "
                  f"login {login['rps']:5.1f} req/s errors {login['errors']} | "
                  f"rss {figures['peak_rss_mib']:.0f} MiB", flush=True)

    write({"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "command": shlex.join(["python3", "scripts/compare/run.py", *sys.argv[1:]]),
           "machine": machine(), "versions": versions(names), "rounds": args.rounds,
           "duration_s": args.duration, "summary": summarise(runs, [s.name for s in systems]),
           "runs": runs})


if __name__ == "__main__":
    main()
