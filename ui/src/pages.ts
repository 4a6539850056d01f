/**
 * The console's pages, in navigation order. A page renders into the main region; the
 * pages that read the management API (keys, spend, logs, deployment state) say so until
 * that API exists, rather than showing made-up numbers. Each becomes its own module then.
 */
import { h } from "./dom.ts";
import { deployments } from "./deployments.ts";
import { keys } from "./keys.ts";
import { overview } from "./overview.ts";
import { playground } from "./playground.ts";

/** How the console reaches this gateway: open (no key at all, as dev) or with the master key. */
export type Access = "open" | "key";

export interface Page {
  id: string;
  title: string;
  render(access: Access): Node;
}

/** A page whose data comes from the management API, which this gateway does not serve yet. */
function awaitingManagementApi(id: string, title: string, shows: string): Page {
  return {
    id,
    title,
    render: () =>
      h(
        "section",
        { class: "panel coming", "aria-labelledby": `${id}-coming` },
        h("h2", { id: `${id}-coming` }, "Needs the management API (coming)"),
        h("p", {}, `This page will show ${shows}.`),
        h(
          "p",
          {},
          "It reads the gateway's management API, which this version does not serve yet, so there is nothing to show: no sample data stands in for it.",
        ),
      ),
  };
}

export const PAGES: readonly Page[] = [
  { id: "overview", title: "Overview", render: overview },
  { id: "deployments", title: "Deployments", render: deployments },
  { id: "keys", title: "Keys", render: keys },
  awaitingManagementApi(
    "logs",
    "Logs",
    "recent requests, filtered by key, model and status, and each request's attempts",
  ),
  { id: "playground", title: "Playground", render: playground },
];

export const DEFAULT_PAGE = "playground";
