// The typed client in use: sign in with better-auth's session cookie, list
// items page by page following `Link`, create one with an `Idempotency-Key`,
// and update it with `If-Match`. Type-checked in CI (`npm run check`).
import createClient from "openapi-fetch";
import type { components, paths } from "./src/schema";

type Item = components["schemas"]["Item"];

/// A client that sends better-auth's session cookie. (In a browser, use
/// `credentials: "include"` instead and let the browser send the cookie.)
export function client(baseUrl: string, sessionCookie: string) {
  return createClient<paths>({ baseUrl, headers: { Cookie: sessionCookie } });
}

/// The `cursor` of a `Link: <…?limit=…&cursor=…>; rel="next"` header, if any.
export function nextCursor(link: string | null): string | undefined {
  const target = link?.match(/<([^>]+)>;\s*rel="next"/)?.[1];
  return target ? (new URL(target, "http://x").searchParams.get("cursor") ?? undefined) : undefined;
}

/// Every item of the caller, newest first, one page of `limit` at a time.
export async function* allItems(api: ReturnType<typeof client>, limit = 20): AsyncGenerator<Item> {
  let cursor: string | undefined;
  for (;;) {
    const { data, error, response } = await api.GET("/api/v1/items", {
      params: { query: { limit, cursor } },
    });
    if (error) throw new Error(`${error.error.code} ${error.error.message}`);
    yield* data;
    cursor = nextCursor(response.headers.get("Link"));
    if (!cursor) return;
  }
}

/// Creates an item; retrying with the same key never creates a second one.
export async function createOnce(api: ReturnType<typeof client>, name: string, key: string): Promise<Item> {
  const { data, error, response } = await api.POST("/api/v1/items", {
    params: { header: { "Idempotency-Key": key } },
    body: { name, description: null, is_active: true },
  });
  if (error) throw new Error(`${error.error.code} ${error.error.message}`);
  if (response.headers.get("Idempotent-Replayed") === "true") console.info("replayed, not created again");
  return data;
}

/// Deactivates an item unless someone changed it since it was read (412).
export async function deactivate(api: ReturnType<typeof client>, id: string): Promise<Item | "changed"> {
  const read = await api.GET("/api/v1/items/{id}", { params: { path: { id } } });
  if (read.error) throw new Error(read.error.error.message);
  const etag = read.response.headers.get("ETag") ?? "*";
  const { data, error, response } = await api.PATCH("/api/v1/items/{id}", {
    params: { path: { id }, header: { "If-Match": etag } },
    body: { is_active: false },
  });
  if (response.status === 412) return "changed";
  if (error) throw new Error(`${error.error.code} ${error.error.message}`);
  return data;
}

export async function main(baseUrl: string, sessionCookie: string): Promise<void> {
  const api = client(baseUrl, sessionCookie);
  const created = await createOnce(api, "Desk lamp", crypto.randomUUID());
  for await (const item of allItems(api)) console.log(item.id, item.name);
  console.log(await deactivate(api, created.id));
}
