// edgesync console: progressive enhancement only; every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Filter selects submit their form on change.
  document.querySelectorAll(".autosubmit").forEach(function (el) {
    el.addEventListener("change", function () { el.form.submit(); });
  });
  // The diff page can show unchanged fields too.
  var all = document.getElementById("showall");
  if (all) {
    all.addEventListener("change", function () {
      document.getElementById("diff").classList.toggle("showall", all.checked);
    });
  }
  // The overview refreshes itself (data-refresh seconds) unless hidden.
  var r = document.querySelector("[data-refresh]");
  if (r) {
    var secs = parseInt(r.getAttribute("data-refresh"), 10) || 30;
    setInterval(function () { if (!document.hidden) { location.reload(); } }, secs * 1000);
  }
});
