/**
 * The management API's keys as authentication holds them: loaded from the database into the
 * key ring (keys.ts) at start, reloaded after every change this gateway makes (so a
 * regenerated, blocked or deleted key is refused at once) and every `refreshMs` (so changes
 * another replica made to a shared database arrive within that time).
 */
import type { KeyRecord, KeysRepository } from "../db/keys.ts";
import type { ApiKey, KeyRing } from "../auth/keys.ts";

/** How often keys are reloaded for changes made by other replicas. */
export const KEY_REFRESH_MS = 5000;

/** The name a key goes by in logs, metrics and messages: its alias, else its token's start. */
export function keyName(record: Pick<KeyRecord, "token" | "keyAlias">): string {
  return record.keyAlias ?? `key-${record.token.slice(0, 12)}`;
}

export function apiKeyOf(record: KeyRecord): ApiKey {
  return {
    identity: {
      id: record.token,
      name: keyName(record),
      models:
        record.models === undefined || record.models.length === 0
          ? undefined
          : new Set(record.models),
      rpmLimit: record.rpmLimit,
      maxBudget: record.maxBudget,
    },
    blocked: record.blocked,
    expires: record.expires,
  };
}

export class ApiKeySync {
  readonly #repo: KeysRepository;
  readonly #ring: KeyRing;
  readonly #timer: NodeJS.Timeout;
  readonly #onError: (error: unknown) => void;
  /** The earliest budget reset among the keys (epoch ms), for the reset job. */
  nextBudgetReset: number | undefined;
  #loading: Promise<void> | undefined;

  constructor(
    repo: KeysRepository,
    ring: KeyRing,
    options: { refreshMs?: number; onError?: (error: unknown) => void } = {},
  ) {
    this.#repo = repo;
    this.#ring = ring;
    this.#onError = options.onError ?? (() => {});
    this.#timer = setInterval(() => {
      this.refresh().catch(this.#onError);
    }, options.refreshMs ?? KEY_REFRESH_MS).unref();
  }

  /** Reloads every API key; calls made while one load runs wait for a fresh one. */
  async refresh(): Promise<void> {
    const previous = this.#loading;
    const run = (async () => {
      await previous?.catch(() => {});
      const records = await this.#repo.apiKeys();
      this.#ring.setApiKeys(new Map(records.map((r) => [r.token, apiKeyOf(r)])));
      let next: number | undefined;
      for (const r of records) {
        if (r.budgetResetAt !== undefined && (next === undefined || r.budgetResetAt < next))
          next = r.budgetResetAt;
      }
      this.nextBudgetReset = next;
    })();
    this.#loading = run;
    try {
      await run;
    } finally {
      if (this.#loading === run) this.#loading = undefined;
    }
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
