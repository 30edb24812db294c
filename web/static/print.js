// On paper, the line at the top of the page says when it was printed (this computer's
// clock, in the box's zone) beside when the box drew it: a page left open for a day and
// printed later says both. Without it the line gives the time the box drew the page.
(function () {
  "use strict";
  var at = document.getElementById("printed-at");
  if (!at || !window.Intl) return;
  window.addEventListener("beforeprint", function () {
    var parts = {};
    try {
      new Intl.DateTimeFormat("en-GB", {
        timeZone: at.getAttribute("data-zone") || undefined,
        weekday: "short", day: "numeric", month: "short", year: "numeric",
        hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
        timeZoneName: "short"
      }).formatToParts(new Date()).forEach(function (p) { parts[p.type] = p.value; });
    } catch (e) {
      return;  // a zone this browser does not know: the box's time alone
    }
    at.textContent = parts.weekday + " " + parts.day + " " + parts.month + " " + parts.year + ", " +
      parts.hour + ":" + parts.minute + ":" + parts.second + " " + parts.timeZoneName + ", ";
  });
})();
