// Rumour Tracker API page: starts Swagger UI (from the swagger-ui-bundle pip package) over
// our OpenAPI document. Our own code; kept in a file because the CSP allows no inline script.
(function () {
  "use strict";

  var root = document.getElementById("swagger-ui");
  if (!root || typeof SwaggerUIBundle !== "function") {
    return;
  }
  var csrf = root.getAttribute("data-csrf") || "";
  SwaggerUIBundle({
    url: root.getAttribute("data-openapi"),
    domNode: root,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    // "Try it out" runs with the page's session: unsafe requests carry its CSRF token.
    requestInterceptor: function (request) {
      request.headers["X-CSRF-Token"] = csrf;
      return request;
    },
  });
})();
