// Gatehouse passkey buttons: the one first-party script of the pages (served from /static,
// allowed by the CSP's 'self'; no inline script). Pages only add markup:
//
//   <button type="button" data-passkey="register">     in a form with input[data-passkey-name]
//                                                       and input[name=csrf_token]
//   <button type="button" data-passkey="signin">       in the /login form (data-next optional)
//   <button type="button" data-passkey="second-factor" data-mfa-token="…">  on the second step
//   <p data-passkey-error role="alert" hidden></p>      near the button, for errors
//   <div data-passkey-recovery-codes hidden tabindex="-1">  optional: where the recovery codes
//                                                       of a first factor are listed, in its <ol>
//                                                       if it has one (else the page reloads);
//                                                       the register form and [data-passkey-outdated]
//                                                       are hidden then
//
// Buttons (and a form around one) may wait with the `hidden` attribute, so that a browser
// without JavaScript shows none: this script un-hides them. Without WebAuthn in the browser,
// they stay hidden; everything else works without this script.
(function () {
  "use strict";

  var buttons = document.querySelectorAll("[data-passkey]");
  if (!window.PublicKeyCredential || !navigator.credentials) {
    buttons.forEach(function (button) {
      button.hidden = true;
    });
    return;
  }

  // base64url <-> ArrayBuffer
  function toBuffer(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toText(buffer) {
    if (!buffer) return null;
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (credential) {
      var copy = Object.assign({}, credential);
      copy.id = toBuffer(credential.id);
      return copy;
    });
  }

  function creationOptions(publicKey) {
    var options = Object.assign({}, publicKey);
    options.challenge = toBuffer(publicKey.challenge);
    options.user = Object.assign({}, publicKey.user, { id: toBuffer(publicKey.user.id) });
    if (publicKey.excludeCredentials) {
      options.excludeCredentials = descriptors(publicKey.excludeCredentials);
    }
    return options;
  }

  function requestOptions(publicKey) {
    var options = Object.assign({}, publicKey);
    options.challenge = toBuffer(publicKey.challenge);
    if (publicKey.allowCredentials) {
      options.allowCredentials = descriptors(publicKey.allowCredentials);
    }
    return options;
  }

  // A credential as WebAuthn Level 3's toJSON() gives it (written out for older browsers).
  function credentialJson(credential) {
    var response = credential.response;
    var json = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults
        ? credential.getClientExtensionResults()
        : {},
      response: { clientDataJSON: toText(response.clientDataJSON) },
    };
    if (response.attestationObject) {
      json.response.attestationObject = toText(response.attestationObject);
      if (response.getTransports) json.response.transports = response.getTransports();
    } else {
      json.response.authenticatorData = toText(response.authenticatorData);
      json.response.signature = toText(response.signature);
      json.response.userHandle = toText(response.userHandle);
    }
    return json;
  }

  function csrfToken(button) {
    var form = button.form || button.closest("form");
    var input = form && form.querySelector("input[name=csrf_token]");
    return input ? input.value : "";
  }

  function errorElement(button) {
    var scope = button.form || button.closest("form") || button.parentElement;
    return (scope && scope.querySelector("[data-passkey-error]")) ||
      document.querySelector("[data-passkey-error]");
  }

  function showError(button, message) {
    var element = errorElement(button);
    if (!element) return;
    element.textContent = message;
    element.hidden = false;
  }

  function clearError(button) {
    var element = errorElement(button);
    if (element) {
      element.textContent = "";
      element.hidden = true;
    }
  }

  function post(path, body, csrf) {
    var headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (csrf) headers["X-CSRF-Token"] = csrf;
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: headers,
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      if (response.ok) {
        return response.status === 204 ? null : response.json();
      }
      return response.json().then(
        function (error) {
          throw new Error(describe(error && error.detail));
        },
        function () {
          throw new Error("The server refused the request (" + response.status + ").");
        }
      );
    });
  }

  function describe(detail) {
    switch (detail) {
      case "PASSKEY_INVALID":
        return "That passkey was not accepted. Try again.";
      case "MFA_CODE_INVALID":
        return "That passkey was not accepted. Try again, or use another way to sign in.";
      case "MFA_TOKEN_INVALID":
        return "This sign-in has expired. Start again with your password.";
      case "LOGIN_USER_NOT_VERIFIED":
        return "Verify your email address first.";
      case "TOO_MANY_REQUESTS":
        return "Too many attempts. Wait a moment and try again.";
      default:
        return "Something went wrong. Try again.";
    }
  }

  function browserError(error) {
    if (error && error.name === "NotAllowedError") {
      return "The passkey request was cancelled or timed out.";
    }
    if (error && error.name === "InvalidStateError") {
      return "This passkey is registered already.";
    }
    return (error && error.message) || "The passkey could not be used.";
  }

  function next(button) {
    var form = button.form || button.closest("form");
    var target = (form && form.getAttribute("data-next")) || button.getAttribute("data-next");
    // Only a path on this site.
    if (target && target.charAt(0) === "/" && target.charAt(1) !== "/" && target.charAt(1) !== "\\") {
      return target;
    }
    return "/account";
  }

  function register(button) {
    var csrf = csrfToken(button);
    var form = button.form || button.closest("form");
    var nameInput = form && form.querySelector("[data-passkey-name]");
    var name = nameInput ? nameInput.value : "";
    return post("/users/me/mfa/passkeys/register/begin", {}, csrf)
      .then(function (begun) {
        return navigator.credentials
          .create({ publicKey: creationOptions(begun.publicKey) })
          .then(function (credential) {
            return post(
              "/users/me/mfa/passkeys/register/finish",
              { ceremony_id: begun.ceremony_id, name: name, credential: credentialJson(credential) },
              csrf
            );
          }, function (error) {
            throw new Error(browserError(error));
          });
      })
      .then(function (added) {
        var codes = added && added.recovery_codes;
        var box = document.querySelector("[data-passkey-recovery-codes]");
        if (codes && box) {
          // The account's first factor: its recovery codes, shown this once (in the box's own
          // list if it has one).
          var list = box.querySelector("ol") || box.appendChild(document.createElement("ol"));
          codes.forEach(function (code) {
            var item = document.createElement("li");
            var text = document.createElement("code");
            text.textContent = code;
            item.appendChild(text);
            list.appendChild(item);
          });
          // What the page said before this passkey (the form, "no passkeys yet") is out of date.
          if (form) form.hidden = true;
          document.querySelectorAll("[data-passkey-outdated]").forEach(function (element) {
            element.hidden = true;
          });
          box.hidden = false;
          box.focus && box.focus();
          return;
        }
        window.location.reload();
      });
  }

  function signIn(button) {
    var csrf = csrfToken(button);
    return post("/auth/passkey/begin", {}, csrf)
      .then(function (begun) {
        return navigator.credentials
          .get({ publicKey: requestOptions(begun.publicKey) })
          .then(function (credential) {
            return post(
              "/auth/cookie/passkey/finish",
              { ceremony_id: begun.ceremony_id, credential: credentialJson(credential) },
              csrf
            );
          }, function (error) {
            throw new Error(browserError(error));
          });
      })
      .then(function () {
        window.location.assign(next(button));
      });
  }

  function secondFactor(button) {
    var csrf = csrfToken(button);
    var token = button.getAttribute("data-mfa-token") || "";
    return post("/auth/mfa/passkey/begin", { mfa_token: token }, csrf)
      .then(function (begun) {
        return navigator.credentials
          .get({ publicKey: requestOptions(begun.publicKey) })
          .then(function (credential) {
            return post(
              "/auth/cookie/mfa/verify",
              { mfa_token: token, ceremony_id: begun.ceremony_id, passkey: credentialJson(credential) },
              csrf
            );
          }, function (error) {
            throw new Error(browserError(error));
          });
      })
      .then(function () {
        window.location.assign(next(button));
      });
  }

  var actions = { register: register, signin: signIn, "second-factor": secondFactor };

  buttons.forEach(function (button) {
    var action = actions[button.getAttribute("data-passkey")];
    if (!action) return;
    button.hidden = false;
    // A form that is only of use with this script (the login page's) waits hidden.
    var form = button.form || button.closest("form");
    if (form && form.hasAttribute("hidden")) form.hidden = false;
    // Enter in the form's field (the passkey's name) is a click on its button, not a GET of
    // the form's fields.
    if (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        button.click();
      });
    }
    button.addEventListener("click", function (event) {
      event.preventDefault();
      if (button.disabled) return;
      clearError(button);
      button.disabled = true;
      action(button)
        .catch(function (error) {
          showError(button, (error && error.message) || "The passkey could not be used.");
        })
        .then(function () {
          button.disabled = false;
        });
    });
  });
})();
