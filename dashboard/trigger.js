// @ts-check
/**
 * The trigger form: POST /federation/wpk with capability, action, params and
 * mode. The hub checks everything; the page only makes sure params is a JSON
 * object before sending, and shows the hub's own message (and details) when
 * it refuses: 401 (sign in), 403 (the token lacks wpk:write), 422 (schema).
 */

/**
 * @param {{ api: ReturnType<typeof import('./api.js').createApi>, capabilities: () => string[] }} opts
 */
export function createTriggerForm(opts) {
  const form = /** @type {HTMLFormElement} */ (document.getElementById('trigger-form'));
  const capability = /** @type {HTMLInputElement} */ (document.getElementById('trigger-capability'));
  const action = /** @type {HTMLInputElement} */ (document.getElementById('trigger-action'));
  const params = /** @type {HTMLTextAreaElement} */ (document.getElementById('trigger-params'));
  const mode = /** @type {HTMLSelectElement} */ (document.getElementById('trigger-mode'));
  const submit = /** @type {HTMLButtonElement} */ (document.getElementById('trigger-submit'));
  const result = /** @type {HTMLElement} */ (document.getElementById('trigger-result'));
  const list = /** @type {HTMLDataListElement} */ (document.getElementById('capability-list'));

  /** @param {'ok'|'error'|'busy'} kind @param {string} text @param {string[]} [details] */
  function say(kind, text, details = []) {
    result.dataset.kind = kind;
    result.replaceChildren(document.createTextNode(text));
    if (details.length > 0) {
      const ul = document.createElement('ul');
      for (const d of details) {
        const li = document.createElement('li');
        li.textContent = d;
        ul.appendChild(li);
      }
      result.appendChild(ul);
    }
  }

  /** @returns {{ ok: true, value: Record<string, unknown>|undefined } | { ok: false, message: string }} */
  function readParams() {
    const text = params.value.trim();
    if (text === '') return { ok: true, value: undefined };
    try {
      const value = JSON.parse(text);
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return { ok: false, message: 'params must be a JSON object, e.g. {"hello": "edge"}' };
      return { ok: true, value };
    } catch (err) {
      return { ok: false, message: `params is not JSON: ${err instanceof Error ? err.message : String(err)}` };
    }
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    send().catch((err) => say('error', err instanceof Error ? err.message : String(err)));
  });

  async function send() {
    const p = readParams();
    if (!p.ok) return say('error', p.message);
    /** @type {import('../lib/wire.js').HttpWpkRequest} */
    const body = { capability: capability.value.trim(), action: action.value.trim(), mode: mode.value === 'all' ? 'all' : 'one' };
    if (p.value !== undefined) body.params = p.value;
    submit.disabled = true;
    say('busy', 'sending…');
    try {
      /** @type {import('./api.js').ApiResult<import('../lib/api.js').ApiWpk>} */
      const res = await opts.api.post('/federation/wpk', body);
      if (res.ok) say('ok', `created ${res.body?.wpk_id ?? 'work package'} (${res.body?.state ?? 'pending'})`);
      else say('error', res.status ? `${res.status}: ${res.message}` : res.message, res.details);
    } finally {
      submit.disabled = false;
    }
  }

  /** Suggestions for the capability field: what the fleet announces. */
  function refreshCapabilities() {
    const caps = opts.capabilities();
    if (list.childElementCount === caps.length && caps.every((c, i) => list.children[i]?.getAttribute('value') === c)) return;
    list.replaceChildren(...caps.map((c) => {
      const o = document.createElement('option');
      o.value = c;
      return o;
    }));
  }

  return { refreshCapabilities };
}
