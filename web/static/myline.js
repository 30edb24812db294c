// "Right now" on a staff member's own line(s), kept up to date while the page is open:
// asked every few seconds (the page says the words; this file holds none of its own).
(function () {
  "use strict";
  var EVERY_MS = 3000;
  function ask() {
    var req = new XMLHttpRequest();
    req.open("GET", "/api/my-line");
    req.onload = function () {
      if (req.status === 401 || req.status === 403) {
        window.location.reload();   // logged out, or the session timed out: the login page
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
