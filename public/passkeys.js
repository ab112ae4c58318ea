// Latchkey's passkey ceremonies (docs/mfa.md), served from /assets/passkeys.js next to @simplewebauthn/browser's
// bundle (window.SimpleWebAuthnBrowser). Each `form[data-passkey]` on the page:
//   1. asks Latchkey for the ceremony's options (POST data-options with the form's fields, JSON back),
//   2. runs the ceremony in the browser (create a passkey, or sign with one),
//   3. puts the browser's answer in the form's `response` field and submits the form; the server checks it.
// With data-autofill, the field of that id also offers passkeys in the browser's autofill (conditional mediation).
(() => {
  'use strict';
  const webauthn = window.SimpleWebAuthnBrowser;
  if (!webauthn || !webauthn.browserSupportsWebAuthn()) return;

  // The page puts these messages on the form in the reader's language (views/mfa/passkey-form.pug).
  function messageOf(problem, form) {
    const name = problem && (problem.name || '');
    const code = problem && problem.code;
    if (code === 'ERROR_AUTHENTICATOR_PREVIOUSLY_REGISTERED') return form.dataset.msgDuplicate;
    if (name === 'NotAllowedError' || name === 'AbortError' || code === 'ERROR_CEREMONY_ABORTED') return form.dataset.msgCancelled;
    return (problem && problem.fromLatchkey && problem.message) || form.dataset.msgFailed;
  }

  async function optionsFor(form) {
    const body = new URLSearchParams(new FormData(form));
    const answer = await fetch(form.dataset.options, { method: 'POST', body, credentials: 'same-origin', headers: { accept: 'application/json' } });
    const json = await answer.json().catch(() => ({}));
    if (!answer.ok || !json.options) throw Object.assign(new Error(json.error || form.dataset.msgExpired), { fromLatchkey: true });
    return json.options;
  }

  async function run(form, useBrowserAutofill) {
    const optionsJSON = await optionsFor(form);
    const answer = form.dataset.passkey === 'register'
      ? await webauthn.startRegistration({ optionsJSON })
      : await webauthn.startAuthentication({ optionsJSON, useBrowserAutofill });
    form.elements.namedItem('response').value = JSON.stringify(answer);
    HTMLFormElement.prototype.submit.call(form);
  }

  for (const form of document.querySelectorAll('form[data-passkey]')) {
    const error = form.querySelector('[data-passkey-error]');
    form.hidden = false;
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      error.hidden = true;
      run(form, false).catch((problem) => {
        error.textContent = messageOf(problem, form);
        error.hidden = false;
      });
    });
    const field = form.dataset.autofill && document.getElementById(form.dataset.autofill);
    if (field) {
      webauthn.browserSupportsWebAuthnAutofill().then((isSupported) => {
        if (!isSupported) return;
        field.setAttribute('autocomplete', 'username webauthn');
        // Waits quietly for the person to pick a passkey from the field's suggestions; the button or a typed
        // password cancels it.
        run(form, true).catch(() => undefined);
      });
    }
  }
})();
