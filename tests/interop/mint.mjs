// Stands in for a frontend: drives the real better-auth package against the
// test PostgreSQL so the Rust suite can check it accepts better-auth's own
// cookies and refuses them once better-auth has signed the session out.
//
//   node mint.mjs signup <email>     -> {"userId", "cookie", "setCookie"} on stdout
//   node mint.mjs signout <cookie>   -> {"status"} on stdout
//
// Environment: DATABASE_URL (postgres://…), BETTER_AUTH_SECRET, and
// BETTER_AUTH_ID=uuid for better-auth's `generateId: "uuid"` (uuid id columns).
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import pg from "pg";

const [command, arg] = process.argv.slice(2);
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
const auth = betterAuth({
  database: pool,
  secret: process.env.BETTER_AUTH_SECRET,
  baseURL: "http://localhost:3000",
  emailAndPassword: { enabled: true },
  telemetry: { enabled: false },
  ...(process.env.BETTER_AUTH_ID === "uuid" ? { advanced: { database: { generateId: "uuid" } } } : {}),
});

async function signup(email) {
  const { runMigrations } = await getMigrations(auth.options);
  await runMigrations();
  const response = await auth.api.signUpEmail({
    body: { email, password: "correct-horse-battery-staple", name: "Interop User" },
    asResponse: true,
  });
  if (!response.ok) throw new Error(`sign-up failed: ${response.status} ${await response.text()}`);
  const body = await response.json();
  const setCookie = response.headers.getSetCookie();
  // What a browser would send back: the name=value part of the session cookie, untouched.
  const cookie = setCookie.map((c) => c.split(";")[0]).find((c) => c.includes(".session_token="));
  if (!cookie) throw new Error(`no session cookie in ${JSON.stringify(setCookie)}`);
  return { userId: body.user.id, cookie, setCookie };
}

async function signout(cookie) {
  const response = await auth.api.signOut({ headers: new Headers({ cookie }), asResponse: true });
  return { status: response.status };
}

try {
  const result = command === "signup" ? await signup(arg) : command === "signout" ? await signout(arg) : null;
  if (!result) throw new Error(`unknown command ${command}`);
  process.stdout.write(JSON.stringify(result) + "\n");
} finally {
  await pool.end();
}
