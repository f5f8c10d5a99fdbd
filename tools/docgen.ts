/**
 * `npm run docgen`: lib/API.md from the library's jsii assembly. jsii-docgen looks for the
 * assemblies of the library's dependencies below the library's folder; npm hoists them to the
 * root, so this points it there.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Documentation, Language } from 'jsii-docgen';
import { REPO_ROOT } from './repo-root';

async function main(): Promise<void> {
  const lib = path.join(REPO_ROOT, 'lib');
  const docs = await Documentation.forProject(lib, { assembliesDir: path.join(REPO_ROOT, 'node_modules') });
  const markdown = await docs.toMarkdown({ language: Language.TYPESCRIPT, allSubmodules: true });
  fs.writeFileSync(path.join(lib, 'API.md'), markdown.render());
  console.log('wrote lib/API.md');
}

main().catch((err: Error) => {
  console.error(`docgen: ${err.message}`);
  process.exit(1);
});
