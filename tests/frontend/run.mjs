// The frontend test's Node side, for tests/api/frontend.rs.
//
//   node run.mjs migrate
//     better-auth creates its tables (with the organization plugin's).
//   node run.mjs drive <frontendPort> <apiBase>
//     Serves the frontend on http://localhost:<frontendPort> — its page, the
//     esbuild bundle of app.ts, and better-auth's handler at /api/auth — opens
//     it in headless Chromium, and prints {steps, error?, blocked, consoleErrors}
//     once the page has run: `blocked` lists requests that failed (a CORS
//     refusal is one), `consoleErrors` what Chromium logged (CORS refusals are
//     logged there with their reason).
//
// Environment: DATABASE_URL (postgres://…), BETTER_AUTH_SECRET.
import http from "node:http";
import { fileURLToPath } from "node:url";
import { getMigrations } from "better-auth/db/migration";
import { toNodeHandler } from "better-auth/node";
import * as esbuild from "esbuild";
import { chromium } from "playwright-core";
import { makeAuth } from "./auth.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
const [command, ...args] = process.argv.slice(2);
const env = { databaseUrl: process.env.DATABASE_URL, secret: process.env.BETTER_AUTH_SECRET };

const launchOptions = {
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
};

async function migrate() {
  const { auth, pool } = makeAuth({ ...env, baseURL: "http://localhost" });
  try {
    const { runMigrations } = await getMigrations(auth.options);
    await runMigrations();
    return { migrated: true };
  } finally {
    await pool.end();
  }
}

async function bundle(apiBase) {
  const built = await esbuild.build({
    entryPoints: [`${here}/app.ts`],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    logLevel: "error",
    define: { API_BASE: JSON.stringify(apiBase) },
  });
  return built.outputFiles[0].text;
}

const page = `<!doctype html><html><head><meta charset="utf-8"><title>Frontend</title></head>
<body><pre id="out"></pre><script type="module" src="/app.js"></script></body></html>`;

async function serve(port, apiBase) {
  const origin = `http://localhost:${port}`;
  const { auth, pool } = makeAuth({ ...env, baseURL: origin });
  const authHandler = toNodeHandler(auth);
  const script = await bundle(apiBase);
  const server = http.createServer((req, res) => {
    if (req.url.startsWith("/api/auth/")) return authHandler(req, res);
    if (req.url === "/app.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      return res.end(script);
    }
    if (req.url === "/" || req.url === "/index.html") {
      res.writeHead(200, { "content-type": "text/html" });
      return res.end(page);
    }
    res.writeHead(404).end();
  });
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { origin, close: async () => { server.close(); await pool.end(); } };
}

async function drive(port, apiBase) {
  const frontend = await serve(Number(port), apiBase);
  const browser = await chromium.launch(launchOptions);
  const blocked = [];
  const consoleErrors = [];
  try {
    const tab = await (await browser.newContext()).newPage();
    tab.on("requestfailed", (r) => blocked.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
    tab.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
    tab.on("pageerror", (e) => consoleErrors.push(String(e)));
    await tab.goto(`${frontend.origin}/`);
    await tab.waitForFunction(() => window.__result !== undefined, null, { timeout: 60000 });
    const result = await tab.evaluate(() => window.__result);
    return { origin: frontend.origin, ...result, blocked, consoleErrors };
  } finally {
    await browser.close();
    await frontend.close();
  }
}

const commands = { migrate, drive };
if (!commands[command]) throw new Error(`unknown command ${command}`);
process.stdout.write(JSON.stringify(await commands[command](...args)) + "\n");
