// The frontend under test: a plain TypeScript page, bundled by esbuild. It
// signs up and creates an organization through the real better-auth client
// (same origin, /api/auth), then uses the API on another origin through the
// typed client with the browser's session cookie. Each step is recorded in
// `window.__result` for the driver (run.mjs) to read.
import { createAuthClient } from "better-auth/client";
import { organizationClient } from "better-auth/client/plugins";
import { ApiError, createApiClient, isApiError, nextCursor, unwrap } from "@saas-starter/api-client";

declare const API_BASE: string;
declare global {
  interface Window {
    __result?: { steps: Step[]; error?: string };
  }
}

interface Step {
  step: string;
  ok: boolean;
  detail?: unknown;
}

const steps: Step[] = [];
const out = document.getElementById("out")!;

function record(step: string, ok: boolean, detail?: unknown): void {
  steps.push({ step, ok, detail });
  out.textContent += `${ok ? "ok  " : "FAIL"} ${step}\n`;
}

async function refused(call: Promise<unknown>): Promise<ApiError | undefined> {
  try {
    await call;
    return undefined;
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function run(): Promise<void> {
  const auth = createAuthClient({ baseURL: location.origin, plugins: [organizationClient()] });
  const api = createApiClient(API_BASE);
  const item = { description: null, is_active: true };

  const email = `browser-${Date.now()}@example.com`;
  const signUp = await auth.signUp.email({ email, password: "correct-horse-battery-staple", name: "Browser User" });
  record("signed up through better-auth", !signUp.error, signUp.error);

  const me = await unwrap(api.GET("/api/v1/users/me"));
  record("the API trusts better-auth's cookie, cross-origin", me.data.email === email, me.data);
  const requestId = me.response.headers.get("X-Request-Id");
  const remaining = me.response.headers.get("RateLimit-Remaining");
  record("X-Request-Id and RateLimit-* are readable", !!requestId && remaining !== null, { requestId, remaining });

  const created: { id: string; etag: string | null; location: string | null }[] = [];
  for (let i = 0; i < 5; i++) {
    const { data, response } = await unwrap(api.POST("/api/v1/items", { body: { name: `Item ${i}`, ...item } }));
    created.push({ id: data.id, etag: response.headers.get("ETag"), location: response.headers.get("Location") });
  }
  record(
    "a 201 exposes Location and ETag",
    created.every((c) => c.etag && c.location === `/api/v1/items/${c.id}`),
    created,
  );

  const seen: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const { data, response } = await unwrap(api.GET("/api/v1/items", { params: { query: { limit: 2, cursor } } }));
    seen.push(...data.map((i) => i.id));
    cursor = nextCursor(response);
    pages++;
  } while (cursor && pages < 10);
  const newestFirst = created.map((c) => c.id).reverse();
  record("paging follows Link to the last page", pages === 3 && JSON.stringify(seen) === JSON.stringify(newestFirst), {
    pages,
    seen,
  });

  const key = crypto.randomUUID();
  const once = () =>
    unwrap(api.POST("/api/v1/items", { params: { header: { "Idempotency-Key": key } }, body: { name: "Once", ...item } }));
  const first = await once();
  const replay = await once();
  record(
    "Idempotency-Key: the retry is replayed, not created again",
    first.response.headers.get("Idempotent-Replayed") === null &&
      replay.response.headers.get("Idempotent-Replayed") === "true" &&
      replay.data.id === first.data.id,
    { first: first.data.id, replay: replay.data.id },
  );

  const target = created[0];
  const read = await unwrap(api.GET("/api/v1/items/{id}", { params: { path: { id: target.id } } }));
  const etag = read.response.headers.get("ETag")!;
  record("a GET answers the ETag the 201 gave", etag === target.etag, { etag, created: target.etag });
  const patched = await unwrap(
    api.PATCH("/api/v1/items/{id}", { params: { path: { id: target.id }, header: { "If-Match": etag } }, body: { name: "Renamed" } }),
  );
  record("If-Match with the current ETag updates", patched.data.name === "Renamed");
  const stale = await refused(
    unwrap(api.PATCH("/api/v1/items/{id}", { params: { path: { id: target.id }, header: { "If-Match": etag } }, body: { name: "Lost" } })),
  );
  record("a stale If-Match is 412 precondition_failed", stale?.status === 412 && stale.type === "precondition_failed", {
    status: stale?.status,
    type: stale?.type,
  });
  const fresh = patched.response.headers.get("ETag")!;
  const unchanged = await api.GET("/api/v1/items/{id}", {
    params: { path: { id: target.id }, header: { "If-None-Match": fresh } },
  });
  record("If-None-Match with the PATCH's ETag is 304", unchanged.response.status === 304);

  const missing = await refused(unwrap(api.GET("/api/v1/items/{id}", { params: { path: { id: crypto.randomUUID() } } })));
  record("an unknown item is an error of type not_found", isApiError(missing, "not_found"), missing?.type);

  const created_org = await auth.organization.create({ name: "Browser Org", slug: `browser-${Date.now()}` });
  const orgId = created_org.data?.id;
  record("an organization created through better-auth", !!orgId, created_org.error);
  const team = createApiClient(API_BASE, { organizationId: orgId });
  const teamItem = await unwrap(team.POST("/api/v1/items", { body: { name: "Team item", ...item } }));
  const teamList = await unwrap(team.GET("/api/v1/items"));
  record(
    "X-Organization-Id: created and listed in the organization",
    teamItem.data.organization_id === orgId && teamList.data.length === 1 && teamList.data[0].id === teamItem.data.id,
    teamList.data,
  );
  const orgs = await unwrap(api.GET("/api/v1/organizations"));
  record("the organization is listed with the owner role", orgs.data.some((o) => o.id === orgId && o.role === "owner"), orgs.data);
  const stranger = await refused(unwrap(createApiClient(API_BASE, { organizationId: "not-mine" }).GET("/api/v1/items")));
  record("another organization is 403 not_a_member", isApiError(stranger, "not_a_member"), stranger?.type);

  await auth.signOut();
  await sleep(1200); // the API's session cache lives SESSION_CACHE_TTL (1 s in this test)
  const signedOut = await refused(unwrap(api.GET("/api/v1/users/me")));
  record("after better-auth's sign-out the API answers 401 not_authenticated", isApiError(signedOut, "not_authenticated"), signedOut?.type);
}

run()
  .then(() => (window.__result = { steps }))
  .catch((error) => (window.__result = { steps, error: String(error?.stack ?? error) }));
