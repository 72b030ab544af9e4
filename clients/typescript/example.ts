// The typed client in use, from a script (Node): the same calls a browser
// app makes, with the session cookie passed by hand (a browser sends it
// itself with `credentials: "include"`). CI runs it against a dev server:
//
//   npx tsx example.ts http://127.0.0.1:8000 'better-auth.session_token=…' [organizationId]
//
// It exits non-zero, saying why, when the API does not behave as documented.
import { allItems, createApiClient, isApiError, unwrap, type ApiClient, type Item } from "./src/index";

/** Creates an item; retrying with the same key never creates a second one. */
export async function createOnce(api: ApiClient, name: string, key: string): Promise<{ item: Item; etag: string; replayed: boolean }> {
  const { data, response } = await unwrap(
    api.POST("/api/v1/items", {
      params: { header: { "Idempotency-Key": key } },
      body: { name, description: null, is_active: true },
    }),
  );
  return {
    item: data,
    etag: response.headers.get("ETag") ?? "",
    replayed: response.headers.get("Idempotent-Replayed") === "true",
  };
}

/** Deactivates an item unless someone changed it since `etag` was read. */
export async function deactivate(api: ApiClient, id: string, etag: string): Promise<Item | "changed"> {
  try {
    const { data } = await unwrap(
      api.PATCH("/api/v1/items/{id}", { params: { path: { id }, header: { "If-Match": etag } }, body: { is_active: false } }),
    );
    return data;
  } catch (error) {
    if (isApiError(error, "precondition_failed")) return "changed";
    throw error;
  }
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`example: ${what}`);
  console.log(`ok  ${what}`);
}

export async function main(baseUrl: string, sessionCookie: string, organizationId?: string): Promise<void> {
  const api = createApiClient(baseUrl, { headers: { Cookie: sessionCookie } });
  const { data: me } = await unwrap(api.GET("/api/v1/users/me"));
  check(typeof me.id === "string", `signed in as ${me.email}`);

  const key = crypto.randomUUID();
  const first = await createOnce(api, "Desk lamp", key);
  const again = await createOnce(api, "Desk lamp", key);
  check(again.replayed && again.item.id === first.item.id, "a retried create is replayed, not repeated");

  for (let i = 0; i < 3; i++) await createOnce(api, `Shelf ${i}`, crypto.randomUUID());
  const names: string[] = [];
  for await (const item of allItems(api, { limit: 2 })) names.push(item.name);
  check(names.length >= 4 && names.includes("Desk lamp"), `paged through ${names.length} items two at a time`);

  const updated = await deactivate(api, first.item.id, first.etag);
  check(updated !== "changed" && updated.is_active === false, "If-Match with the ETag of the 201 updates");
  check((await deactivate(api, first.item.id, first.etag)) === "changed", "the same, now stale, ETag is refused (412)");

  try {
    await unwrap(api.GET("/api/v1/items/{id}", { params: { path: { id: crypto.randomUUID() } } }));
    check(false, "an unknown item is not found");
  } catch (error) {
    check(isApiError(error, "not_found"), "an unknown item is an ApiError of type not_found");
  }

  if (organizationId) {
    const team = createApiClient(baseUrl, { headers: { Cookie: sessionCookie }, organizationId });
    const { data: shared } = await unwrap(team.POST("/api/v1/items", { body: { name: "Team lamp", description: null, is_active: true } }));
    check(shared.organization_id === organizationId, `created in the organization ${organizationId}`);
  }
}

const [baseUrl, cookie, organizationId] = process.argv.slice(2);
if (baseUrl && cookie) {
  main(baseUrl, cookie, organizationId).catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
