// The console's only script: confirm before a button acts, and refresh the incident list in place.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
  var rows = document.getElementById("incident-rows");
  if (rows) {
    var seconds = parseInt(rows.getAttribute("data-refresh"), 10) || 10;
    window.setInterval(function () {
      var params = new URLSearchParams(window.location.search);
      params.set("fragment", "1");
      fetch("/?" + params.toString(), { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (response.ok && !response.redirected) { return response.text(); }
          throw new Error("refresh: HTTP " + response.status);
        })
        .then(function (html) { rows.innerHTML = html; })
        .catch(function () { /* keep the last list; the next tick tries again */ });
    }, seconds * 1000);
  }
});
