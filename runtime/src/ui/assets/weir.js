// Weir's UI script: the few things plain HTML and htmx do not do. No content is ever
// evaluated; the page works without it (it only adds conveniences).
(function () {
  "use strict";
  // "Select all" checkboxes of the bulk actions on the runs list.
  document.addEventListener("change", function (e) {
    var all = e.target.closest("input[data-select-all]");
    if (!all) return;
    var form = all.closest("form");
    form.querySelectorAll("input[name=run]").forEach(function (box) {
      box.checked = all.checked;
    });
  });
  // Local times: every <time datetime> shows in the browser's timezone.
  function localize(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) {
        t.title = t.getAttribute("datetime");
        t.textContent = d.toLocaleString();
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { localize(document); });
  document.addEventListener("htmx:afterSwap", function (e) { localize(e.target); });
  document.addEventListener("htmx:sseMessage", function (e) { localize(e.target); });
  // The log tail keeps the newest line in view while the reader is at the bottom.
  document.addEventListener("htmx:sseBeforeMessage", function (e) {
    var box = e.target.closest(".logs");
    if (box) box.dataset.stick = box.scrollTop + box.clientHeight >= box.scrollHeight - 8 ? "1" : "";
  });
  document.addEventListener("htmx:sseMessage", function (e) {
    var box = e.target.closest(".logs");
    if (box && box.dataset.stick) box.scrollTop = box.scrollHeight;
  });
})();
