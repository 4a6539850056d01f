/**
 * The import graph of a source tree, read with regular expressions over import statements
 * (TypeScript 7 has no JS compiler API). Type-only imports count: they tie two files
 * together for a reader just the same. Used by test/architecture.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";

/** Specifiers of `import … from`, `export … from`, bare `import "…"` and `import("…")`. */
export function importSpecifiers(source: string): string[] {
  const patterns = [
    /^\s*import\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?["']([^"']+)["']/gm,
    /^\s*export\s+(?:type\s+)?[\w*{}\s,$]+?\s+from\s+["']([^"']+)["']/gm,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
  ];
  return patterns.flatMap((pattern) => [...source.matchAll(pattern)].map((m) => m[1]!));
}

/**
 * The `.ts` files under `dir` by path relative to it, with their text; declaration files,
 * `node_modules` and the `excluded` paths (relative to `dir`) left out.
 */
export function sourceFiles(dir: string, excluded: readonly string[] = []): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.name === "node_modules" || excluded.includes(relative(dir, path))) continue;
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts"))
        files.set(relative(dir, path), readFileSync(path, "utf8"));
    }
  };
  walk(dir);
  return files;
}

/** File → the files among `files` it imports (a `.js` specifier names its `.ts` source). */
export function importGraph(files: ReadonlyMap<string, string>): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const [file, source] of files) {
    const targets = new Set<string>();
    for (const spec of importSpecifiers(source)) {
      if (!spec.startsWith(".")) continue;
      const target = join(dirname(file), spec).replace(/\.js$/, ".ts");
      if (files.has(target)) targets.add(target);
    }
    graph.set(file, targets);
  }
  return graph;
}

/** A file's folder: its first directory ("." for a file at the top). */
export function folderOf(file: string): string {
  const parts = file.split(sep);
  return parts.length > 1 ? parts[0]! : ".";
}

/** Folder → the folders its files import, leaving out the `from → to` edges in `ignored`. */
export function folderGraph(
  graph: ReadonlyMap<string, ReadonlySet<string>>,
  ignored: readonly string[] = [],
): Map<string, Set<string>> {
  const folders = new Map<string, Set<string>>();
  for (const [file, targets] of graph) {
    const from = folderOf(file);
    const edges = folders.get(from) ?? new Set<string>();
    folders.set(from, edges);
    for (const target of targets) {
      const to = folderOf(target);
      if (to !== from && !ignored.includes(`${from} → ${to}`)) edges.add(to);
    }
  }
  return folders;
}

/** Every cycle's members, sorted: strongly connected components of more than one node, or a node that imports itself. */
export function cycles(graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  // Tarjan's algorithm, iterative so a long chain cannot overflow the stack.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const found: string[][] = [];
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work: { node: string; edges: Iterator<string> }[] = [];
    const visit = (node: string) => {
      index.set(node, index.size);
      low.set(node, index.get(node)!);
      stack.push(node);
      onStack.add(node);
      work.push({ node, edges: (graph.get(node) ?? new Set<string>()).values() });
    };
    visit(start);
    while (work.length > 0) {
      const top = work.at(-1)!;
      const step = top.edges.next();
      if (!step.done) {
        if (!index.has(step.value)) visit(step.value);
        else if (onStack.has(step.value))
          low.set(top.node, Math.min(low.get(top.node)!, index.get(step.value)!));
        continue;
      }
      work.pop();
      const parent = work.at(-1);
      if (parent !== undefined)
        low.set(parent.node, Math.min(low.get(parent.node)!, low.get(top.node)!));
      if (low.get(top.node) !== index.get(top.node)) continue;
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== top.node);
      if (component.length > 1 || graph.get(top.node)?.has(top.node)) found.push(component.sort());
    }
  }
  return found;
}
