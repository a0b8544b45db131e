// publishPackage copies a finished package to <out>/<name>: exactly the files its manifest lists (plus the
// manifest), each a regular file inside the package — never a path or a link that leads elsewhere.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishPackage } from '../../src/stages/package.js';
import { cleanTempDirs, tempDir, treeDigest, writeFakePackage } from '../helpers/package.js';

let work: string;
beforeAll(async () => {
  work = await tempDir('phi-forge-publish-');
  await writeFile(join(work, 'secret.txt'), 'secret bytes');
});
afterAll(cleanTempDirs);

const secretEntry = { size: 12, sha256: createHash('sha256').update('secret bytes').digest('hex') };

async function editManifest(dir: string, edit: (m: { files: { path: string; size: number; sha256: string }[] }) => void): Promise<void> {
  const file = join(dir, 'manifest.json');
  const m = JSON.parse(await readFile(file, 'utf8')) as Parameters<typeof edit>[0];
  edit(m);
  await writeFile(file, JSON.stringify(m, null, 2));
}

describe('publishPackage', () => {
  it('copies the manifest files and manifest.json, not stray files', async () => {
    const pkg = await writeFakePackage(join(work, 'stage', 'ok'), { target: 'cpu' });
    const expected = await treeDigest(pkg);
    await writeFile(join(pkg, 'stage.json'), '{}');
    const dest = await publishPackage(pkg, join(work, 'out'), 'tiny-test-cpu');
    expect(await treeDigest(dest)).toEqual(expected);
  });

  it('refuses a manifest path that leaves the package folder, and publishes nothing', async () => {
    const pkg = await writeFakePackage(join(work, 'stage', 'escaping'), { target: 'cpu' });
    await editManifest(pkg, (m) => m.files.unshift({ path: '../../secret.txt', ...secretEntry }));
    const out = join(work, 'out-escaping');
    await expect(publishPackage(pkg, out, 'tiny-test-cpu')).rejects.toMatchObject({
      code: 'UNSAFE_PATH',
      message: expect.stringContaining('files[0].path "../../secret.txt" must be a relative path inside the folder'),
    });
    expect(await readdir(out)).toEqual([]);
  });

  it('refuses a listed file that is a symbolic link out of the package', async () => {
    const pkg = await writeFakePackage(join(work, 'stage', 'linked'), { target: 'cpu' });
    await mkdir(join(pkg, 'sub'));
    await symlink(join(work, 'secret.txt'), join(pkg, 'sub', 'extra.txt'));
    await editManifest(pkg, (m) => m.files.push({ path: 'sub/extra.txt', ...secretEntry }));
    const out = join(work, 'out-linked');
    await expect(publishPackage(pkg, out, 'tiny-test-cpu')).rejects.toMatchObject({
      code: 'PACKAGE_UNSAFE_FILE',
      message: expect.stringMatching(/"sub\/extra\.txt".*sub\/extra\.txt is a symbolic link/),
    });
    expect(await readdir(out)).toEqual([]);
  });
});
