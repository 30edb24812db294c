// "Right now" on a staff member's own line(s), kept up to date while the page is open:
// asked every few seconds (the page says the words; this file holds none of its own).
(function () {
  "use strict";
  var EVERY_MS = 3000;
  function typed() {
    return Array.prototype.some.call(document.querySelectorAll("main textarea"), function (t) {
      return t.value.trim() !== "";
    });
  }
  function ask() {
    var req = new XMLHttpRequest();
    req.open("GET", "/api/my-line");
    req.onload = function () {
      if (req.status === 401 || req.status === 403) {
        // Logged out, or the session timed out: the login page. But not over words being
        // typed (a concern begun before a long call): the reload lost them. The page then
        // stays, asking no more; sent, the form is refused for its session and its words
        // are shown back to copy.
        if (!typed()) window.location.reload();
        return;
      }
      if (req.status === 200) {
        var lines = JSON.parse(req.responseText);
        Object.keys(lines).forEach(function (n) {
          var el = document.getElementById("now-" + n);
          if (!el) return;
          if (el.textContent !== lines[n].text) el.textContent = lines[n].text;
          el.className = "now now-" + lines[n].state;
        });
      }
      window.setTimeout(ask, EVERY_MS);
    };
    req.onerror = function () { window.setTimeout(ask, EVERY_MS); };   // the box restarting
    req.send();
  }
  window.setTimeout(ask, EVERY_MS);
})();
