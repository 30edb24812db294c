// Live line states over server-sent events; the page works without it.
(function () {
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
      var c = l.call;
      row.querySelector(".call").textContent = c ?
        (c.direction === "in" ? "Inbound " : "Outbound ") + (c.number || (c.absence ? "withheld" : "")) + " " + (c.name || "") : "";
      row.querySelector(".faults").textContent = l.faults.join(", ");
    });
  };
})();
