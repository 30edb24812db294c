// Live line states over server-sent events; the page works without it.
(function () {
  "use strict";
  var labels = {idle: "Idle", alerting: "Incoming (caller ID)", ringing: "Ringing",
                dialling: "Dialling", connected: "On a call", cleared: "Far end hung up",
                fault: "Line fault"};
  if (!window.EventSource) return;
  var source = new EventSource("/api/events");
  source.onmessage = function (msg) {
    var snap = JSON.parse(msg.data);
    document.getElementById("now").textContent = snap.now + (snap.clock_synced ? "" : " (clock not synchronised)");
    snap.lines.forEach(function (l) {
      var row = document.getElementById("line-" + l.line);
      if (!row) return;
      row.dataset.state = l.state;
      row.className = "state-" + l.state;
      row.querySelector(".state").textContent = labels[l.state] || l.state;
      row.querySelector(".since").textContent = l.since || "";
      var c = l.call, text = "";
      if (c) {
        text = (c.direction === "in" ? "Inbound " : "Outbound ") +
               (c.number || (c.absence ? "withheld" : "")) + " " + (c.name || "");
      }
      row.querySelector(".call").textContent = text;
      row.querySelector(".faults").textContent = l.faults.join(", ");
      var learned = row.querySelector(".learned");
      if (learned) learned.textContent = l.learned ? l.learned.text : "";
      // The pause button only means something while a call is up.
      var pause = document.getElementById("pause-" + l.line);
      if (pause) pause.hidden = !(l.state === "connected" || l.state === "dialling");
    });
  };
  source.onerror = function () {
    // Refused (logged out, or the session timed out): the browser gives up on
    // the stream, and a reload shows the login page. A dropped connection is
    // retried by the browser itself.
    if (source.readyState === EventSource.CLOSED) window.location.reload();
  };
})();
