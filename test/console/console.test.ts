/**
 * The operator console (`/ui/`) in a real browser: Debian's chromium driven by
 * playwright-core (never a downloaded browser), against gateways whose providers are all
 * emulated exactly as `npm run dev` wires them: one open (as dev is, with its temp spend
 * log), one with a master key. Real image requests are made first, so every page shows
 * what the gateway really did, checked against the management API's own answers. Sign-in
 * with a right and a wrong key, each page, the playground drawing with two providers side
 * by side, keyboard navigation, phone width, the response headers, and throughout: no
 * request leaves loopback and the page logs no error. Screenshots of every page go to
 * `test-output/console/` (git-ignored) for a person to look at.
 */
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { imageSize } from "image-size";
import { type BrowserContext, chromium, type Page, type Request } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildConsole } from "../../ui/build.ts";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { parseConfig } from "../../src/config/load.ts";
import { type DevProviders, startDevProviders } from "../../src/dev/dev.ts";
import { silentLogger } from "../../src/log/logger.ts";
import { CONSOLE_CSP } from "../../src/server/console.ts";
import { type Gateway, startGateway } from "../../src/server/gateway.ts";
import { hasTestProgram } from "../support/test-programs.ts";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const SHOTS = join(import.meta.dirname, "../../test-output/console");
const MASTER_KEY = "sk-console-master-test-5e1d0c";
const PAGES = ["Overview", "Deployments", "Keys", "Logs", "Playground"];
/** Two providers side by side in the playground. */
const MODELS = ["openai/gpt-image-1", "recraft/recraftv3"];

// Debian's chromium (apt-get install chromium; .ci/run installs it and makes it mandatory).
const haveChromium = hasTestProgram(CHROMIUM);

const catalog = loadCatalog();
let built: Awaited<ReturnType<typeof buildConsole>>;
let providers: DevProviders;
let open: Gateway;
let keyed: Gateway;
let context: BrowserContext;
let userDataDir: string;
/** Every URL the browser asked for, and what the route let through or stopped. */
const requested: string[] = [];
const blocked: string[] = [];
/** Console errors and uncaught exceptions, by page. */
const errors: string[] = [];

/** A dev gateway with its own spend log (`spendDb`), `extraGeneral` settings and `extra` YAML. */
async function devGateway(spendDb: string, extraGeneral = "", extra = ""): Promise<Gateway> {
  const yaml =
    providers.configYaml
      .replace(/^ {2}spend_db: .*$/m, `  spend_db: ${JSON.stringify(spendDb)}`)
      .replace("general_settings:\n", `general_settings:\n${extraGeneral}`) + extra;
  const config = parseConfig(
    yaml,
    { ...providers.env, IMAGEGATE_MASTER_KEY: MASTER_KEY, HOST: "127.0.0.1", PORT: "0" },
    catalog,
    "dev",
  );
  return startGateway({ config, catalog, logger: silentLogger });
}

function isLoopback(url: string): boolean {
  if (url.startsWith("data:")) return true;
  const { protocol, hostname } = new URL(url);
  return (protocol === "http:" || protocol === "https:") && hostname === "127.0.0.1";
}

async function newPage(viewport = { width: 1280, height: 900 }): Promise<Page> {
  const page = await context.newPage();
  await page.setViewportSize(viewport);
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`${msg.text()} (${msg.location().url})`);
  });
  page.on("pageerror", (e) => errors.push(`uncaught: ${e.message}`));
  return page;
}

/**
 * Chromium logs each error answer as a console error: the tests provoke 401s (wrong keys,
 * a keyed gateway before sign-in) and one 400 (a size the model lacks); nothing else may log.
 */
const PROVOKED =
  /^Failed to load resource: the server responded with a status of (401 \(Unauthorized\) \(http:\/\/127\.0\.0\.1:\d+\/v1\/models|400 \(Bad Request\) \(http:\/\/127\.0\.0\.1:\d+\/v1\/images\/generations)\)$/;
function unexpectedErrors(): string[] {
  return errors.filter((e) => !PROVOKED.test(e));
}

/** Signs in on the keyed gateway (session storage is per tab) and opens `pageId`. */
async function signIn(page: Page, pageId: string): Promise<void> {
  await page.goto(`${keyed.url}/ui/#/${pageId}`);
  await page.getByLabel("Master key").fill(MASTER_KEY);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Console" }).waitFor();
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** One image request from outside the browser; its status. */
async function generate(
  gateway: Gateway,
  body: Record<string, unknown>,
  key?: string,
): Promise<number> {
  const res = await fetch(`${gateway.url}/v1/images/generations`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(key === undefined ? {} : { authorization: `Bearer ${key}` }),
    },
    body: JSON.stringify({ prompt: "a lighthouse", response_format: "b64_json", ...body }),
  });
  await res.arrayBuffer();
  return res.status;
}

