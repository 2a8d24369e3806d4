// Rumour Tracker pair page: the review queue's keys for the one pair shown.
// Our own code, no libraries; without it the page's plain forms do the same.
(function () {
  "use strict";

  var page = document.getElementById("pair-page");
  if (!page) {
    return;
  }
  var statusLine = document.getElementById("queue-status");

  function submit(id) {
    var form = document.getElementById(id);
    if (form) {
      form.requestSubmit();
    }
    return form;
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement ||
      target instanceof HTMLSelectElement;
    if (event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    if (event.key === "Escape" && typing) {
      target.blur();
      return;
    }
    if (typing) {
      return;
    }
    if (event.key === "a") {
      submit("confirm-form");
    } else if (event.key === "u") {
      submit("undo-form");
    } else if (event.key === "r") {
      var reason = document.querySelector("#reject-form input[name=reason]");
      if (!reason) {
        return;
      }
      reason.focus();
      if (statusLine) {
        statusLine.textContent = "Type the reason for rejecting, then press Enter (Esc to cancel).";
      }
    } else {
      return;
    }
    event.preventDefault();
  });
})();
