// better-auth's jwt plugin and @better-auth/api-key, for the Rust interop
// tests: better-auth itself issues the JWTs and creates the API keys.
//
//   node credentials.mjs setup <alg>   -> {"userId", "jwt", "expiredJwt", "keys": {name: raw key}}
//
// <alg>: the jwt plugin's key algorithm (EdDSA, ES256, ES512, RS256, PS256).
// Environment: DATABASE_URL (postgres://…), BETTER_AUTH_SECRET.
import { betterAuth } from "better-auth";
import { jwt } from "better-auth/plugins";
import { apiKey } from "@better-auth/api-key";
import { getMigrations } from "better-auth/db/migration";
import pg from "pg";

const [command, alg] = process.argv.slice(2);
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
const auth = betterAuth({
  database: pool,
  secret: process.env.BETTER_AUTH_SECRET,
  baseURL: "http://localhost:3000",
  emailAndPassword: { enabled: true },
  telemetry: { enabled: false },
  plugins: [jwt({ jwks: { keyPairConfig: { alg: alg || "EdDSA" } } }), apiKey()],
});

async function setup() {
  const { runMigrations } = await getMigrations(auth.options);
  await runMigrations();
  const response = await auth.api.signUpEmail({
    body: { email: "keys@example.com", password: "correct-horse-battery-staple", name: "Key Holder" },
    asResponse: true,
  });
  if (!response.ok) throw new Error(`sign-up failed: ${response.status} ${await response.text()}`);
  const userId = (await response.json()).user.id;
  const cookie = response.headers.getSetCookie().map((c) => c.split(";")[0]).find((c) => c.includes(".session_token="));
  const headers = new Headers({ cookie });
  // What a frontend gets from GET /api/auth/token.
  const { token } = await auth.api.getToken({ headers });
  // The same claims, already expired (signed by the same key).
  const now = Math.floor(Date.now() / 1000);
  const { token: expiredJwt } = await auth.api.signJWT({
    body: { payload: { sub: userId, iss: "http://localhost:3000", aud: "http://localhost:3000", iat: now - 7200, exp: now - 3600 } },
  });
  const create = (body) => auth.api.createApiKey({ body: { userId, ...body } });
  const make = async (body) => (await create(body)).key;
  const keys = {
    plain: await make({ rateLimitEnabled: false }),
    limited: await make({ remaining: 3, rateLimitEnabled: false }),
    rated: await make({ rateLimitEnabled: true, rateLimitMax: 2, rateLimitTimeWindow: 60_000 }),
    readOnly: await make({ rateLimitEnabled: false, permissions: { items: ["read"] } }),
    byDefault: await make({}),
  };
  const disabled = await create({ rateLimitEnabled: false });
  await auth.api.updateApiKey({ body: { keyId: disabled.id, userId, enabled: false } });
  keys.disabled = disabled.key;
  return { userId, jwt: token, expiredJwt, keys };
}

try {
  const result = command === "setup" ? await setup() : null;
  if (!result) throw new Error(`unknown command ${command}`);
  process.stdout.write(JSON.stringify(result) + "\n");
} finally {
  await pool.end();
}
