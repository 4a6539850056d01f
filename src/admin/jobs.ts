/**
 * The management API's background work: budget periods that end are started again (spend
 * back to 0, next reset one `budget_duration` later; checked every second against the
 * earliest reset the key ring knows, so the database is asked only when one is due), and
 * spend-log rows older than the retention are deleted (hourly; the gateway also prunes
 * once at start). With a
 * shared database every replica runs both; a reset applies once (keys.ts moves a period
 * only if no one moved it meanwhile) and pruning twice deletes nothing more.
 */
import type { Database } from "../db/database.ts";
import type { KeysRepository } from "../db/keys.ts";
import { pruneSpendLogs } from "../db/spend-log.ts";
import type { Logger } from "../log/logger.ts";
import type { ApiKeySync } from "./api-keys.ts";

export interface JobOptions {
  database: Database;
  keys: KeysRepository;
  sync: ApiKeySync;
  logger: Logger;
  /** Spend-log rows older than this are deleted. */
  retentionMs: number;
  budgetCheckMs?: number;
  pruneEveryMs?: number;
  now?: () => number;
}

export class AdminJobs {
  readonly #o: JobOptions;
  readonly #now: () => number;
  readonly #timers: NodeJS.Timeout[];
  #resetting = false;
  #pruning: Promise<void> | undefined;

  constructor(options: JobOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#timers = [
      setInterval(() => void this.resetDueBudgets(), options.budgetCheckMs ?? 1000).unref(),
      setInterval(() => void this.prune(), options.pruneEveryMs ?? 3_600_000).unref(),
    ];
  }

  /** Starts the budget periods that ended; returns the tokens reset. */
  async resetDueBudgets(): Promise<string[]> {
    const due = this.#o.sync.nextBudgetReset;
    const now = this.#now();
    if (this.#resetting || due === undefined || due > now) return [];
    this.#resetting = true;
    try {
      const reset = await this.#o.keys.resetDueBudgets(now);
      await this.#o.sync.refresh();
      for (const token of reset)
        this.#o.logger.log("info", "budget period reset", { token, spend: 0 });
      return reset;
    } catch (e) {
      this.#o.logger.log("error", "resetting budgets failed", { error: String(e) });
      return [];
    } finally {
      this.#resetting = false;
    }
  }

  /** Deletes the spend-log rows past the retention. */
  prune(): Promise<void> {
    this.#pruning ??= (async () => {
      try {
        const deleted = await pruneSpendLogs(this.#o.database, this.#now() - this.#o.retentionMs);
        if (deleted > 0)
          this.#o.logger.log("info", "spend log pruned", {
            rows: deleted,
            retention_ms: this.#o.retentionMs,
          });
      } catch (e) {
        this.#o.logger.log("error", "pruning the spend log failed", { error: String(e) });
      } finally {
        this.#pruning = undefined;
      }
    })();
    return this.#pruning;
  }

  /** Stops the timers and waits for a prune in progress. */
  async stop(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    await this.#pruning;
  }
}
