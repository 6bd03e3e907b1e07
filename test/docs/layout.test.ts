/**
 * CONTRIBUTING.md's layout is the map a newcomer reads first: every folder and top-level file
 * of src/ (and every room of src/auth/) is on it, and everything on it exists.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const contributing = readFileSync(`${ROOT}CONTRIBUTING.md`, 'utf8');
const block = /## Layout\n\n```\n([\s\S]*?)```/.exec(contributing)?.[1] ?? '';
const listed = block
  .split('\n')
  .map((line) => line.split(/\s+/)[0] ?? '')
  .filter((path) => path.length > 0);

function entries(dir: string): string[] {
  return readdirSync(`${ROOT}${dir}`, { withFileTypes: true }).map((e) =>
    e.isDirectory() ? `${dir}${e.name}/` : `${dir}${e.name}`,
  );
}

describe('CONTRIBUTING.md layout', () => {
  it('has a layout block', () => {
    expect(listed.length).toBeGreaterThan(10);
  });

  it('names every folder and top-level file of src/ and every room of src/auth/', () => {
    const needed = [...entries('src/'), ...entries('src/auth/').filter((p) => p.endsWith('/'))];
    expect(needed.filter((p) => !listed.includes(p))).toEqual([]);
  });

  it('names nothing that does not exist', () => {
    expect(listed.filter((p) => !existsSync(`${ROOT}${p}`))).toEqual([]);
  });
});
