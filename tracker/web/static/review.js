// Rumour Tracker review queue: keyboard shortcuts and in-place updates.
// Our own code, no libraries. Every action is also a plain HTML form, so without this
// script (or when a fetch fails) the forms submit the ordinary way.
(function () {
  "use strict";

  var queue = document.getElementById("queue");
  if (!queue) {
    return;
  }
  var csrf = queue.getAttribute("data-csrf") || "";
  var statusLine = document.getElementById("queue-status");
  var help = document.getElementById("help");
  var current = 0;

  function pairs() {
    return Array.prototype.slice.call(queue.querySelectorAll("article.pair"));
  }

  function say(text) {
    // textContent only: nothing we show is ever parsed as HTML.
    if (statusLine) {
      statusLine.textContent = text;
    }
  }

  function select(index) {
    var all = pairs();
    all.forEach(function (p) {
      p.classList.remove("current");
    });
    if (all.length === 0) {
      current = 0;
      return null;
    }
    current = Math.max(0, Math.min(index, all.length - 1));
    var chosen = all[current];
    chosen.classList.add("current");
    chosen.focus({ preventScroll: true });
    chosen.scrollIntoView({ block: "nearest" });
    claim(chosen);
    return chosen;
  }

  function claim(article) {
    // Hold the pair we moved to, so no other analyst works it meanwhile. The server already
    // holds the first pair of the page for us; a refusal marks the pair as someone else's.
    var url = article.getAttribute("data-claim");
    if (!url || article.classList.contains("claimed")) {
      return;
    }
    send(url, new URLSearchParams({ csrf_token: csrf })).then(function (result) {
      if (result.ok) {
        // The server holds one pair per analyst: the one held before is free again.
        pairs().forEach(function (p) {
          p.classList.remove("claimed");
        });
        article.classList.add("claimed");
      } else {
        article.classList.add("taken");
        say(String(result.data.detail || "This pair is not free."));
      }
    }, function () {});
  }

  function post(form) {
    return send(form.action, new URLSearchParams(new FormData(form)));
  }

  function send(url, body) {
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": csrf },
    }).then(function (response) {
      return response.json().then(
        function (data) {
          return { ok: response.ok, data: data };
        },
        function () {
          return { ok: false, data: { detail: "The server said " + response.status + "." } };
        }
      );
    });
  }

  function afterDecision(form, result) {
    if (!result.ok) {
      say(String(result.data.detail || "That did not work."));
      return;
    }
    var article = form.closest("article.pair");
    var decision = String(result.data.decision || "");
    if (article) {
      var index = pairs().indexOf(article);
      article.remove();
      say("Pair " + result.data.pair_id + ": " + decision + ". Press u to undo.");
      if (pairs().length === 0) {
        say("Pair " + result.data.pair_id + ": " + decision + ". The queue is empty.");
      }
      select(index);
    }
  }

  function afterRelabel(form, result) {
    say(result.ok ? "Item " + result.data.item_id + " labelled " + result.data.label + "."
                  : String(result.data.detail || "That did not work."));
  }

  function submitInPlace(form) {
    var kind = form.getAttribute("data-inplace");
    post(form).then(
      function (result) {
        if (kind === "relabel") {
          afterRelabel(form, result);
        } else {
          afterDecision(form, result);
        }
      },
      function () {
        // No answer (network, server down): let the browser send the plain form.
        form.submit();
      }
    );
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-inplace")) {
      return;
    }
    event.preventDefault();
    submitInPlace(form);
  });

  function currentForm(selector) {
    var article = pairs()[current];
    return article ? article.querySelector(selector) : null;
  }

  function undo() {
    var form = document.getElementById("undo-form");
    if (!form) {
      return;
    }
    post(form).then(
      function (result) {
        if (!result.ok) {
          say(String(result.data.detail || "Nothing to undo."));
          return;
        }
        // The pair comes back where the server ranks it: show the queue as it now is.
        window.location.reload();
      },
      function () {
        form.submit();
      }
    );
  }

  function toggleHelp(show) {
    if (help) {
      help.hidden = show === undefined ? !help.hidden : !show;
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    var target = event.target;
    var typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement ||
      target instanceof HTMLSelectElement;
    if (event.key === "Escape") {
      toggleHelp(false);
      if (typing) {
        target.blur();
      }
      return;
    }
    if (typing) {
      return;
    }
    var form;
    switch (event.key) {
      case "j":
        select(current + 1);
        break;
      case "k":
        select(current - 1);
        break;
      case "a":
        form = currentForm("form.decision input[name=decision][value=confirm]");
        if (form) {
          submitInPlace(form.form);
        }
        break;
      case "r":
        form = currentForm("form.reject-form input[name=reason]");
        if (form) {
          // Ask for the reason in the form itself; Enter sends it.
          form.focus();
          say("Type the reason for rejecting, then press Enter (Esc to cancel).");
        }
        break;
      case "u":
        undo();
        break;
      case "?":
        toggleHelp();
        break;
      default:
        return;
    }
    event.preventDefault();
  });

  select(0);
})();