/** A management API answer read from outside the browser, to check a page against. */
async function admin<T>(gateway: Gateway, path: string, key?: string): Promise<T> {
  const res = await fetch(`${gateway.url}${path}`, {
    headers: key === undefined ? {} : { authorization: `Bearer ${key}` },
  });
  expect(res.status, path).toBe(200);
  return (await res.json()) as T;
}

let dataDir: string;

beforeAll(async () => {
  built = await buildConsole();
  providers = await startDevProviders(catalog);
  dataDir = await mkdtemp(join(tmpdir(), "imagegate-console-test-"));
  open = await devGateway(join(dataDir, "open.sqlite"));
  // With a key from the config file too, which the console lists but cannot change.
  keyed = await devGateway(
    join(dataDir, "keyed.sqlite"),
    "  master_key: os.environ/IMAGEGATE_MASTER_KEY\n",
    "keys:\n  - key: sk-console-config-key-1f2e\n    name: team-config\n",
  );
  // What the pages will show: two providers answering, and one request refused (a size
  // dall-e-2 does not draw).
  expect(await generate(open, { model: "openai/gpt-image-1" })).toBe(200);
  expect(await generate(open, { model: "openai/gpt-image-1", size: "1024x1024" })).toBe(200);
  expect(await generate(open, { model: "recraft/recraftv3" })).toBe(200);
  expect(await generate(open, { model: "openai/dall-e-2", size: "1792x1024" })).toBe(400);
  // And one deployment out of rotation: OpenAI's 429 asks for two minutes' rest.
  const openai = new URL(providers.env.OPENAI_BASE_URL!).origin;
  const fault = await fetch(`${openai}/__emulator/faults`, {
    method: "POST",
    body: JSON.stringify({
      status: 429,
      headers: { "retry-after": "120" },
      body: {
        error: { message: "Rate limit exceeded", type: "requests", code: "rate_limit_exceeded" },
      },
      model: "dall-e-3",
    }),
  });
  expect(fault.status).toBe(201);
  expect(await generate(open, { model: "openai/dall-e-3" })).toBe(429);
}, 60_000);

