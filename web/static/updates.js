// The firmware updates page: the upload's progress, then the update's steps.
(function () {
  "use strict";
  var form = document.getElementById("update-form");
  var bar = document.getElementById("upload-progress");
  var now = document.getElementById("update-now");
  if (form && bar && window.XMLHttpRequest && window.FormData) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var xhr = new XMLHttpRequest();
      bar.hidden = false;
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) { bar.value = Math.round((100 * e.loaded) / e.total); }
      });
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
  if (now && window.fetch) {
    var poll = function () {
      fetch(now.getAttribute("data-state-url"), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (s) {
          if (s.step) {
            now.textContent = "Updating: " + s.step.replace(/_/g, " ") + ". Do not cut the power.";
          } else if (s.waiting) {
            now.textContent = s.waiting + " is waiting to be installed.";
          } else if (s.last) {
            now.textContent = "No update is running. The last one: " + s.last.outcome.replace(/_/g, " ") + ".";
          }
        })
        .catch(function () {});
    };
    window.setInterval(poll, 3000);
  }
})();
