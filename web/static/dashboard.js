// Live line states over server-sent events; the page works without it.
// The server sends every text already in words and in the box's time zone
// (line.text, line.recording), so this file holds no words of its own.
(function () {
  "use strict";
  if (!window.EventSource) return;
  var source = new EventSource("/api/events");
  function setText(el, text) {
    if (el && el.textContent !== text) el.textContent = text;   // no churn for screen readers
  }
  // The alarms as this page was drawn (the server put their signature on the banner's place).
  var slotDrawn = document.getElementById("alarm-banner-slot");
  var alarmsSeen = slotDrawn ? slotDrawn.dataset.signature : null;
  function redrawAlarms(signature) {
    var req = new XMLHttpRequest();
    req.open("GET", "/api/alarms?next=" + encodeURIComponent(window.location.pathname));
    req.onload = function () {
      if (req.status !== 200) return;
      var now = JSON.parse(req.responseText);
      var slot = document.getElementById("alarm-banner-slot");
      if (slot) slot.innerHTML = now.banner;   // the server's own HTML, escaped there
      var list = document.getElementById("alarms");
      if (list) {
        list.textContent = "";
        if (!now.active.length) list.textContent = "none";
        else {
          var ul = document.createElement("ul");
          now.active.forEach(function (text) {
            var li = document.createElement("li");
            li.className = "error";
            li.textContent = text;
            ul.appendChild(li);
          });
          list.appendChild(ul);
        }
      }
      alarmsSeen = signature;
    };
    req.send();
  }
  source.onmessage = function (msg) {
    var snap = JSON.parse(msg.data);
    if (alarmsSeen !== null && snap.alarms && snap.alarms !== alarmsSeen) redrawAlarms(snap.alarms);
    setText(document.getElementById("now"), snap.now_text || "");
    snap.lines.forEach(function (l) {
      var row = document.getElementById("line-" + l.line);
      if (!row) return;
      row.dataset.state = l.state;
      row.dataset.recording = l.recording.state;
      row.className = "state-" + l.state;
      setText(row.querySelector(".state"), l.text.state);
      setText(row.querySelector(".since"), l.text.since ? "since " + l.text.since : "");
      setText(row.querySelector(".call"), l.text.call);
      setText(row.querySelector(".faults"), l.text.faults);
      var rec = document.getElementById("rec-" + l.line);
      if (rec) {
        rec.className = "rec rec-" + l.recording.state;
        setText(rec.querySelector(".rec-text"), l.recording.text);
      }
      var learned = row.querySelector(".learned");
      if (learned) setText(learned, l.learned ? l.learned.text : "");
      // A pause begun or ended elsewhere (keypad, button, timeout) turns the
      // line's one button from Pause into Resume or back, in place, so that
      // the keyboard's focus and the page's place stay where they were. Its
      // words are the ones the server draws (dashboard.html).
      var btn = row.querySelector(".pause-btn");
      if (btn) {
        btn.id = (l.paused ? "resume-" : "pause-") + l.line;
        btn.value = l.paused ? "resume" : "pause";
        setText(btn, l.paused ? btn.dataset.resume : btn.dataset.pause);
        // Usable while a pause protects the call (to pause it) or while paused (to resume).
        var off = !l.paused && !l.pausable;  // recorded now, or on demand (maybe later)
        // A button hidden under the keyboard's focus would drop it to the page's top:
        // it goes to the line's own heading, where the user was.
        if (off && document.activeElement === btn) row.querySelector("th").focus();
        btn.disabled = off;
      }
    });
  };
  source.onerror = function () {
    // Refused (logged out, or the session timed out): the browser gives up on
    // the stream, and a reload shows the login page. A dropped connection is
    // retried by the browser itself.
    if (source.readyState === EventSource.CLOSED) window.location.reload();
  };
})();
