/**
 * The library as jsii sees it: the assembly `npm run build:lib` writes (lib/.jsii), the API reference
 * generated from it (lib/API.md, committed), and the language bindings jsii-pacmak generates from it.
 *
 * The bindings cannot be built here (`jsii-pacmak --targets python` needs setuptools~=75.3.2, build,
 * twine and the `jsii` runtime from PyPI; Maven Central, NuGet and the Go proxy are unreachable), so
 * this runs the nearest real thing: `jsii-pacmak --code-only`, the same code generation without the
 * language toolchains, and checks the generated sources declare the public API.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { LIB_DIR, assertLibBuilt, repoBin, run } from './support/package-tarball';
import { TOOL_TEST_TIMEOUT_MS } from '../tools/waits';

const FQN = 'cdk8s-sidecar-app';
const libPkg = JSON.parse(fs.readFileSync(path.join(LIB_DIR, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  jsii: { targets: { python: { module: string }; java: { package: string }; dotnet: { namespace: string }; go: { moduleName: string } } };
};

/** The part of the jsii assembly schema this test reads. */
interface Assembly {
  schema: string;
  name: string;
  version: string;
  targets?: Record<string, unknown>;
  types?: Record<string, { kind: string; datatype?: boolean; base?: string; methods?: Array<{ name: string }>; members?: Array<{ name: string }> }>;
}

/** @jsii/spec, resolved from jsii-pacmak: the reader (and schema validator) the jsii tools use. */
function jsiiSpec(): { loadAssemblyFromFile(file: string, validate?: boolean): Assembly } {
  return require(require.resolve('@jsii/spec', { paths: [path.dirname(require.resolve('jsii-pacmak/package.json'))] }));
}

let work: string;
beforeAll(() => {
  assertLibBuilt();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'sidecar-app-jsii-'));
});
afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('the jsii assembly (lib/.jsii)', () => {
  let assembly: Assembly;
  beforeAll(() => {
    // Validates the file against the jsii assembly schema; throws on an invalid one.
    assembly = jsiiSpec().loadAssemblyFromFile(path.join(LIB_DIR, '.jsii'), true);
  });

  test('is a valid assembly of this package and version', () => {
    expect(assembly.schema).toBe('jsii/0.10.0');
    expect(assembly.name).toBe(libPkg.name);
    expect(assembly.version).toBe(libPkg.version);
  });

  test('SidecarApp is a Construct class with allowAdminFrom and allowMainFrom', () => {
    const app = assembly.types?.[`${FQN}.SidecarApp`];
    expect(app).toMatchObject({ kind: 'class', base: 'constructs.Construct' });
    expect(app?.methods?.map((m) => m.name)).toEqual(expect.arrayContaining(['allowAdminFrom', 'allowMainFrom']));
  });

  test('SidecarAppProps is a data type (struct) and LogLevel an enum', () => {
    expect(assembly.types?.[`${FQN}.SidecarAppProps`]).toMatchObject({ kind: 'interface', datatype: true });
    const logLevel = assembly.types?.[`${FQN}.LogLevel`];
    expect(logLevel).toMatchObject({ kind: 'enum' });
    expect(logLevel?.members?.map((m) => m.name)).toEqual(expect.arrayContaining(['INFO', 'DEBUG', 'SILENT']));
  });

  test('targets python, java, dotnet and go (and js)', () => {
    expect(Object.keys(assembly.targets ?? {}).sort()).toEqual(['dotnet', 'go', 'java', 'js', 'python']);
  });
});

describe('lib/API.md', () => {
  /**
   * jsii-docgen, run the way lib's `docgen` script runs it (`jsii-docgen --output API.md` with the
   * package as cwd), into a temp file. jsii-docgen finds the assemblies of the dependencies by
   * globbing `**\/.jsii` below its cwd only, and npm hoists lib's dependencies to the root
   * node_modules, so (as in lib/ itself, where it fails) it would find none. The cwd is therefore a
   * stand-in for lib/ with its dependencies installed: lib's package.json and .jsii, and a
   * node_modules with the assembly's dependency closure as lib resolves it (not the whole root
   * node_modules, where the workspace link would be a second copy of this very assembly).
   */
  test('is what jsii-docgen generates from the current assembly', async () => {
    const stage = path.join(work, 'docgen');
    fs.mkdirSync(path.join(stage, 'node_modules'), { recursive: true });
    fs.symlinkSync(path.join(LIB_DIR, 'package.json'), path.join(stage, 'package.json'));
    fs.symlinkSync(path.join(LIB_DIR, '.jsii'), path.join(stage, '.jsii'));
    const { dependencyClosure = {} } = JSON.parse(fs.readFileSync(path.join(LIB_DIR, '.jsii'), 'utf8')) as { dependencyClosure?: Record<string, unknown> };
    for (const dep of Object.keys(dependencyClosure)) {
      const installed = path.dirname(require.resolve(`${dep}/package.json`, { paths: [LIB_DIR] }));
      fs.mkdirSync(path.dirname(path.join(stage, 'node_modules', dep)), { recursive: true });
      fs.symlinkSync(installed, path.join(stage, 'node_modules', dep), 'dir');
    }
    const generated = path.join(work, 'API.md');
    await run(repoBin('jsii-docgen'), ['--output', generated], { cwd: stage });

    const committedFile = path.join(LIB_DIR, 'API.md');
    const committed = fs.existsSync(committedFile) ? fs.readFileSync(committedFile) : Buffer.alloc(0);
    const fresh = fs.readFileSync(generated);
    if (!committed.equals(fresh)) {
      const [a, b] = [committed.toString('utf8').split('\n'), fresh.toString('utf8').split('\n')];
      let line = 0;
      while (line < Math.max(a.length, b.length) && a[line] === b[line]) line += 1;
      throw new Error(
        `lib/API.md is out of date with the library's API: run \`npm run docgen\` and commit lib/API.md.\n` +
          `First difference at line ${line + 1}:\n  committed: ${JSON.stringify(a[line])}\n  generated: ${JSON.stringify(b[line])}`,
      );
    }
    expect(fresh.toString('utf8')).toContain('### SidecarApp');
  }, TOOL_TEST_TIMEOUT_MS);
});

