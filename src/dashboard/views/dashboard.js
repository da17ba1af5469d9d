/*
 * closeloop dashboard behaviour: hand-written, no build step (docs/decisions/0006). Served as
 * /dashboard/assets/dashboard.js; the Content-Security-Policy allows no inline script or event
 * handler attribute (docs/decisions/0012), so everything a page does in the browser is here.
 */
(function () {
  'use strict';

  // A form with data-confirm asks first (dead letters: delete, bulk replay).
  document.addEventListener('submit', function (e) {
    var form = e.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute('data-confirm')) return;
    if (!window.confirm(form.getAttribute('data-confirm'))) e.preventDefault();
  });

  // Copy buttons (a report's form fields): data-copy is copied, data-copied is shown for a moment.
  document.addEventListener('click', function (e) {
    var button = e.target instanceof Element ? e.target.closest('button[data-copy]') : null;
    if (!button || !navigator.clipboard) return;
    var label = button.textContent;
    navigator.clipboard.writeText(button.getAttribute('data-copy')).then(function () {
      button.textContent = button.getAttribute('data-copied');
      setTimeout(function () {
        button.textContent = label;
      }, 1500);
    });
  });
})();