afterAll(async () => {
  await Promise.all([open?.shutdown(1000), keyed?.shutdown(1000)]);
  await providers?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe("the console's files", () => {
  it("weighs what the README says (within 1 kB)", async () => {
    const readme = await readFile(join(import.meta.dirname, "../../README.md"), "utf8");
    const stated = /Page weight, the whole console: ([\d.]+) kB/.exec(readme);
    expect(stated).not.toBeNull();
    expect(Math.abs(Number(stated![1]) - built.bytes / 1024)).toBeLessThan(1);
  });

  it("dev lists every emulated model by its direct name, so the playground can offer them", async () => {
    const res = await fetch(`${open.url}/v1/models`);
    const ids = ((await res.json()) as { data: { id: string }[] }).data.map((m) => m.id);
    const served = catalog.entries().map((spec) => `${spec.provider}/${spec.model}`);
    expect(ids.toSorted()).toEqual(served.toSorted());
    for (const model of MODELS) expect(ids).toContain(model);
  });

  it("serves /ui/ with a strict CSP, nosniff, and cache headers fit for hashed assets", async () => {
    const redirect = await fetch(`${open.url}/ui`, { redirect: "manual" });
    expect(redirect.status).toBe(308);
    expect(redirect.headers.get("location")).toBe("/ui/");

    const index = await fetch(`${open.url}/ui/`);
    expect(index.status).toBe(200);
    expect(index.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(index.headers.get("content-security-policy")).toBe(CONSOLE_CSP);
    for (const directive of [
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self'",
      "img-src 'self' data:",
      "connect-src 'self'",
      "frame-ancestors 'none'",
    ])
      expect(CONSOLE_CSP).toContain(directive);
    expect(index.headers.get("x-content-type-options")).toBe("nosniff");
    expect(index.headers.get("cache-control")).toBe("no-cache");

    const html = await index.text();
    const assets = [...html.matchAll(/(?:src|href)="(assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets).toHaveLength(2);
    for (const asset of assets) {
      expect(asset).toMatch(/^assets\/[a-z]+-[A-Z0-9]{8}\.(js|css)$/);
      const res = await fetch(`${open.url}/ui/${asset}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("content-security-policy")).toBe(CONSOLE_CSP);
      await res.arrayBuffer();
    }
    // No inline script or style for the CSP to refuse.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)|<style|\sstyle=/);

    const missing = await fetch(`${open.url}/ui/assets/nothing-AAAAAAAA.js`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { type: string } }).error.type).toBeTruthy();
    const post = await fetch(`${open.url}/ui/`, { method: "POST", body: "x" });
    expect(post.status).toBe(405);
    await post.arrayBuffer();
  });
});

describe.skipIf(!haveChromium)("operator console in chromium", () => {
  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    userDataDir = await mkdtemp(join(tmpdir(), "imagegate-chromium-"));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
    });
    // Anything not on loopback is stopped here, and the test fails on it below.
    await context.route("**/*", (route) => {
      const url = route.request().url();
      if (isLoopback(url)) return route.continue();
      blocked.push(url);
      return route.abort();
    });
    context.on("request", (r: Request) => requested.push(r.url()));
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
  });

  it("asks for the master key on a keyed gateway, refuses a wrong one and keeps the right one in session storage only", async () => {
    const page = await newPage();
    const models: Request[] = [];
    page.on("request", (r) => {
      if (r.url().endsWith("/v1/models")) models.push(r);
    });
    const response = await page.goto(`${keyed.url}/ui/`);
    expect(response?.headers()["content-security-policy"]).toBe(CONSOLE_CSP);
    const signIn = page.getByRole("button", { name: "Sign in" });
    await signIn.waitFor();
    const key = page.getByLabel("Master key");

    await key.fill("sk-not-the-master-key");
    await signIn.click();
    const refused = page.getByText(/The gateway refused this key/);
    await refused.waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await expect.poll(() => page.getByRole("navigation").count()).toBe(0);
    await shot(page, "sign-in-refused");

    await key.fill(MASTER_KEY);
    await signIn.click();
    await page.getByRole("navigation", { name: "Console" }).waitFor();
    expect(await page.evaluate(() => Object.values(sessionStorage))).toEqual([MASTER_KEY]);
    // Sent as a bearer token, never in a URL or a cookie.
    expect(models.at(-1)?.headers().authorization).toBe(`Bearer ${MASTER_KEY}`);
    expect(requested.some((u) => u.includes(MASTER_KEY))).toBe(false);
    expect(page.url()).not.toContain(MASTER_KEY);
    expect(await context.cookies()).toEqual([]);

    // A reload in the same tab stays signed in; signing out forgets the key.
    await page.reload();
    await page.getByRole("navigation", { name: "Console" }).waitFor();
    await page.getByRole("button", { name: "Sign out" }).click();
    await signIn.waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await page.close();
  });

  it("needs no sign-in on an open gateway, and every page is there", async () => {
    const page = await newPage();
    await page.goto(`${open.url}/ui/`);
    await page.getByRole("navigation", { name: "Console" }).waitFor();
    expect(await page.getByRole("button", { name: "Sign in" }).count()).toBe(0);
    for (const title of PAGES) {
      await page.getByRole("link", { name: title, exact: true }).click();
      await page.getByRole("heading", { level: 1, name: title }).waitFor();
      expect(
        await page.getByRole("link", { name: title, exact: true }).getAttribute("aria-current"),
      ).toBe("page");
      expect(await page.locator("main [role=alert]:not(:empty)").count()).toBe(0);
    }
    await page.close();
  });

  it("Overview charts requests, images, errors and cost by model and by key, as the gateway summed them", async () => {
    type Series = {
      points: { group?: string; requests: number; images: number; errors: number; spend: number }[];
    };
    const page = await newPage();
    await page.goto(`${open.url}/ui/#/overview`);
    await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
    const table = page.getByRole("table", { name: /By model/ });
    await table.waitFor();

    // The totals and each model's row are the API's sums for today.
    const day = new Date().toISOString().slice(0, 10);
    const api = await admin<Series>(
      open,
      `/global/spend/series?start_date=${day}&end_date=${day}&group_by=model`,
    );
    const sums = new Map<string, { requests: number; images: number; errors: number }>();
    for (const p of api.points) {
      const s = sums.get(p.group!) ?? { requests: 0, images: 0, errors: 0 };
      s.requests += p.requests;
      s.images += p.images;
      s.errors += p.errors;
      sums.set(p.group!, s);
    }
    expect([...sums.keys()].toSorted()).toEqual([
      "openai/dall-e-2",
      "openai/dall-e-3",
      "openai/gpt-image-1",
      "recraft/recraftv3",
    ]);
    const rows = await table
      .locator("tbody tr")
      .evaluateAll((trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
    expect(
      Object.fromEntries(
        rows.map(([model, requests, images, errors]) => [model, [requests, images, errors]]),
      ),
    ).toEqual(
      Object.fromEntries(
        [...sums].map(([m, s]) => [m, [String(s.requests), String(s.images), String(s.errors)]]),
      ),
    );
    const card = (name: string) =>
      page.locator(".card", { has: page.getByText(name, { exact: true }) }).locator("dd");
    const total = (f: "requests" | "images" | "errors") =>
      String([...sums.values()].reduce((a, s) => a + s[f], 0));
    expect(total("requests")).toBe("5");
    expect(await card("Requests").textContent()).toBe(total("requests"));
    expect(await card("Images").textContent()).toBe(total("images"));
    expect(await card("Errors").textContent()).toBe(total("errors"));
    expect(await card("Cost (USD)").textContent()).toMatch(/^\$0\.\d+$/);

    // Four charts, drawn (uPlot's canvas), each described for screen readers.
    const plots = page.locator("figure.chart .plot");
    await expect.poll(() => page.locator("figure.chart canvas").count()).toBe(4);
    expect(await plots.first().getAttribute("aria-label")).toMatch(
      /^Requests per hour, by model: 5 in total over the last 24 hours; /,
    );
    await shot(page, "overview");
    // Dark mode, for a person to look at: the charts take the page's colours when drawn.
    await page.emulateMedia({ colorScheme: "dark" });
    await page.reload();
    await expect.poll(() => page.locator("figure.chart canvas").count()).toBe(4);
    await shot(page, "overview-dark");
    await page.emulateMedia({ colorScheme: "light" });

    // By key: the open gateway's requests carry none.
    await page.getByLabel("Group").selectOption("api_key");
    await page.getByRole("table", { name: /By key/ }).waitFor();
    expect(
      await page
        .getByRole("table", { name: /By key/ })
        .locator("tbody th")
        .allTextContents(),
    ).toEqual(["(without a key)"]);
    await page.getByLabel("Period").selectOption("30d");
    await page.getByRole("table", { name: /last 30 days/ }).waitFor();
    await expect.poll(() => page.locator("figure.chart canvas").count()).toBe(4);

    await page.setViewportSize({ width: 390, height: 844 });
    await expect
      .poll(() => page.evaluate(() => document.documentElement.scrollWidth))
      .toBeLessThanOrEqual(390);
    await shot(page, "overview-phone");
    await page.close();
  }, 60_000);

  it("Deployments shows each one's rotation, cooldown, in-flight, attempts, error rate, latency and price from /model/stats", async () => {
    type Stats = {
      data: {
        id: string;
        in_rotation: boolean;
        cooldown_until?: string;
        attempts: number;
        failures: number;
        latency_p50_ms?: number;
      }[];
    };
    const page = await newPage();
    await page.goto(`${open.url}/ui/#/deployments`);
    await page.getByRole("heading", { level: 1, name: "Deployments" }).waitFor();
    const table = page.getByRole("table", { name: "Deployments" });
    await table.waitFor();
    const api = await admin<Stats>(open, "/model/stats");
    const row = (id: string) =>
      table.locator("tbody tr", { has: page.getByRole("rowheader", { name: id, exact: true }) });
    const cells = (id: string) =>
      row(id).evaluate((tr) =>
        Object.fromEntries(
          [...tr.children].map((c, i) => [
            tr.closest("table")!.querySelectorAll("thead th")[i]!.textContent!,
            c.textContent,
          ]),
        ),
      );
    expect(await table.locator("tbody tr").count()).toBe(api.data.length);

    const image = api.data.find((d) => d.id === "openai/gpt-image-1")!;
    expect(image).toMatchObject({ in_rotation: true, attempts: 2, failures: 0 });
    expect(await cells("openai/gpt-image-1")).toMatchObject({
      "Provider · model": "openai · gpt-image-1",
      State: "In rotation",
      "In flight": "0",
      Attempts: "2",
      "Error rate": "0%",
      "Price per image": expect.stringMatching(/^\$0\.\d+$/),
    });
    expect((await cells("openai/gpt-image-1"))["Latency p50"]).toMatch(/^\d+ ms$/);

    // The deployment the 429 rested shows until when, as the API says.
    const rested = api.data.find((d) => d.id === "openai/dall-e-3")!;
    expect(rested.in_rotation).toBe(false);
    // In the browser's own time zone, as the page writes it.
    const until = await page.evaluate(
      (iso) => new Date(iso).toLocaleTimeString("en-GB"),
      rested.cooldown_until!,
    );
    const state = (await cells("openai/dall-e-3")).State!;
    expect(state).toMatch(/^Cooling down until \d\d:\d\d:\d\d \(in \d+ (s|min)\)$/);
    expect(state).toContain(until);
    expect(await cells("openai/dall-e-3")).toMatchObject({ Attempts: "1", "Error rate": "100%" });
    await shot(page, "deployments");

    // The filters: a word, and only those cooling down.
    await page.getByLabel("Only those cooling down").check();
    await expect.poll(() => table.locator("tbody tr").count()).toBe(1);
    await page.getByLabel("Only those cooling down").uncheck();
    await page.getByLabel("Filter by name, model or provider").fill("recraft");
    await expect
      .poll(() => table.locator("tbody th").allTextContents())
      .toEqual(api.data.filter((d) => d.id.startsWith("recraft/")).map((d) => d.id));

    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(
      390,
    );
    await shot(page, "deployments-phone");
    await page.close();
  });

  it("Keys: Create key shows the key once, it draws images, then block, unblock, regenerate and delete work", async () => {
    type Info = {
      info: {
        key_alias: string;
        models: string[];
        rpm_limit: number;
        max_budget: number;
        spend: number;
        blocked: boolean;
      };
    };
    const page = await newPage();
    await signIn(page, "keys");
    await page.getByRole("heading", { level: 1, name: "Keys" }).waitFor();
    const table = page.getByRole("table", { name: "Keys" });
    // The config file's key: listed, with nothing to press.
    const config = table.locator("tbody tr", {
      has: page.getByRole("rowheader", { name: /^team-config/ }),
    });
    await config.waitFor();
    expect(await config.getByRole("button").count()).toBe(0);
    expect(await config.locator("td").last().textContent()).toBe("From the config file");
    expect(await table.locator("tbody tr").count()).toBe(1);

    await page.getByLabel("Alias").fill("team-console");
    await page.getByLabel("Requests per minute").fill("30");
    await page.getByLabel("Budget (USD)").fill("1");
    await page.getByLabel("Budget starts again").selectOption("30d");
    await page.getByLabel("openai/gpt-image-1", { exact: true }).check();
    await page.getByRole("button", { name: "Create key" }).click();
    const shown = page.getByRole("textbox", { name: "Key (shown once)" });
    await shown.waitFor();
    const key = await shown.inputValue();
    expect(key).toMatch(/^sk-[\w-]{40,}$/);
    // The key has focus, selected, ready to copy; the form is empty again.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("new-key");
    expect(await page.getByLabel("Alias").inputValue()).toBe("");

    const info = await admin<Info>(keyed, `/key/info?key=${key}`, MASTER_KEY);
    expect(info.info).toMatchObject({
      key_alias: "team-console",
      models: ["openai/gpt-image-1"],
      rpm_limit: 30,
      max_budget: 1,
      blocked: false,
    });
    // The key works for its model, and only for it.
    expect(await generate(keyed, { model: "openai/gpt-image-1" }, key)).toBe(200);
    expect(await generate(keyed, { model: "recraft/recraftv3" }, key)).toBe(403);

    const row = table.locator("tbody tr", {
      has: page.getByRole("rowheader", { name: /^team-console/ }),
    });
    await page.getByRole("button", { name: "Refresh", exact: true }).click();
    const spent = (await admin<Info>(keyed, `/key/info?key=${key}`, MASTER_KEY)).info.spend;
    expect(spent).toBeGreaterThan(0);
    // Shown to four decimals under a dollar, as the console writes money.
    const shownSpend = `$${Number(spent.toFixed(4))} of $1 (${(spent * 100).toFixed(1)}%)`;
    await expect
      .poll(() => row.locator("td").nth(2).locator("span").first().textContent())
      .toBe(shownSpend);
    expect(await row.locator("td").nth(0).textContent()).toBe("openai/gpt-image-1");
    expect(await row.locator("td").nth(1).textContent()).toBe("30");
    expect(await row.locator("meter").getAttribute("value")).toBe(String(spent));
    await shot(page, "keys");

    // Block: refused with 401; Unblock: served again.
    await row.getByRole("button", { name: "Block", exact: true }).click();
    await row.getByRole("button", { name: "Unblock", exact: true }).waitFor();
    expect(await row.locator("td").nth(4).textContent()).toBe("Blocked");
    expect(await generate(keyed, { model: "openai/gpt-image-1" }, key)).toBe(401);
    await row.getByRole("button", { name: "Unblock", exact: true }).click();
    await row.getByRole("button", { name: "Block", exact: true }).waitFor();
    expect(await generate(keyed, { model: "openai/gpt-image-1" }, key)).toBe(200);

    // Regenerate, once confirmed: a new key shown once; the old one refused at once.
    await row.getByRole("button", { name: "Regenerate", exact: true }).click();
    await row.getByRole("button", { name: "Confirm regenerate", exact: true }).click();
    await expect.poll(() => shown.inputValue()).not.toBe(key);
    const renewed = await shown.inputValue();
    expect(renewed).toMatch(/^sk-/);
    expect(await page.getByRole("heading", { name: "Key regenerated: team-console" }).count()).toBe(
      1,
    );
    expect(await generate(keyed, { model: "openai/gpt-image-1" }, key)).toBe(401);
    expect(await generate(keyed, { model: "openai/gpt-image-1" }, renewed)).toBe(200);

    // Overview by key names it by its alias.
    await page.getByRole("link", { name: "Overview" }).click();
    await page.getByLabel("Group").selectOption("api_key");
    // Two groups: its rows under the first token, and under the regenerated one; then the
    // requests refused for their key (blocked, or the old key), which carry none.
    const byKey = page.getByRole("table", { name: /By key/ }).locator("tbody th");
    await expect
      .poll(() => byKey.allTextContents())
      .toEqual([
        expect.stringMatching(/^team-console \([0-9a-f]{10}…\)$/),
        expect.stringMatching(/^team-console \([0-9a-f]{10}…\)$/),
        "(without a key)",
      ]);
    await page.getByRole("link", { name: "Keys" }).click();

    // Delete, once confirmed (Cancel first keeps it).
    await row.getByRole("button", { name: "Delete", exact: true }).click();
    await row.getByRole("button", { name: "Cancel", exact: true }).click();
    await row.getByRole("button", { name: "Delete", exact: true }).click();
    await row.getByRole("button", { name: "Confirm delete", exact: true }).click();
    await expect.poll(() => table.locator("tbody th").count()).toBe(1);
    expect((await admin<{ keys: string[] }>(keyed, "/key/list", MASTER_KEY)).keys).toHaveLength(1);
    expect(await generate(keyed, { model: "openai/gpt-image-1" }, renewed)).toBe(401);

    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(
      390,
    );
    await shot(page, "keys-phone");
    await page.close();
  }, 60_000);

  it("Keys on an open gateway: listed read-only, creating needs a master key", async () => {
    const page = await newPage();
    await page.goto(`${open.url}/ui/#/keys`);
    await page.getByText("No keys: this gateway is open.").waitFor();
    expect(await page.getByRole("button", { name: "Create key" }).isDisabled()).toBe(true);
    await page.getByText(/This gateway is open \(it has no master key\)/).waitFor();
    await shot(page, "keys-open");
    await page.close();
  });

  it("Logs lists the newest requests as the spend log holds them, filtered by model and status, each opening to its details", async () => {
    type Row = {
      request_id: string;
      model: string;
      model_id?: string;
      status: string;
      attempts: number;
    };
    const page = await newPage();
    await page.goto(`${open.url}/ui/#/logs`);
    await page.getByRole("heading", { level: 1, name: "Logs" }).waitFor();
    const table = page.getByRole("table", { name: "Requests" });
    await table.waitFor();
    const day = new Date().toISOString().slice(0, 10);
    const api = (q: string) =>
      admin<Row[]>(open, `/spend/logs?start_date=${day}&end_date=${day}&limit=100${q}`);
    const shown = () =>
      table
        .locator("tbody tr:not(.details)")
        .evaluateAll((trs) =>
          trs.map((tr) => [...tr.children].slice(2, 5).map((td) => td.textContent)),
        );
    const expected = (rows: Row[]) =>
      rows.map((r) => [r.model, r.model_id ?? "–", r.status === "success" ? "Answered" : "Failed"]);

    const all = await api("");
    expect(all.length).toBeGreaterThanOrEqual(5);
    expect(await shown()).toEqual(expected(all));
    expect(await page.getByText(`${all.length} requests match.`).count()).toBe(1);
    await shot(page, "logs");

    // Failed only: the refused size and the 429.
    await page.getByLabel("Status").selectOption("failure");
    const failed = await api("&status=failure");
    expect(failed.map((r) => r.model).toSorted()).toEqual(["openai/dall-e-2", "openai/dall-e-3"]);
    await expect.poll(shown).toEqual(expected(failed));

    // The 429's details: one attempt, on its deployment.
    const rested = failed.find((r) => r.model === "openai/dall-e-3")!;
    const row = table.locator("tbody tr:not(.details)", { hasText: "openai/dall-e-3" });
    const toggle = row.getByRole("button");
    expect(await toggle.getAttribute("aria-expanded")).toBe("false");
    await toggle.click();
    expect(await toggle.getAttribute("aria-expanded")).toBe("true");
    const details = page.locator(`#${await toggle.getAttribute("aria-controls")}`);
    const facts = await details
      .locator("dl")
      .evaluate((dl) =>
        Object.fromEntries(
          [...dl.querySelectorAll("dt")].map((dt) => [
            dt.textContent,
            dt.nextElementSibling?.textContent,
          ]),
        ),
      );
    expect(facts).toMatchObject({
      "Request id": rested.request_id,
      Status: "Failed",
      Key: "None",
    });
    // Each attempt by its deployment, a failed one with its error code, as the log holds it.
    const attempt = (rested as Row & { attempt_log: { deployment: string; error: string }[] })
      .attempt_log;
    expect(attempt).toEqual([{ deployment: "openai/dall-e-3", error: expect.any(String) }]);
    expect(facts.Attempts).toBe(
      `1 upstream attempt: openai/dall-e-3 failed (${attempt[0]!.error}).`,
    );
    // The refused size never reached a provider.
    await table
      .locator("tbody tr:not(.details)", { hasText: "openai/dall-e-2" })
      .getByRole("button")
      .click();
    await page.getByText("None: it was answered or refused before any upstream call.").waitFor();
    await shot(page, "logs-details");

    // A model, any status.
    await page.getByLabel("Status").selectOption("");
    await page.getByLabel("Model").selectOption("openai/gpt-image-1");
    await expect.poll(shown).toEqual(expected(await api("&model=openai/gpt-image-1")));
    expect((await shown()).length).toBeGreaterThanOrEqual(2);

    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(
      390,
    );
    await shot(page, "logs-phone");
    await page.close();
  }, 60_000);

  it("Logs filters by key on a keyed gateway, naming keys by alias", async () => {
    const made = await fetch(`${keyed.url}/key/generate`, {
      method: "POST",
      headers: { authorization: `Bearer ${MASTER_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ key_alias: "team-logs" }),
    });
    const { key } = (await made.json()) as { key: string };
    expect(await generate(keyed, { model: "recraft/recraftv3" }, key)).toBe(200);
    expect(await generate(keyed, { model: "openai/gpt-image-1" }, MASTER_KEY)).toBe(200);
    const page = await newPage();
    await signIn(page, "logs");
    const table = page.getByRole("table", { name: "Requests" });
    await table.waitFor();
    await page.getByLabel("Key").selectOption({ label: "team-logs" });
    await expect
      .poll(() => table.locator("tbody tr:not(.details) td:nth-child(2)").allTextContents())
      .toEqual(["team-logs"]);
    expect(await table.locator("tbody tr:not(.details) td:nth-child(3)").textContent()).toBe(
      "recraft/recraftv3",
    );
    await page.close();
  });

  it("moves across the navigation with the keyboard alone", async () => {
    const page = await newPage();
    await page.goto(`${open.url}/ui/`);
    await page.getByRole("navigation", { name: "Console" }).waitFor();
    const active = () =>
      page.evaluate(() => {
        const el = document.activeElement;
        return { tag: el?.tagName ?? "", text: el?.textContent ?? "" };
      });
    for (const title of PAGES) {
      // Tab (wrapping around) until the link has focus: a bounded number of presses.
      let focused = await active();
      for (let i = 0; i < 40 && !(focused.tag === "A" && focused.text === title); i++) {
        await page.keyboard.press("Tab");
        focused = await active();
      }
      expect(focused).toEqual({ tag: "A", text: title });
      await page.keyboard.press("Enter");
      await page.getByRole("heading", { level: 1, name: title }).waitFor();
      // Focus continues from the page's heading.
      await expect.poll(active).toEqual({ tag: "H1", text: title });
    }
    await page.close();
  });

  it("works the data pages' controls with the keyboard alone: a key made, a log row opened", async () => {
    const page = await newPage();
    await signIn(page, "keys");
    const active = () =>
      page.evaluate(() => {
        const el = document.activeElement as HTMLElement | null;
        return { tag: el?.tagName ?? "", id: el?.id ?? "", text: el?.textContent ?? "" };
      });
    /** Tabs (a bounded number of times) until `done` holds for the focused element. */
    const tabTo = async (done: (f: Awaited<ReturnType<typeof active>>) => boolean) => {
      let focused = await active();
      for (let i = 0; i < 80 && !done(focused); i++) {
        await page.keyboard.press("Tab");
        focused = await active();
      }
      expect(done(focused)).toBe(true);
    };
    // The keys made by the tests before are listed.
    await page.getByRole("table", { name: "Keys" }).waitFor();
    await tabTo((f) => f.id === "key-alias");
    await page.keyboard.type("team-keyboard");
    await tabTo((f) => f.tag === "BUTTON" && f.text === "Create key");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Key made: team-keyboard" }).waitFor();
    // The new key has focus: it can be copied at once.
    expect((await active()).id).toBe("new-key");
    const key = await page.getByRole("textbox", { name: "Key (shown once)" }).inputValue();
    expect(await generate(keyed, { model: "openai/gpt-image-1" }, key)).toBe(200);

    await page.goto(`${keyed.url}/ui/#/logs`);
    const toggle = page.getByRole("table", { name: "Requests" }).getByRole("button").first();
    await toggle.waitFor();
    // The first row's time is the button that opens it.
    await tabTo((f) => f.tag === "BUTTON" && /^\d{4}-\d\d-\d\d /.test(f.text));
    await page.keyboard.press("Enter");
    expect(await toggle.getAttribute("aria-expanded")).toBe("true");
    await page.close();
  }, 60_000);

  it("the playground draws one prompt with two emulated providers side by side, with size, latency and cost", async () => {
    const page = await newPage();
    const answers = new Map<string, { cost: string | null; size: string }>();
    page.on("response", async (res) => {
      if (!res.url().endsWith("/v1/images/generations")) return;
      const model = (res.request().postDataJSON() as { model: string }).model;
      const body = (await res.json()) as { data: { b64_json: string }[] };
      const { width, height } = imageSize(Buffer.from(body.data[0]!.b64_json, "base64"));
      answers.set(model, {
        cost: res.headers()["x-imagegate-cost-usd"] ?? null,
        size: `${width}×${height}`,
      });
    });
    await page.goto(`${open.url}/ui/#/playground`);
    await page.getByRole("heading", { level: 1, name: "Playground" }).waitFor();
    await page.getByLabel("Prompt").fill("a lighthouse at dusk, watercolour");
    for (const model of MODELS) await page.getByLabel(model, { exact: true }).check();
    await page.getByLabel("Size").selectOption("1024x1024");
    await page.getByRole("button", { name: "Generate" }).click();

    const cards = page.locator("figure.result");
    await expect.poll(() => cards.locator("img").count(), { timeout: 15_000 }).toBe(2);
    expect(await cards.count()).toBe(2);
    for (const [i, model] of MODELS.entries()) {
      const card = cards.nth(i);
      expect(await card.locator("figcaption").textContent()).toBe(model);
      // The image really decoded in the browser, at the size the answer's bytes say.
      const decoded = await card.locator("img").evaluate((img: HTMLImageElement) => ({
        complete: img.complete,
        size: `${img.naturalWidth}×${img.naturalHeight}`,
        src: img.src.slice(0, 22),
      }));
      const answer = answers.get(model)!;
      expect(decoded).toEqual({ complete: true, size: answer.size, src: "data:image/png;base64," });
      expect(answer.size).toBe("1024×1024");
      const facts = await card
        .locator("dl.facts")
        .evaluate((dl) =>
          Object.fromEntries(
            [...dl.querySelectorAll("dt")].map((dt) => [
              dt.textContent,
              dt.nextElementSibling?.textContent,
            ]),
          ),
        );
      expect(facts.Size).toBe(answer.size);
      expect(facts.Latency).toMatch(/^\d+ ms$/);
      expect(answer.cost).toMatch(/^\d+(\.\d+)?$/);
      expect(Number(answer.cost)).toBeGreaterThan(0);
      expect(facts.Cost).toBe(`$${answer.cost}`);
    }
    await shot(page, "playground");

    // Up to four models: a fifth cannot be picked.
    const boxes = page.locator("input[name=model]");
    let picked = MODELS.length;
    for (let i = 0; picked < 4; i++) {
      if (!(await boxes.nth(i).isChecked())) {
        await boxes.nth(i).check();
        picked++;
      }
    }
    expect(await page.locator("input[name=model]:not(:checked):not(:disabled)").count()).toBe(0);

    // Readable on a phone: nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(
      390,
    );
    await shot(page, "playground-phone");
    await page.close();
  });

  it("shows a model's error in its place", async () => {
    const page = await newPage();
    await page.goto(`${open.url}/ui/#/playground`);
    await page.getByLabel("Prompt").fill("a lighthouse");
    await page.getByLabel("openai/dall-e-2", { exact: true }).check();
    // dall-e-2 draws at most 1024x1024.
    await page.getByLabel("Size").selectOption("1792x1024");
    await page.getByRole("button", { name: "Generate" }).click();
    const alert = page.locator("figure.result.failed [role=alert]");
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/^Error 400 .*1792x1024/);
    await page.close();
  });

  it("asked for nothing beyond loopback and logged no error", () => {
    expect(requested.length).toBeGreaterThan(0);
    expect(blocked).toEqual([]);
    expect(requested.filter((u) => !isLoopback(u))).toEqual([]);
    expect(unexpectedErrors()).toEqual([]);
  });
});
