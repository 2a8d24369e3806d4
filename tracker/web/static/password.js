// Rumour Tracker password form: the browser refuses a mismatched second entry before the form
// is sent, so what was typed stays (the server checks again, and never echoes passwords back).
(function () {
  "use strict";

  var form = document.querySelector('form[action="/account/password"]');
  if (!form) {
    return;
  }
  var first = form.elements.namedItem("new_password");
  var again = form.elements.namedItem("new_password_again");

  function check() {
    var differ = again.value !== "" && again.value !== first.value;
    again.setCustomValidity(differ ? "The two new passwords differ." : "");
  }

  first.addEventListener("input", check);
  again.addEventListener("input", check);
})();
