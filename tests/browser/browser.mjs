// Real-browser checks for the Rust suite, in Debian's headless Chromium.
//
//   node browser.mjs cors <apiBase> <cookieName> <cookieValue> <allowedPort> <otherPort>
//     Serves one page on 127.0.0.1:<allowedPort> (an origin in FRONTEND_URL)
//     and one on 127.0.0.1:<otherPort> (not in it); each calls
//     GET <apiBase>/api/v1/users/me with credentials: 'include'.
//   node browser.mjs docs <apiBase>
//     Opens <apiBase>/docs/ and lists the operations Swagger UI rendered.
//   node browser.mjs redoc <apiBase>
//     Opens <apiBase>/redoc and lists the operations ReDoc rendered.
// Both also report every request to another origin (aborted: the page must
// need none) and every Content-Security-Policy violation.
//
// Prints one JSON object on stdout.
import http from "node:http";
import { chromium } from "playwright-core";

const launchOptions = {
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
};

function page(apiBase) {
  return `<!doctype html><html><body><pre id="out">pending</pre><script>
    fetch(${JSON.stringify(apiBase + "/api/v1/users/me")}, { credentials: "include" })
      .then(async (r) => { document.getElementById("out").textContent = JSON.stringify({ outcome: "response", status: r.status, body: await r.json() }); })
      .catch((e) => { document.getElementById("out").textContent = JSON.stringify({ outcome: "blocked", error: String(e) }); });
  </script></body></html>`;
}

function serve(port, html) {
  const server = http.createServer((_, res) => { res.writeHead(200, { "content-type": "text/html" }); res.end(html); });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

async function outcome(browserPage, url) {
  await browserPage.goto(url);
  await browserPage.waitForFunction(() => document.getElementById("out").textContent !== "pending", null, { timeout: 10000 });
  return JSON.parse(await browserPage.textContent("#out"));
}

async function cors(apiBase, cookieName, cookieValue, allowedPort, otherPort) {
  const html = page(apiBase);
  const servers = [await serve(Number(allowedPort), html), await serve(Number(otherPort), html)];
  const browser = await chromium.launch(launchOptions);
  try {
    const context = await browser.newContext();
    const api = new URL(apiBase);
    await context.addCookies([{ name: cookieName, value: cookieValue, domain: api.hostname, path: "/", httpOnly: true, sameSite: "Lax" }]);
    const tab = await context.newPage();
    const allowed = await outcome(tab, `http://127.0.0.1:${allowedPort}/`);
    const other = await outcome(tab, `http://127.0.0.1:${otherPort}/`);
    return { allowed, other };
  } finally {
    await browser.close();
    servers.forEach((s) => s.close());
  }
}

// A tab that records what would break on a closed network or under the CSP.
async function guardedTab(browser, apiBase) {
  const tab = await browser.newPage();
  const report = { errors: [], external: [], csp: [] };
  tab.on("pageerror", (e) => report.errors.push(String(e)));
  tab.on("console", (m) => { if (m.text().includes("Content Security Policy")) report.csp.push(m.text()); });
  const origin = new URL(apiBase).origin;
  await tab.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith("data:") || url.startsWith("blob:")) return route.continue();
    report.external.push(url);
    return route.abort();
  });
  return { tab, report };
}

async function docs(apiBase) {
  const browser = await chromium.launch(launchOptions);
  try {
    const { tab, report } = await guardedTab(browser, apiBase);
    await tab.goto(`${apiBase}/docs/`);
    await tab.waitForSelector(".opblock-summary-path", { timeout: 15000 });
    const operations = await tab.$$eval(".opblock", (blocks) =>
      blocks.map((b) => `${b.querySelector(".opblock-summary-method")?.textContent} ${b.querySelector(".opblock-summary-path")?.textContent}`.trim()));
    return { title: await tab.title(), operations, ...report };
  } finally {
    await browser.close();
  }
}

async function redoc(apiBase) {
  const browser = await chromium.launch(launchOptions);
  try {
    const { tab, report } = await guardedTab(browser, apiBase);
    await tab.goto(`${apiBase}/redoc`);
    await tab.waitForSelector('[data-section-id^="operation/"]', { timeout: 20000 });
    const operations = await tab.$$eval('[data-section-id^="operation/"]', (sections) =>
      sections.map((s) => s.getAttribute("data-section-id").slice("operation/".length)));
    return { title: await tab.title(), operations, ...report };
  } finally {
    await browser.close();
  }
}

const [command, ...args] = process.argv.slice(2);
const commands = { cors, docs, redoc };
const result = commands[command] ? await commands[command](...args) : null;
if (!result) throw new Error(`unknown command ${command}`);
process.stdout.write(JSON.stringify(result) + "\n");
