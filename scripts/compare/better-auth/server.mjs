// better-auth peer for scripts/compare/run.py: email and password on PostgreSQL (a `pg` Pool),
// its own Node handler on a plain http server, WORKERS processes (node:cluster, default 2).
// Everything else is better-auth's default (scrypt N=16384 r=16 p=1, sessions read from the
// database on every get-session), except rate limiting, which is off for the load test.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/compare_betterauth PORT=3000 \
//   BETTER_AUTH_SECRET=... node server.mjs
//
// The primary creates the tables (better-auth's own migrations) and then forks the workers.
import cluster from "node:cluster";
import http from "node:http";
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { toNodeHandler } from "better-auth/node";
import pg from "pg";

const port = Number(process.env.PORT ?? 3000);

function options(pool) {
  return {
    database: pool,
    baseURL: `http://127.0.0.1:${port}`,
    secret: process.env.BETTER_AUTH_SECRET,
    emailAndPassword: { enabled: true },
    // One client address sending thousands of logins is the load, not an attack.
    rateLimit: { enabled: false },
    telemetry: { enabled: false },
  };
}

if (cluster.isPrimary) {
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
  const { runMigrations } = await getMigrations(options(pool));
  await runMigrations();
  await pool.end();
  for (let i = 0; i < Number(process.env.WORKERS ?? 2); i++) cluster.fork();
  cluster.on("exit", (worker, code) => {
    console.error(`worker ${worker.process.pid} exited with ${code}`);
    process.exit(1);
  });
} else {
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
  const auth = betterAuth(options(pool));
  http.createServer(toNodeHandler(auth)).listen(port, "127.0.0.1");
}
