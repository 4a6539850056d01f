/**
 * Builds the operator console (`ui/src/`) into `ui/dist/`: `index.html` and content-hashed
 * assets, which the gateway serves at `/ui/` (src/server/console.ts). Run by `npm ci`
 * (prepare), `npm run dev` and the console's tests; takes well under a second. Without
 * esbuild (an install with `--omit=dev`) it says so in one line and builds nothing.
 */
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const UI = fileURLToPath(new URL("./", import.meta.url));

export interface ConsoleBuild {
  /** Every file written, by its name under `dist/`, with its size in bytes. */
  files: Record<string, number>;
  bytes: number;
  gzipBytes: number;
}

export async function buildConsole(outDir = `${UI}dist/`): Promise<ConsoleBuild> {
  const esbuild = await import("esbuild");
  await rm(outDir, { recursive: true, force: true });
  await mkdir(`${outDir}assets`, { recursive: true });
  const result = await esbuild.build({
    entryPoints: [`${UI}src/main.ts`, `${UI}src/console.css`],
    outdir: `${outDir}assets`,
    entryNames: "[name]-[hash]",
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2022",
    metafile: true,
    legalComments: "none",
    // The one bundled library's notice (its own comment is not a legal comment esbuild keeps).
    banner: { js: "/*! includes uPlot, (c) 2025 Leon Sorokin, MIT License */" },
    logLevel: "warning",
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
  const js = outputs.find((n) => n.endsWith(".js"));
  const css = outputs.find((n) => n.endsWith(".css"));
  if (js === undefined || css === undefined) throw new Error(`console build wrote ${outputs}`);
  const html = (await readFile(`${UI}index.html`, "utf8"))
    .replace("{{JS}}", js)
    .replace("{{CSS}}", css);
  await writeFile(`${outDir}index.html`, html);

  const files: Record<string, number> = {};
  let bytes = 0;
  let gzipBytes = 0;
  for (const name of ["index.html", ...outputs.map((n) => `assets/${n}`)]) {
    const body = await readFile(`${outDir}${name}`);
    files[name] = body.length;
    bytes += body.length;
    gzipBytes += gzipSync(body).length;
  }
  return { files, bytes, gzipBytes };
}

async function hasEsbuild(): Promise<boolean> {
  try {
    await import("esbuild");
    return true;
  } catch {
    return false;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (!(await hasEsbuild())) {
    console.log("console: not built (esbuild, a development dependency, is not installed)");
  } else {
    const built = await buildConsole();
    const kB = (n: number) => (n / 1024).toFixed(1);
    console.log(
      `console: built ui/dist/ (${kB(built.bytes)} kB, ${kB(built.gzipBytes)} kB gzipped)`,
    );
  }
}
