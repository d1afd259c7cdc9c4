// Kassa console: the one script the pages load (no inline script; see the CSP).
// On the sign-in page, preselect the browser's own time zone when the server knows it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var select = document.querySelector("select[data-detect-zone]");
  if (!select || typeof Intl === "undefined") { return; }
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  for (var i = 0; i < select.options.length; i++) {
    if (select.options[i].value === zone) { select.selectedIndex = i; break; }
  }
});
