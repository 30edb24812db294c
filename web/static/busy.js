// Forms whose work takes a while (data-busy="what is happening"): once sent, the
// button is disabled (no second request) and the text says what the server is doing.
(function () {
  "use strict";
  var forms = document.querySelectorAll("form[data-busy]");
  Array.prototype.forEach.call(forms, function (form) {
    form.addEventListener("submit", function () {
      var said = form.querySelector("[data-busy-text]");
      if (said) { said.textContent = form.getAttribute("data-busy"); }
      Array.prototype.forEach.call(form.querySelectorAll("button"), function (b) {
        // After the submit event, so the button's own name and value are still sent.
        window.setTimeout(function () { b.disabled = true; }, 0);
      });
    });
  });
})();
