/**
 * The operator console (`/ui/`) in a real browser: Debian's chromium driven by
 * playwright-core (never a downloaded browser), against gateways whose providers are all
 * emulated exactly as `npm run dev` wires them: one open (as dev is), one with a master
 * key. Sign-in with a right and a wrong key, the playground drawing with two providers
 * side by side, keyboard navigation, the response headers, and throughout: no request
 * leaves loopback and the page logs no error. Screenshots of every page go to
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

async function devGateway(extraGeneral = ""): Promise<Gateway> {
  const yaml = providers.configYaml.replace(
    "general_settings:\n",
    `general_settings:\n${extraGeneral}`,
  );
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

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

beforeAll(async () => {
  built = await buildConsole();
  providers = await startDevProviders(catalog);
  open = await devGateway();
  keyed = await devGateway("  master_key: os.environ/IMAGEGATE_MASTER_KEY\n");
}, 60_000);

afterAll(async () => {
  await Promise.all([open?.shutdown(1000), keyed?.shutdown(1000)]);
  await providers?.close();
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

  it("needs no sign-in on an open gateway, and every page but the playground says it awaits the management API", async () => {
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
      const coming = page.getByRole("heading", { name: "Needs the management API (coming)" });
      expect(await coming.count()).toBe(title === "Playground" ? 0 : 1);
      if (title !== "Playground") await shot(page, title.toLowerCase());
    }
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
