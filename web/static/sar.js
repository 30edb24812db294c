// A subject access bundle being made: its progress, then the page again once it is ready.
(function () {
  "use strict";
  var box = document.getElementById("sar-bundle");
  if (!box || box.getAttribute("data-state") !== "running" || !window.fetch) { return; }
  var done = document.getElementById("sar-bundle-done");
  var total = document.getElementById("sar-bundle-total");
  var bar = document.getElementById("sar-bundle-bar");
  var poll = function () {
    fetch(box.getAttribute("data-status-url"), { credentials: "same-origin" })
      // Gone (the web UI restarted, or the login ended): the page says so, no more polling.
      .then(function (r) { if (!r.ok) { window.location.reload(); return null; } return r.json(); })
      .then(function (s) {
        if (s === null) { return; }
        if (s.state !== "running") { window.location.reload(); return; }
        done.textContent = s.done;
        total.textContent = s.total;
        bar.max = s.total || 1;
        bar.value = s.done;
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  };
  window.setTimeout(poll, 1000);
})();
