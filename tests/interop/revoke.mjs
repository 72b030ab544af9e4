// better-auth's own revocations, for the Rust instant-revocation interop test:
// the admin plugin's ban, revokeSessions, and the organization plugin's
// removeMember, updateMemberRole and deleteOrganization, each through
// better-auth's API exactly as a frontend's server would call it.
//
//   node revoke.mjs setup
//     -> {"organizationId", "users": {name: {"id", "cookie", "memberId"?}}}
//        users: admin (role admin, owns the organization), banned, revoker
//        (signed in twice), leaver and demoted (an admin of the organization)
//   node revoke.mjs ban <adminCookie> <userId>
//   node revoke.mjs revoke-sessions <cookie>
//   node revoke.mjs remove-member <ownerCookie> <organizationId> <email>
//   node revoke.mjs set-role <ownerCookie> <organizationId> <memberId> <role>
//   node revoke.mjs delete-organization <ownerCookie> <organizationId>
//     -> {"status"}
//
// Environment: DATABASE_URL (postgres://…), BETTER_AUTH_SECRET.
import { betterAuth } from "better-auth";
import { admin, organization } from "better-auth/plugins";
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
  plugins: [admin(), organization()],
});
const password = "correct-horse-battery-staple";

function sessionCookie(response) {
  return response.headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .find((c) => c.includes(".session_token="));
}

async function signup(name) {
  const response = await auth.api.signUpEmail({
    body: { email: `${name}@example.com`, password, name },
    asResponse: true,
  });
  if (!response.ok) throw new Error(`sign-up of ${name} failed: ${response.status} ${await response.text()}`);
  return { id: (await response.json()).user.id, cookie: sessionCookie(response) };
}

async function signin(name) {
  const response = await auth.api.signInEmail({ body: { email: `${name}@example.com`, password }, asResponse: true });
  if (!response.ok) throw new Error(`sign-in of ${name} failed: ${response.status}`);
  return sessionCookie(response);
}

const headers = (cookie) => new Headers({ cookie });

async function setup() {
  const { runMigrations } = await getMigrations(auth.options);
  await runMigrations();
  const users = {};
  for (const name of ["admin", "banned", "revoker", "leaver", "demoted"]) users[name] = await signup(name);
  users.revoker.second = await signin("revoker");
  await pool.query(`UPDATE "user" SET role = 'admin' WHERE id = $1`, [users.admin.id]);
  const created = await auth.api.createOrganization({
    body: { name: "Acme Revocations", slug: "acme-revocations" },
    headers: headers(users.admin.cookie),
  });
  const organizationId = created.id;
  for (const [name, role] of [["leaver", "member"], ["demoted", "admin"], ["banned", "member"]]) {
    const member = await auth.api.addMember({ body: { userId: users[name].id, role, organizationId } });
    users[name].memberId = member.id;
  }
  return { organizationId, users };
}

async function call(run) {
  try {
    const response = await run();
    return { status: response.status, body: await response.text() };
  } catch (error) {
    return { status: error.statusCode ?? 500, body: String(error.message ?? error) };
  }
}

const commands = {
  setup,
  ban: (cookie, userId) =>
    call(() => auth.api.banUser({ body: { userId, banReason: "interop" }, headers: headers(cookie), asResponse: true })),
  "revoke-sessions": (cookie) => call(() => auth.api.revokeSessions({ headers: headers(cookie), asResponse: true })),
  "remove-member": (cookie, organizationId, email) =>
    call(() =>
      auth.api.removeMember({ body: { memberIdOrEmail: email, organizationId }, headers: headers(cookie), asResponse: true }),
    ),
  "set-role": (cookie, organizationId, memberId, role) =>
    call(() =>
      auth.api.updateMemberRole({ body: { memberId, role, organizationId }, headers: headers(cookie), asResponse: true }),
    ),
  "delete-organization": (cookie, organizationId) =>
    call(() => auth.api.deleteOrganization({ body: { organizationId }, headers: headers(cookie), asResponse: true })),
};

try {
  if (!commands[command]) throw new Error(`unknown command ${command}`);
  process.stdout.write(JSON.stringify(await commands[command](...args)) + "\n");
} finally {
  await pool.end();
}
