/**
 * The local-filesystem image store, the embedded default: one file per image in one
 * folder, named `<id>.<expires>.<ext>`. The name itself is the metadata (media type from
 * the extension, expiry in epoch seconds, size from the file, ETag from the id, since an
 * id's content never changes), so a restart finds every image again from one directory
 * listing, with no index file to keep consistent.
 *
 * Writes go to `.tmp/` inside the folder and are renamed into place once complete and
 * flushed: a file under its final name is always whole. Disk use is capped: when an
 * image would take the store past `maxBytes`, the images closest to expiry (the oldest)
 * are evicted first, so a URL can die early only when the cap is too small for the TTL's
 * traffic; an image larger than the whole cap is refused.
 *
 * One gateway process per folder: the in-memory index is this process's view.
 */
import { mkdir, open, readdir, rename, rm, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import {
  chunksOf,
  expiryFrom,
  type ImageBody,
  type ImageStore,
  mediaTypeFor,
  newImageName,
  type PutOptions,
  parseImageName,
  type StoredImage,
  storeFull,
} from "./store.ts";

export interface LocalStoreOptions {
  dir: string;
  ttlSeconds: number;
  maxBytes: number;
  now?: () => number;
}

interface Entry {
  id: string;
  ext: string;
  path: string;
  size: number;
  expiresAt: number;
}

/** `<id>.<expires epoch seconds>.<ext>` */
const DISK_NAME = /^([0-9a-f]{32})\.(\d{1,12})\.([a-z0-9]{1,8})$/;
const TMP_DIR = ".tmp";
/** Temp files older than this belong to a write that died with its process. */
const STALE_TMP_MS = 60 * 60 * 1000;

/** Opens (creating if needed) the store folder and indexes the images already in it. */
export async function openLocalStore(options: LocalStoreOptions): Promise<LocalImageStore> {
  const store = new LocalImageStore(options);
  await store.load();
  return store;
}

export class LocalImageStore implements ImageStore {
  readonly #dir: string;
  readonly #tmp: string;
  readonly #ttlSeconds: number;
  readonly #maxBytes: number;
  readonly #now: () => number;
  /** Oldest (soonest to expire) first: eviction takes from the front. */
  readonly #index = new Map<string, Entry>();
  /** Files being removed (evicted, expired on read, swept). */
  readonly #unlinking = new Set<Promise<void>>();
  #used = 0;
  /** Bytes of writes in progress, counted against the cap as they arrive. */
  #pending = 0;

  constructor(options: LocalStoreOptions) {
    this.#dir = options.dir;
    this.#tmp = join(options.dir, TMP_DIR);
    this.#ttlSeconds = options.ttlSeconds;
    this.#maxBytes = options.maxBytes;
    this.#now = options.now ?? Date.now;
  }

  /** Bytes of the images currently stored. */
  get usedBytes(): number {
    return this.#used;
  }

  get count(): number {
    return this.#index.size;
  }

  async load(): Promise<void> {
    await mkdir(this.#tmp, { recursive: true, mode: 0o700 });
    const info = await stat(this.#dir);
    // A folder someone else owns (say a pre-created one in /tmp) could be read or swapped by them.
    if (typeof process.getuid === "function" && info.uid !== process.getuid()) {
      throw new Error(`image store folder ${this.#dir} belongs to another user`);
    }
    const now = this.#now();
    for (const name of await readdir(this.#tmp)) {
      const path = join(this.#tmp, name);
      const st = await stat(path).catch(() => undefined);
      // File times are wall-clock times, whatever clock the store runs on.
      if (st && Date.now() - st.mtimeMs > STALE_TMP_MS) await rm(path, { force: true });
    }
    const found: Entry[] = [];
    for (const dirent of await readdir(this.#dir, { withFileTypes: true })) {
      const match = dirent.isFile() ? DISK_NAME.exec(dirent.name) : null;
      if (!match || mediaTypeFor(match[3]!) === undefined) continue;
      const path = join(this.#dir, dirent.name);
      const expiresAt = Number(match[2]) * 1000;
      if (expiresAt <= now) {
        await rm(path, { force: true });
        continue;
      }
      const st = await stat(path).catch(() => undefined);
      if (st) found.push({ id: match[1]!, ext: match[3]!, path, size: st.size, expiresAt });
    }
    found.sort((a, b) => a.expiresAt - b.expiresAt);
    for (const entry of found) this.#add(entry);
  }

  async put(body: ImageBody, options: PutOptions): Promise<StoredImage> {
    const name = newImageName(options.mediaType);
    const { id, ext } = parseImageName(name)!;
    const expiresAt = expiryFrom(this.#now(), this.#ttlSeconds);
    const tmpPath = join(this.#tmp, `${id}.${process.pid}`);
    const path = join(this.#dir, `${id}.${expiresAt / 1000}.${ext}`);
    let size = 0;
    const file = await open(tmpPath, "wx", 0o600);
    try {
      for await (const chunk of chunksOf(body)) {
        options.signal?.throwIfAborted();
        this.#reserve(chunk.length);
        size += chunk.length;
        for (let offset = 0; offset < chunk.length; ) {
          const { bytesWritten } = await file.write(chunk, offset, chunk.length - offset);
          offset += bytesWritten;
        }
      }
      options.signal?.throwIfAborted();
      await file.datasync();
      await file.close();
      await rename(tmpPath, path);
    } catch (e) {
      this.#pending -= size;
      await file.close().catch(() => {});
      await rm(tmpPath, { force: true });
      await this.#settled();
      throw e;
    }
    this.#pending -= size;
    const entry: Entry = { id, ext, path, size, expiresAt };
    this.#add(entry);
    // Evictions this write caused are off the disk by the time it is done.
    await this.#settled();
    return toStored(entry);
  }

  async head(name: string): Promise<StoredImage | undefined> {
    const entry = this.#live(name);
    return entry && toStored(entry);
  }

  async get(name: string): Promise<{ image: StoredImage; body: Readable } | undefined> {
    const entry = this.#live(name);
    if (entry === undefined) return undefined;
    let file: Awaited<ReturnType<typeof open>>;
    try {
      file = await open(entry.path, "r");
    } catch {
      // Removed behind our back (a person tidying the folder): gone is gone.
      this.#forget(entry);
      return undefined;
    }
    return { image: toStored(entry), body: file.createReadStream() };
  }

  async delete(name: string): Promise<void> {
    const entry = this.#find(name);
    if (entry) await this.#drop(entry);
  }

  async sweep(now = this.#now()): Promise<number> {
    const expired = [...this.#index.values()].filter((e) => e.expiresAt <= now);
    for (const e of expired) void this.#drop(e);
    // Also the removals reads and evictions started: a sweep leaves no expired file behind.
    await this.#settled();
    return expired.length;
  }

  async close(): Promise<void> {}

  #find(name: string): Entry | undefined {
    const parsed = parseImageName(name);
    const entry = parsed && this.#index.get(parsed.id);
    return entry && entry.ext === parsed.ext ? entry : undefined;
  }

  #live(name: string): Entry | undefined {
    const entry = this.#find(name);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > this.#now()) return entry;
    void this.#drop(entry);
    return undefined;
  }

  #add(entry: Entry): void {
    this.#index.set(entry.id, entry);
    this.#used += entry.size;
  }

  #forget(entry: Entry): void {
    if (this.#index.get(entry.id) !== entry) return;
    this.#index.delete(entry.id);
    this.#used -= entry.size;
  }

  #drop(entry: Entry): Promise<void> {
    this.#forget(entry);
    // A stream already reading the file keeps it open; unlinking does not cut it short.
    const done: Promise<void> = unlink(entry.path)
      .catch(() => {})
      .finally(() => this.#unlinking.delete(done));
    this.#unlinking.add(done);
    return done;
  }

  /** Waits for every removal started so far: then what the index forgot is off the disk too. */
  async #settled(): Promise<void> {
    await Promise.all(this.#unlinking);
  }

  /** Counts `bytes` of an incoming write against the cap, evicting the oldest images to fit. */
  #reserve(bytes: number): void {
    const over = () => this.#used + this.#pending + bytes - this.#maxBytes;
    for (const entry of this.#index.values()) {
      if (over() <= 0) break;
      void this.#drop(entry);
    }
    if (over() > 0) throw storeFull(this.#maxBytes);
    this.#pending += bytes;
  }
}

function toStored(entry: Entry): StoredImage {
  return {
    name: `${entry.id}.${entry.ext}`,
    mediaType: mediaTypeFor(entry.ext)!,
    size: entry.size,
    etag: `"${entry.id}"`,
    expiresAt: entry.expiresAt,
  };
}
