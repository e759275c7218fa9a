/** One error type with a stable code: what library users test, and how errors reach the log. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHub } from '../hub/index.js';
import { EdgefedError, isEdgefedError } from '../lib/errors.js';
import { errorFields } from '../lib/log.js';
import { parseDuration } from '../lib/duration.js';
import { HttpError } from '../server/http/respond.js';
import { WpkRequestError } from '../hub/index.js';

const test = suite('errors');

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

test('configuration errors are EdgefedErrors: test err.code, the message says what to do', () => {
  const err = thrown(() => createHub({ connect: () => { throw new Error('unused'); } }));
  assert.ok(isEdgefedError(err, 'EDGEFED_ERR_HUB_CONFIG'), String(err));
  assert.match((err as EdgefedError).message, /^EDGEFED_ERR_HUB_CONFIG: give the hub a dataDir/);
  assert.ok(isEdgefedError(thrown(() => parseDuration('soon')), 'EDGEFED_ERR_DURATION'));
});

test('the refusal classes share the type and keep their own fields', () => {
  const wpk = new WpkRequestError(409, 'EDGEFED_ERR_WPK_FINISHED', 'already ended');
  assert.instance(wpk, EdgefedError);
  assert.is(wpk.code, 'EDGEFED_ERR_WPK_FINISHED');
  assert.is(wpk.status, 409);
  assert.is(wpk.detail, 'already ended', 'the API answers the words without the code beside `code`');
  const http = new HttpError(404, 'EDGEFED_ERR_NOT_FOUND', 'no route /x');
  assert.ok(isEdgefedError(http, 'EDGEFED_ERR_NOT_FOUND'));
  assert.not.ok(isEdgefedError(http, 'EDGEFED_ERR_SCHEMA'));
});

test('log fields: an expected error gives its code, an unexpected one its stack', () => {
  const expected = errorFields(thrown(() => parseDuration('soon')));
  assert.is(expected.code, 'EDGEFED_ERR_DURATION');
  assert.is(expected.stack, undefined);
  const unexpected = errorFields(new TypeError('x is not a function'));
  assert.match(unexpected.stack ?? '', /TypeError: x is not a function\n\s+at /);
  assert.equal(errorFields('a string'), { err: 'a string' });
});

test.run();
