/**
 * What each gateway key has spent, in USD, for `max_budget`. Kept in an embedded SQLite
 * file (node:sqlite) so budgets survive restarts; `:memory:` for dev and tests.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";

export interface SpendStore {
  spent(key: string): number;
  add(key: string, usd: number): void;
  close(): void;
}

export class SqliteSpendStore implements SpendStore {
  private readonly db: DatabaseSync;
  private readonly select: StatementSync;
  private readonly upsert: StatementSync;

  constructor(path: string) {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    this.db = new DatabaseSync(path);
    this.db.exec(
      "PRAGMA journal_mode = WAL; CREATE TABLE IF NOT EXISTS spend (key TEXT PRIMARY KEY, usd REAL NOT NULL)",
    );
    this.select = this.db.prepare("SELECT usd FROM spend WHERE key = ?");
    this.upsert = this.db.prepare(
      "INSERT INTO spend (key, usd) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET usd = usd + excluded.usd",
    );
  }

  spent(key: string): number {
    const row = this.select.get(key) as { usd: number } | undefined;
    return row?.usd ?? 0;
  }

  add(key: string, usd: number): void {
    if (usd > 0) this.upsert.run(key, usd);
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }
}
