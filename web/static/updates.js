// The firmware updates page: the upload's progress, then the update's steps.
(function () {
  "use strict";
  var form = document.getElementById("update-form");
  var bar = document.getElementById("upload-progress");
  var status = document.getElementById("upload-status");
  var said = document.getElementById("upload-progress-text");
  var button = document.getElementById("upload-button");
  var now = document.getElementById("update-now");
  var mb = function (n) { return (n / 1e6).toFixed(1) + " MB"; };
  if (form && bar && status && said && window.XMLHttpRequest && window.FormData) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var xhr = new XMLHttpRequest();
      status.hidden = false;
      bar.value = 0;
      said.textContent = "Uploading…";
      if (button) { button.disabled = true; }
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          var pct = Math.round((100 * e.loaded) / e.total);
          bar.value = pct;
          said.textContent = "Uploading: " + mb(e.loaded) + " of " + mb(e.total) + " (" + pct + "%)." +
            (pct >= 100 ? " The box is checking the bundle." : " Keep this page open.");
        }
      });
      var failed = function () {
        said.textContent = "The upload did not reach the box (the connection failed). Nothing was changed: try again.";
        if (button) { button.disabled = false; }
      };
      xhr.addEventListener("error", failed);
      xhr.addEventListener("abort", failed);
      xhr.addEventListener("load", function () {
        // The server answers as for a plain form: follow its page.
        document.open();
        document.write(xhr.responseText);
        document.close();
        if (xhr.responseURL) { history.replaceState(null, "", xhr.responseURL); }
      });
      xhr.open("POST", form.action);
      xhr.send(new FormData(form));
    });
  }
  // A bundle the updater held back (not newer than the running release) after the page
  // was drawn: its notice, with the button to confirm it, is the server's, taken from the
  // page drawn afresh and put under "Now". Its role=alert is heard as it is put in; before,
  // the page went on saying the upload would install until someone reloaded it.
  var fetchingHeld = null;
  var showHeld = function (bundle) {
    var shown = document.getElementById("update-held");
    if ((shown && shown.getAttribute("data-bundle") === bundle) || fetchingHeld === bundle) { return; }
    fetchingHeld = bundle;
    fetch(window.location.pathname, { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("update-held");
        var old = document.getElementById("update-held");
        if (!fresh) { return; }
        fresh = document.importNode(fresh, true);
        if (old) { old.parentNode.replaceChild(fresh, old); } else { now.parentNode.insertBefore(fresh, now.nextSibling); }
        // "Uploaded X. The box installs it when every line is idle" is no longer true of X.
        var uploaded = document.getElementById("uploaded");
        if (uploaded && uploaded.getAttribute("data-bundle") === bundle) { uploaded.parentNode.removeChild(uploaded); }
      })
      .catch(function () {})
      .then(function () { fetchingHeld = null; });
  };
  if (now && window.fetch) {
    var poll = function () {
      fetch(now.getAttribute("data-state-url"), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (s) {
          if (s.held && !s.step) { showHeld(s.held.bundle); }
          var text = null;
          if (s.step) {
            text = "Updating: " + s.step.replace(/_/g, " ") + ". Do not cut the power.";
          } else if (s.waiting) {
            text = s.waiting + " is waiting to be installed.";
          } else if (s.after_install) {
            text = s.after_install;
          } else if (s.last) {
            text = "No update is running. The last one: " + (s.last.outcome || "not known").replace(/_/g, " ") + ".";
          }
          // #update-now is a live region: text put in again, even the same, is read out
          // again every 3 s; only a change is news.
          if (text !== null && text !== now.textContent.replace(/\s+/g, " ").trim()) { now.textContent = text; }
        })
        .catch(function () {});
    };
    window.setInterval(poll, 3000);
  }
})();
