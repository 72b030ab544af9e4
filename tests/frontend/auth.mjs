// better-auth as the frontend's server runs it (as a Next.js or SvelteKit app
// would mount it at /api/auth): email and password, organizations, on the
// PostgreSQL database this service shares.
import { betterAuth } from "better-auth";
import { organization } from "better-auth/plugins";
import pg from "pg";

export function makeAuth({ databaseUrl, secret, baseURL }) {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  const auth = betterAuth({
    database: pool,
    secret,
    baseURL,
    trustedOrigins: [baseURL],
    emailAndPassword: { enabled: true },
    telemetry: { enabled: false },
    plugins: [organization()],
  });
  return { auth, pool };
}
