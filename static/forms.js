// Gatehouse's forms, a little better with a script; every form works without it.
// - The error summary takes the focus, so the first thing read is what went wrong.
// - Each password field gets a "Show" button that shows what was typed.
// - Each element marked `data-copy="what it is"` gets a "Copy" button that puts its text on the
//   clipboard and says so in a live region; without a clipboard, no button.
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

  var copyables = document.querySelectorAll("[data-copy]");
  if (copyables.length && navigator.clipboard && navigator.clipboard.writeText) {
    // One polite live region, present before anything is said in it.
    var said = document.createElement("p");
    said.className = "visually-hidden";
    said.id = "copy-status";
    said.setAttribute("role", "status");
    document.querySelector("main").appendChild(said);

    Array.prototype.forEach.call(copyables, function (source) {
      var what = source.getAttribute("data-copy");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "button button-small button-secondary copy-button";
      button.textContent = "Copy";
      button.setAttribute("aria-label", "Copy " + what);
      source.insertAdjacentElement("afterend", button);
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(source.textContent.trim()).then(
          function () {
            button.textContent = "Copied";
            button.setAttribute("aria-label", "Copied " + what);
            said.textContent = "Copied the " + what + ".";
          },
          function () {
            said.textContent = "Could not copy: select the " + what + " and copy it yourself.";
          }
        );
      });
    });
  }
})();