describe('language bindings (jsii-pacmak --code-only)', () => {
  const outdir = () => path.join(work, 'pacmak');
  const read = (...parts: string[]) => fs.readFileSync(path.join(outdir(), ...parts), 'utf8');

  beforeAll(async () => {
    // --no-npmignore: pacmak would otherwise write lib/.npmignore; --no-fingerprint: nothing to skip in a fresh dir.
    // About 1.3 s for all four targets (generated in parallel).
    await run(repoBin('jsii-pacmak'), ['--code-only', '--outdir', outdir(), '--no-npmignore', '--no-fingerprint', LIB_DIR], { cwd: LIB_DIR });
  }, TOOL_TEST_TIMEOUT_MS);

  test('python: the module declares class SidecarApp (a Construct) with allow_admin_from, and the LogLevel enum', () => {
    const { module } = libPkg.jsii.targets.python;
    const found = fs
      .readdirSync(path.join(outdir(), 'python'), { recursive: true, encoding: 'utf8' })
      .filter((f) => path.basename(f) === '__init__.py' && path.basename(path.dirname(f)) === module);
    expect(found).toEqual([path.join('src', module, '__init__.py')]);
    const init = read('python', found[0]);

    const classBody = (name: string): string => {
      const start = init.search(new RegExp(`^class ${name}\\b`, 'm'));
      expect(start).toBeGreaterThanOrEqual(0);
      // Up to the next top-level statement (a decorator, class, def or assignment) after the class line.
      const rest = init.slice(init.indexOf('\n', start) + 1);
      const end = rest.search(/^[@A-Za-z_]/m);
      return end < 0 ? rest : rest.slice(0, end);
    };
    expect(init).toMatch(/^class SidecarApp\(\s*_constructs_\w+\.Construct,\s*metaclass=jsii\.JSIIMeta,\s*jsii_type="cdk8s-sidecar-app\.SidecarApp",\s*\):/m);
    const app = classBody('SidecarApp');
    expect(app).toMatch(/@jsii\.member\(jsii_name="allowAdminFrom"\)\s+def allow_admin_from\(\s*self,\s*peer: "_cdk8s_plus_28_\w+\.INetworkPolicyPeer",\s*\) -> None:/);
    expect(app).toMatch(/@jsii\.member\(jsii_name="allowMainFrom"\)\s+def allow_main_from\(/);

    expect(init).toMatch(/^@jsii\.enum\(jsii_type="cdk8s-sidecar-app\.LogLevel"\)\nclass LogLevel\(enum\.Enum\):/m);
    const logLevel = classBody('LogLevel');
    for (const member of ['FATAL', 'ERROR', 'WARN', 'INFO', 'DEBUG', 'TRACE', 'SILENT']) expect(logLevel).toMatch(new RegExp(`^    ${member} = "${member}"$`, 'm'));

    expect(init).toMatch(/^@jsii\.data_type\(\s*jsii_type="cdk8s-sidecar-app\.SidecarAppProps",[^]*?\)\nclass SidecarAppProps:/m);
    expect(classBody('SidecarAppProps')).toMatch(/admin_port_allowed_from: typing\.Optional\[typing\.Sequence\["_cdk8s_plus_28_\w+\.INetworkPolicyPeer"\]\] = None,/);
  });

  test('python: the distribution embeds the npm tarball and requires the peers and the jsii runtime', () => {
    const { module } = libPkg.jsii.targets.python;
    expect(fs.existsSync(path.join(outdir(), 'python', 'src', module, '_jsii', `${libPkg.name}@${libPkg.version}.jsii.tgz`))).toBe(true);
    const setup = read('python', 'setup.py');
    for (const dist of ['cdk8s', 'cdk8s-plus-28', 'constructs', 'jsii']) expect(setup).toMatch(new RegExp(`"${dist}>=[^"]*"`));
  });

  test('java, dotnet and go: SidecarApp extends Construct and has allowAdminFrom; LogLevel is an enum', () => {
    const java = path.join('java', 'src', 'main', 'java', ...libPkg.jsii.targets.java.package.split('.'));
    expect(read(java, 'SidecarApp.java')).toMatch(/public class SidecarApp extends software\.constructs\.Construct \{[^]*public void allowAdminFrom\(/);
    expect(read(java, 'LogLevel.java')).toMatch(/public enum LogLevel \{/);

    const { namespace } = libPkg.jsii.targets.dotnet;
    const dotnet = path.join('dotnet', namespace, ...namespace.split('.'));
    expect(read(dotnet, 'SidecarApp.cs')).toMatch(/public class SidecarApp : Constructs\.Construct[^]*public virtual void AllowAdminFrom\(/);
    expect(read(dotnet, 'LogLevel.cs')).toMatch(/public enum LogLevel\b/);

    const go = path.join('go', 'cdk8ssidecarapp');
    expect(read(go, 'go.mod')).toContain(`module ${libPkg.jsii.targets.go.moduleName}/cdk8ssidecarapp`);
    expect(read(go, 'SidecarApp.go')).toMatch(/type SidecarApp interface \{\s*constructs\.Construct[^]*AllowAdminFrom\(peer cdk8splus28\.INetworkPolicyPeer\)/);
    expect(read(go, 'LogLevel.go')).toMatch(/type LogLevel string/);
  });
});
