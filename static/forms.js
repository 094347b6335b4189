// Gatehouse's forms, a little better with a script; every form works without it.
// - The error summary takes the focus, so the first thing read is what went wrong.
// - Each password field gets a "Show" button that shows what was typed.
(function () {
  "use strict";

  var summary = document.querySelector("[data-error-summary]");
  if (summary && document.activeElement !== summary) {
    summary.focus();
  }

  var inputs = document.querySelectorAll('input[type="password"]');
  Array.prototype.forEach.call(inputs, function (input) {
    var row = document.createElement("div");
    row.className = "password-input";
    input.parentNode.insertBefore(row, input);
    row.appendChild(input);

    var button = document.createElement("button");
    button.type = "button";
    button.className = "button button-small button-secondary password-toggle";
    button.setAttribute("aria-controls", input.id);
    row.appendChild(button);

    function show(visible) {
      input.type = visible ? "text" : "password";
      button.textContent = visible ? "Hide" : "Show";
      button.setAttribute("aria-label", visible ? "Hide password" : "Show password");
    }
    show(false);
    button.addEventListener("click", function () {
      show(input.type === "password");
    });
    // Never send (nor let a browser remember) a password field as plain text.
    if (input.form) {
      input.form.addEventListener("submit", function () {
        show(false);
      });
    }
  });
})();
