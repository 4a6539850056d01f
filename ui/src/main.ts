/**
 * The console's shell: sign-in, navigation and the page in view. Pages are routed by the
 * URL's fragment (`#/playground`), so the gateway serves one document for all of them.
 * Sign-in asks the gateway itself: a key is kept (in session storage, for this tab only)
 * once an endpoint that needs a key accepts it; an open gateway (`npm run dev`) needs none.
 */
import { forgetKey, listModels, storedKey, storeKey } from "./api.ts";
import { h, replace } from "./dom.ts";
import { type Access, DEFAULT_PAGE, PAGES } from "./pages.ts";

const root = h("div", { class: "app" });
document.body.appendChild(root);
void start();

async function start(): Promise<void> {
  replace(root, h("p", { class: "loading" }, "Connecting to the gateway…"));
  const held = storedKey();
  const probe = await listModels(held ?? null);
  if (probe.ok) return shell(held ? "key" : "open");
  if (probe.status === 401) {
    forgetKey();
    return signIn(held ? "The key this tab held is no longer accepted: sign in again." : undefined);
  }
  replace(
    root,
    h(
      "main",
      { class: "panel" },
      h("h1", {}, "imagegate console"),
      h("p", { role: "alert" }, `The gateway could not be reached: ${probe.error.message}`),
      h("button", { type: "button", onclick: () => void start() }, "Try again"),
    ),
  );
}

function signIn(notice?: string): void {
  const input = h("input", {
    id: "master-key",
    name: "master-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const message = h("p", { class: "message", role: "alert", "aria-live": "assertive" }, notice);
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "panel sign-in", method: "post", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "imagegate console"),
    h("p", {}, "This gateway needs a key. Sign in with its master key."),
    h("label", { for: "master-key" }, "Master key"),
    input,
    message,
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (key === "") {
      replace(message, "Enter the gateway's master key.");
      return;
    }
    button.disabled = true;
    replace(message, "Checking the key…");
    const answer = await listModels(key);
    button.disabled = false;
    if (answer.ok) {
      storeKey(key);
      input.value = "";
      shell("key");
    } else if (answer.status === 401 || answer.status === 403) {
      replace(message, `The gateway refused this key: ${answer.error.message}`);
      input.select();
    } else {
      replace(message, `The key could not be checked: ${answer.error.message}`);
    }
  });
  replace(root, h("main", { class: "center" }, form));
  input.focus();
}

function shell(access: Access): void {
  const links = new Map<string, HTMLAnchorElement>();
  const nav = h(
    "nav",
    { "aria-label": "Console" },
    h(
      "ul",
      {},
      ...PAGES.map((page) => {
        const link = h("a", { href: `#/${page.id}` }, page.title);
        links.set(page.id, link);
        return h("li", {}, link);
      }),
    ),
  );
  const status =
    access === "open"
      ? h("span", { class: "access" }, "Open gateway: no key needed")
      : h(
          "button",
          {
            type: "button",
            class: "sign-out",
            onclick: () => {
              forgetKey();
              window.removeEventListener("hashchange", show);
              signIn("Signed out.");
            },
          },
          "Sign out",
        );
  const main = h("main", { id: "main", tabindex: -1 });
  const skip = (event: Event) => {
    event.preventDefault();
    main.focus();
  };
  replace(
    root,
    h("a", { class: "skip", href: "#main", onclick: skip }, "Skip to the page"),
    h("header", { class: "top" }, h("span", { class: "brand" }, "imagegate"), nav, status),
    main,
  );

  let first = true;
  function show(): void {
    const id = location.hash.replace(/^#\/?/, "");
    const page = PAGES.find((p) => p.id === id);
    if (page === undefined) {
      history.replaceState(null, "", `#/${DEFAULT_PAGE}`);
      show();
      return;
    }
    for (const [pageId, link] of links) {
      if (pageId === page.id) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    document.title = `${page.title} · imagegate console`;
    const heading = h("h1", { tabindex: -1 }, page.title);
    replace(main, heading, page.render(access));
    // After a click or key press in the navigation, continue from the page's heading.
    if (!first) heading.focus();
    first = false;
  }
  window.addEventListener("hashchange", show);
  show();
}
