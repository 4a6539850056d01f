/**
 * Where the embedded database lives by default: the user's data directory, so that
 * several gateways started from different working directories (or one started from a
 * read-only one) agree, and nothing is written into a source checkout.
 *
 * - Linux and other Unix: `$XDG_DATA_HOME/imagegate`, else `~/.local/share/imagegate`
 * - macOS: `~/Library/Application Support/imagegate`
 * - Windows: `%LOCALAPPDATA%\imagegate`, else `~\AppData\Local\imagegate`
 */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";

export const DATABASE_FILE = "imagegate.sqlite";
/** The default before this module: inside the working directory. */
export const LEGACY_SPEND_DB = ".imagegate/spend.sqlite";

export function dataDir(
  env: Readonly<Record<string, string | undefined>> = process.env,
  platform: NodeJS.Platform = process.platform,
  home: string = env.HOME || homedir(),
): string {
  if (platform === "win32")
    return join(env.LOCALAPPDATA || join(home, "AppData", "Local"), "imagegate");
  if (platform === "darwin") return join(home, "Library", "Application Support", "imagegate");
  const xdg = env.XDG_DATA_HOME;
  // The XDG spec: a relative path is invalid and must be ignored.
  return join(xdg?.startsWith("/") ? xdg : join(home, ".local", "share"), "imagegate");
}

export interface DefaultPath {
  path: string;
  /** Set when the old default file in the working directory is used instead (say so at startup). */
  legacy?: string;
}

/**
 * The SQLite file to use when the config names none: the data directory's, unless the old
 * default (`.imagegate/spend.sqlite` in the working directory) exists and the new one does
 * not, so that an upgrade keeps the budgets already spent.
 */
export function defaultDatabasePath(
  env: Readonly<Record<string, string | undefined>> = process.env,
  cwd: string = process.cwd(),
): DefaultPath {
  const path = join(dataDir(env), DATABASE_FILE);
  const legacy = resolve(cwd, LEGACY_SPEND_DB);
  if (!existsSync(path) && existsSync(legacy)) return { path: legacy, legacy };
  return { path };
}
