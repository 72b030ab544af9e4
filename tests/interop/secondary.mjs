// better-auth with `secondaryStorage` (@better-auth/redis-storage), for the
// Rust secondary-storage interop tests: sessions live only in Redis
// (`storeSessionInDatabase` is false, better-auth's default), API keys are
// kept with the api-key plugin's `storage: "secondary-storage"`.
//
//   node secondary.mjs setup
//     -> {"organizationId", "users": {name: {"id", "cookie", "bearer"}},
//         "keys": {name: {"id", "key"}}}
//        Runs better-auth's migrations, then drops its `session` table (unused
//        in this mode: the Rust side must serve without it).
//        users: alice, revoker (signed in twice: "cookie" and "second"),
//        banned, admin (role admin), member (created an organization, so it
//        is the session's active one)
//        keys (alice's): plain, limited (remaining 5), readOnly, disabled
//   node secondary.mjs signout <cookie>
//   node secondary.mjs revoke-sessions <cookie>
//   node secondary.mjs ban <adminCookie> <userId>
//   node secondary.mjs set-active <cookie> <organizationId|none>
//   node secondary.mjs disable-key <keyId> <userId>
//     -> {"status"}
//   node secondary.mjs signup-database-only <email>
//     -> {"cookie"}: a better-auth WITHOUT secondary storage migrates (on a
//        database of its own) and signs a user up, so the session exists only
//        as a `session` table row.
//
// Environment: DATABASE_URL (postgres://…), BETTER_AUTH_SECRET, REDIS_URL,
// SECONDARY_PREFIX (redis-storage's keyPrefix).
import { betterAuth } from "better-auth";
import { admin, bearer, organization } from "better-auth/plugins";
import { apiKey } from "@better-auth/api-key";
import { redisStorage } from "@better-auth/redis-storage";
import { getMigrations } from "better-auth/db/migration";
import { Redis } from "ioredis";
import pg from "pg";

const [command, ...args] = process.argv.slice(2);
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
const redis = new Redis(process.env.REDIS_URL);
const base = {
  database: pool,
  secret: process.env.BETTER_AUTH_SECRET,
  baseURL: "http://localhost:3000",
  emailAndPassword: { enabled: true },
  telemetry: { enabled: false },
};
const auth = betterAuth({
  ...base,
  secondaryStorage: redisStorage({ client: redis, keyPrefix: process.env.SECONDARY_PREFIX }),
  plugins: [admin(), bearer(), organization(), apiKey({ storage: "secondary-storage" })],
});
const password = "correct-horse-battery-staple";

function credentials(response) {
  const cookie = response.headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .find((c) => c.includes(".session_token="));
  // The bearer plugin hands the signed token out in `set-auth-token`.
  return { cookie, bearer: response.headers.get("set-auth-token") };
}

async function signup(name, on = auth) {
  const response = await on.api.signUpEmail({
    body: { email: `${name}@example.com`, password, name },
    asResponse: true,
  });
  if (!response.ok) throw new Error(`sign-up of ${name} failed: ${response.status} ${await response.text()}`);
  return { id: (await response.json()).user.id, ...credentials(response) };
}

async function signin(name) {
  const response = await auth.api.signInEmail({ body: { email: `${name}@example.com`, password }, asResponse: true });
  if (!response.ok) throw new Error(`sign-in of ${name} failed: ${response.status}`);
  return credentials(response);
}

const headers = (cookie) => new Headers({ cookie });

async function setup() {
  const { runMigrations } = await getMigrations(auth.options);
  await runMigrations();
  // better-auth never touches it in this mode; the service must not need it.
  await pool.query(`DROP TABLE IF EXISTS "session" CASCADE`);
  const users = {};
  for (const name of ["alice", "revoker", "banned", "admin", "member"]) users[name] = await signup(name);
  users.revoker.second = (await signin("revoker")).cookie;
  // The admin plugin reads the role from the session's user: sign in again after granting it.
  await pool.query(`UPDATE "user" SET role = 'admin' WHERE id = $1`, [users.admin.id]);
  Object.assign(users.admin, await signin("admin"));
  const created = await auth.api.createOrganization({
    body: { name: "Acme Secondary", slug: "acme-secondary" },
    headers: headers(users.member.cookie),
  });
  const userId = users.alice.id;
  const create = async (body) => {
    const made = await auth.api.createApiKey({ body: { userId, ...body } });
    return { id: made.id, key: made.key };
  };
  const keys = {
    plain: await create({ rateLimitEnabled: false }),
    limited: await create({ rateLimitEnabled: false, remaining: 5 }),
    readOnly: await create({ rateLimitEnabled: false, permissions: { items: ["read"] } }),
    disabled: await create({ rateLimitEnabled: false }),
  };
  await auth.api.updateApiKey({ body: { keyId: keys.disabled.id, userId, enabled: false } });
  return { organizationId: created.id, users, keys };
}

async function call(run) {
  try {
    const response = await run();
    return { status: response instanceof Response ? response.status : 200 };
  } catch (error) {
    return { status: error.statusCode ?? 500, error: String(error.message ?? error) };
  }
}

async function main() {
  switch (command) {
    case "setup":
      return setup();
    case "signout":
      return call(() => auth.api.signOut({ headers: headers(args[0]), asResponse: true }));
    case "revoke-sessions":
      return call(() => auth.api.revokeSessions({ headers: headers(args[0]), asResponse: true }));
    case "ban":
      return call(() => auth.api.banUser({ body: { userId: args[1] }, headers: headers(args[0]), asResponse: true }));
    case "set-active":
      return call(() =>
        auth.api.setActiveOrganization({
          body: { organizationId: args[1] === "none" ? null : args[1] },
          headers: headers(args[0]),
          asResponse: true,
        }),
      );
    case "disable-key":
      return call(() => auth.api.updateApiKey({ body: { keyId: args[0], userId: args[1], enabled: false } }));
    case "signup-database-only": {
      const databaseOnly = betterAuth(base);
      const { runMigrations } = await getMigrations(databaseOnly.options);
      await runMigrations();
      const { cookie } = await signup(args[0], databaseOnly);
      return { cookie };
    }
    default:
      throw new Error(`unknown command ${command}`);
  }
}

try {
  process.stdout.write(JSON.stringify(await main()) + "\n");
} finally {
  await pool.end();
  redis.disconnect();
}
