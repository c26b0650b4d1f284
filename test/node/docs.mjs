// The API reference at /docs, rendered in headless Chromium (Debian's, driven by
// playwright-core): everything the page loads comes from glow (the renderer's one request
// elsewhere, its logo, is blocked by the page's Content-Security-Policy before it leaves),
// and the rendered page shows an operation's route, socket.io event and pushed events.
//
// The network is blocked: every request to anywhere but glow is aborted. The rendered page
// is saved as a screenshot to GLOW_SCREENSHOT.
//
// Environment: GLOW_URL; GLOW_CHROMIUM, the browser's executable; GLOW_SCREENSHOT.

import { chromium } from "playwright-core";

import { check, env, equal, run } from "./lib.mjs";

const url = env("GLOW_URL");

run(async () => {
  const browser = await chromium.launch({
    executablePath: env("GLOW_CHROMIUM"),
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  try {
    const page = await browser.newPage();
    const elsewhere = [];
    const errors = [];
    const away = (u) => !u.startsWith(url) && !u.startsWith("data:") && !u.startsWith("blob:");
    const blocked = new Set();
    page.on("requestfailed", (r) => { if (r.failure()?.errorText === "csp") blocked.add(r.url()); });
    page.on("request", (r) => { if (away(r.url())) elsewhere.push(r.url()); });
    page.on("pageerror", (e) => errors.push(e.message));
    await page.route("**/*", (route) => (away(route.request().url()) ? route.abort() : route.continue()));
    const res = await page.goto(`${url}/docs`);
    equal("docs/status", res.status(), 200);
    const wanted = ["POST /persona/create", "persona.create", "persona.create.completed", "persona.generate.text.progress"];
    await page.waitForFunction((texts) => texts.every((t) => document.body.innerText.includes(t)), wanted, { timeout: 30000 });
    const text = await page.evaluate(() => document.body.innerText);
    for (const t of wanted) check(`docs/shows/${t}`, text.includes(t), {});
    equal("docs/offline", elsewhere.filter((u) => !blocked.has(u)), []);
    const shot = await page.screenshot({ path: env("GLOW_SCREENSHOT"), fullPage: false });
    check("docs/screenshot", shot.length > 10000, { bytes: shot.length });
    equal("docs/no-errors", errors, []);
  } finally {
    await browser.close();
  }
}, 60000);
