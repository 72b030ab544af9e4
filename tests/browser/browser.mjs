// Real-browser checks for the Rust suite, in Debian's headless Chromium.
//
//   node browser.mjs cors <apiBase> <cookieName> <cookieValue> <allowedPort> <otherPort>
//     Serves one page on 127.0.0.1:<allowedPort> (an origin in FRONTEND_URL)
//     and one on 127.0.0.1:<otherPort> (not in it); each calls
//     GET <apiBase>/api/v1/users/me with credentials: 'include'.
//   node browser.mjs docs <apiBase>
//     Opens <apiBase>/docs/ and lists the operations Swagger UI rendered.
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

async function docs(apiBase) {
  const browser = await chromium.launch(launchOptions);
  try {
    const tab = await browser.newPage();
    const errors = [];
    tab.on("pageerror", (e) => errors.push(String(e)));
    await tab.goto(`${apiBase}/docs/`);
    await tab.waitForSelector(".opblock-summary-path", { timeout: 15000 });
    const operations = await tab.$$eval(".opblock", (blocks) =>
      blocks.map((b) => `${b.querySelector(".opblock-summary-method")?.textContent} ${b.querySelector(".opblock-summary-path")?.textContent}`.trim()));
    return { title: await tab.title(), operations, errors };
  } finally {
    await browser.close();
  }
}

const [command, ...args] = process.argv.slice(2);
const result = command === "cors" ? await cors(...args) : command === "docs" ? await docs(...args) : null;
if (!result) throw new Error(`unknown command ${command}`);
process.stdout.write(JSON.stringify(result) + "\n");
