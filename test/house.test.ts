/**
 * The shape of the house, checked like behaviour: no import circles, short functions on the
 * request path, a README that fits on a few screens, and scripts that work right after `npm ci`.
 * Imports are read with the TypeScript compiler's own pre-processor (every `import`, `export …
 * from`, `require` and `import()`), so a type-only import counts too: a circle of types is still
 * a circle in the design.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

const ROOT = path.resolve(__dirname, '..');
/** Where the code lives; tests and generated files are not rooms of the house. */
const CODE_DIRS = ['apps', 'lib/src', 'tools', 'scripts', 'bench'];
const SKIP = new Set(['node_modules', 'build', 'dist']);
/** The request path: every function here reads at a glance. */
const REQUEST_PATH_DIR = 'apps/sidecar/src';
const MAX_FUNCTION_LINES = 80;
const MAX_README_LINES = 300;

function codeFiles(): string[] {
  const out: string[] = [path.join(ROOT, 'main.ts')];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (SKIP.has(entry.name)) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(full);
    }
  };
  for (const dir of CODE_DIRS) walk(path.join(ROOT, dir));
  return out;
}

/** A relative specifier resolved as TypeScript does for our sources; undefined for a package. */
function resolveLocal(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(from), specifier);
  for (const candidate of [`${base}.ts`, path.join(base, 'index.ts')]) if (fs.existsSync(candidate)) return candidate;
  return undefined;
}

function importGraph(files: readonly string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
    const targets = info.importedFiles.map((i) => resolveLocal(file, i.fileName)).filter((t): t is string => t !== undefined);
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

/** Every elementary circle's files, found by depth-first search (each reported once). */
function circles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): void => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') found.push(stack.slice(stack.indexOf(next)));
      else if (state.get(next) === undefined) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of graph.keys()) if (state.get(node) === undefined) visit(node);
  return found;
}

interface FunctionSize {
  readonly where: string;
  readonly lines: number;
}

function functionSizes(file: string): FunctionSize[] {
  const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const sizes: FunctionSize[] = [];
  const lineOf = (pos: number) => source.getLineAndCharacterOfPosition(pos).line + 1;
  const nameOf = (node: ts.Node): string => {
    const named = (node as { name?: ts.Node }).name;
    if (named !== undefined) return named.getText(source);
    const parent = node.parent;
    if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent)) return parent.name.getText(source);
    return '(anonymous)';
  };
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && (node as ts.FunctionLikeDeclaration).body !== undefined) {
      const start = lineOf(node.getStart(source));
      sizes.push({ where: `${path.relative(ROOT, file)}:${start} ${nameOf(node)}`, lines: lineOf(node.getEnd()) - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return sizes;
}

describe('the house', () => {
  const files = codeFiles();

  test('the finder sees the code it checks', () => {
    const rel = files.map((f) => path.relative(ROOT, f));
    expect(rel).toEqual(expect.arrayContaining(['main.ts', 'apps/sidecar/src/server.ts', 'lib/src/index.ts', 'tools/launcher.ts']));
    const server = importGraph(files).get(path.join(ROOT, 'apps/sidecar/src/server.ts')) ?? [];
    // A relative import and a folder's index.ts both resolve.
    expect(server).toEqual(expect.arrayContaining([path.join(ROOT, 'apps/sidecar/src/authenticate.ts'), path.join(ROOT, 'lib/src/contract/index.ts')]));
  });

  test('no import circles in apps/, lib/src/, tools/, scripts/, bench/ or main.ts', () => {
    const found = circles(importGraph(files)).map((c) => c.map((f) => path.relative(ROOT, f)).join(' -> '));
    expect(found).toEqual([]);
  });

  test('the circle finder finds a circle', () => {
    const a = '/a.ts';
    const b = '/b.ts';
    expect(circles(new Map([[a, [b]], [b, [a]]]))).toEqual([[a, b]]);
    expect(circles(new Map([[a, [b]], [b, []]]))).toEqual([]);
  });

  test(`every function on the request path (${REQUEST_PATH_DIR}) is at most ${MAX_FUNCTION_LINES} lines`, () => {
    const long = files
      .filter((f) => path.relative(ROOT, f).startsWith(REQUEST_PATH_DIR))
      .flatMap(functionSizes)
      .filter((s) => s.lines > MAX_FUNCTION_LINES)
      .map((s) => `${s.where}: ${s.lines} lines`);
    expect(long).toEqual([]);
  });

  test(`README.md is at most ${MAX_README_LINES} lines`, () => {
    const lines = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n').length;
    expect(lines).toBeLessThanOrEqual(MAX_README_LINES);
  });

  test('every package.json script that runs compiled output builds it first', () => {
    const scripts: Record<string, string> = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts;
    // Right after `npm ci` nothing is compiled: build/ and lib/build/ do not exist.
    const needsBuild = (command: string) => /\bbuild\//.test(command) || /\btsc\b/.test(command) || /\bcdk8s synth\b/.test(command) || /\btsx\b/.test(command);
    const buildsFirst = (command: string) => /^npm run (build|build:lib)( |$)/.test(command) || command.startsWith('npm run build --workspace lib');
    const broken = Object.entries(scripts)
      .filter(([name, command]) => name !== 'build:lib' && needsBuild(command) && !buildsFirst(command))
      .map(([name, command]) => `${name}: ${command}`);
    expect(broken).toEqual([]);
  });
});
