// @ts-check
/**
 * The operator's token. Kept in sessionStorage: it lives as long as the tab,
 * is never written to disk by the page, and other tabs do not see it.
 * The sign-in box shows when the feed or a call answers 401 (or 403 for the feed).
 */

export const TOKEN_KEY = 'edgefed.dashboard.token';

/**
 * @param {{ onChange: () => void }} opts
 */
export function createAuth(opts) {
  const box = /** @type {HTMLElement} */ (document.getElementById('signin'));
  const form = /** @type {HTMLFormElement} */ (document.getElementById('signin-form'));
  const input = /** @type {HTMLTextAreaElement} */ (document.getElementById('signin-token'));
  const message = /** @type {HTMLElement} */ (document.getElementById('signin-message'));
  const cancel = /** @type {HTMLButtonElement} */ (document.getElementById('signin-cancel'));
  const signOutButton = /** @type {HTMLButtonElement} */ (document.getElementById('signout'));
  const signInButton = /** @type {HTMLButtonElement} */ (document.getElementById('signin-open'));

  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch {
      return null; // storage disabled: the page still works on a hub without auth
    }
  }

  /** @param {string|null} value */
  function store(value) {
    try {
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // storage disabled: nothing to keep
    }
    showButtons();
  }

  /** What the hub said of its auth ('jwt' | 'none'); unknown until the first snapshot. */
  let hubAuth = '';

  function showButtons() {
    const has = token() !== null;
    signOutButton.hidden = !has;
    // A hub without auth needs no token: no "Sign in" to puzzle over.
    signInButton.hidden = has || hubAuth === 'none';
  }

  /** @param {string} mode */
  function setHubAuth(mode) {
    hubAuth = mode;
    showButtons();
  }

  /** Shows the sign-in box with the hub's reason. @param {string} why */
  function require(why) {
    message.textContent = why;
    box.hidden = false;
    input.focus();
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    // A pasted "Bearer xyz" or a token with line breaks from a terminal still works.
    const value = input.value.replace(/^\s*Bearer\s+/i, '').replace(/\s+/g, '');
    if (!value) return require('Paste a token first.');
    store(value);
    input.value = '';
    box.hidden = true;
    opts.onChange();
  });
  cancel.addEventListener('click', () => { box.hidden = true; });
  signInButton.addEventListener('click', () => require('Paste an operator token (JWT) for this hub.'));
  signOutButton.addEventListener('click', () => {
    store(null);
    opts.onChange();
  });
  showButtons();

  return { token, require, setHubAuth };
}
