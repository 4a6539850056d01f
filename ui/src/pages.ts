/**
 * The console's pages, in navigation order. A page renders into the main region from
 * what the gateway answers (its public API and its management API), and from nothing else:
 * no sample data ever stands in for an answer.
 */
import { deployments } from "./deployments.ts";
import { keys } from "./keys.ts";
import { logs } from "./logs.ts";
import { overview } from "./overview.ts";
import { playground } from "./playground.ts";

/** How the console reaches this gateway: open (no key at all, as dev) or with the master key. */
export type Access = "open" | "key";

export interface Page {
  id: string;
  title: string;
  render(access: Access): Node;
}

export const PAGES: readonly Page[] = [
  { id: "overview", title: "Overview", render: overview },
  { id: "deployments", title: "Deployments", render: deployments },
  { id: "keys", title: "Keys", render: keys },
  { id: "logs", title: "Logs", render: logs },
  { id: "playground", title: "Playground", render: playground },
];

export const DEFAULT_PAGE = "playground";
