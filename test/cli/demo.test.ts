// The README's quick start: `affinityd demo` on loopback, in process.
import assert from 'node:assert/strict';

import { runDemo } from '../../src/cli/demo';
import { addonOrSkip } from '../helpers/addon';

describe('affinityd demo (the quick start)', function () {
  this.timeout(60_000);
  before(function () {
    addonOrSkip(this);
  });

  for (const policy of ['rendezvous', 'round-robin'] as const) {
    it(`routes every link of every bundle to one endpoint, the later links from the table (${policy})`, async () => {
      const lines: string[] = [];
      const code = await runDemo({ clients: 8, links: 3, nodes: 3, linkGapMs: 200, policy, out: (l) => lines.push(l) });
      const last = lines.at(-1)!.trim();
      assert.equal(code, 0, lines.join('\n'));
      assert.match(last, /^8 bundles, 24 links: 0 split\. Decisions: (\d+) local hits/);
      assert.ok(Number(/(\d+) local hits/.exec(last)![1]) >= 12, `later links should be local hits: ${last}`);
      assert.ok(lines.some((l) => /^ready after the bulk sync at start: node 1 \w+/.test(l)));
    });
  }
});
