// The organization plugin of the real better-auth package, for the Rust
// interop test: better-auth itself creates the organization, adds members,
// switches a session's active organization and removes a member.
//
//   node organization.mjs setup              -> {"organizationId", "users": {name: {"id", "cookie"}}}
//   node organization.mjs remove <cookie> <organizationId> <email>  -> {"status"}
//
// Environment: DATABASE_URL (postgres://…), BETTER_AUTH_SECRET.
import { betterAuth } from "better-auth";
import { organization } from "better-auth/plugins";
import { getMigrations } from "better-auth/db/migration";
import pg from "pg";

const [command, ...args] = process.argv.slice(2);
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
const auth = betterAuth({
  database: pool,
  secret: process.env.BETTER_AUTH_SECRET,
  baseURL: "http://localhost:3000",
  emailAndPassword: { enabled: true },
  telemetry: { enabled: false },
  plugins: [organization()],
});

async function signup(name) {
  const response = await auth.api.signUpEmail({
    body: { email: `${name}@example.com`, password: "correct-horse-battery-staple", name },
    asResponse: true,
  });
  if (!response.ok) throw new Error(`sign-up of ${name} failed: ${response.status} ${await response.text()}`);
  const body = await response.json();
  const cookie = response.headers.getSetCookie().map((c) => c.split(";")[0]).find((c) => c.includes(".session_token="));
  return { id: body.user.id, cookie };
}

async function setup() {
  const { runMigrations } = await getMigrations(auth.options);
  await runMigrations();
  const users = {};
  for (const name of ["owner", "member", "admin", "leaver"]) users[name] = await signup(name);
  // The creator becomes the owner, and the organization their active one.
  const created = await auth.api.createOrganization({
    body: { name: "Acme Interop", slug: "acme-interop" },
    headers: new Headers({ cookie: users.owner.cookie }),
  });
  const organizationId = created.id;
  for (const [name, role] of [["member", "member"], ["admin", "admin"], ["leaver", "member"]]) {
    await auth.api.addMember({ body: { userId: users[name].id, role, organizationId } });
  }
  for (const name of ["member", "leaver"]) {
    await auth.api.setActiveOrganization({
      body: { organizationId },
      headers: new Headers({ cookie: users[name].cookie }),
    });
  }
  return { organizationId, users };
}

async function remove(cookie, organizationId, email) {
  const response = await auth.api.removeMember({
    body: { memberIdOrEmail: email, organizationId },
    headers: new Headers({ cookie }),
    asResponse: true,
  });
  return { status: response.status, body: await response.text() };
}

try {
  const result = command === "setup" ? await setup() : command === "remove" ? await remove(...args) : null;
  if (!result) throw new Error(`unknown command ${command}`);
  process.stdout.write(JSON.stringify(result) + "\n");
} finally {
  await pool.end();
}
