/**
 * Issue 12 §5: the trigger form's placeholders looked like values, so a
 * form that looked filled answered "Please fill out this field". Every
 * placeholder of the form must read as a hint.
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const html = readFileSync(new URL('../dashboard/index.html', import.meta.url), 'utf8');

test('the trigger form\'s placeholders are hints ("e.g." or "optional"), never values', () => {
  const form = html.slice(html.indexOf('<form id="trigger-form"'), html.indexOf('</form>'));
  const placeholders = [...form.matchAll(/placeholder=(?:"([^"]*)"|'([^']*)')/g)].map((m) => m[1] ?? m[2] ?? '');
  assert.ok(placeholders.length >= 2, 'the form has its placeholders');
  for (const p of placeholders) assert.match(p, /^(e\.g\.|optional)/, p);
});

test.run();
