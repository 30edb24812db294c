// A field's error message tied to the field, for screen readers: the field is marked
// invalid and described by its message, and the first such field takes the focus.
// A radio group's message is tied to each of its buttons (the keyboard may land on any).
// A page refused as a whole (a message of its own, no field named) takes the focus
// itself, so a form sent from far down the page is not left without a word.
// The pages work without it; the messages are the server's (role=alert).
(function () {
  "use strict";
  var first = null;
  function tie(field, err) {
    field.setAttribute("aria-invalid", "true");
    var by = (field.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
    if (by.indexOf(err.id) < 0) by.push(err.id);
    field.setAttribute("aria-describedby", by.join(" "));
  }
  Array.prototype.forEach.call(document.querySelectorAll(".field-error"), function (err) {
    var key = err.id.replace(/^error-/, "");
    var form = err.closest("form") || document;
    var field = document.getElementById(key);
    if (!field || !field.matches("input, select, textarea")) {
      field = form.querySelector('[name="' + key.replace(/["\\]/g, "") + '"]:not([type=hidden])');
    }
    if (!field) {
      // A message just after its field (or the label holding it); one further on is
      // about the form as a whole and stays a message of its own.
      var prev = err.previousElementSibling;
      if (prev && prev.matches("label")) prev = prev.querySelector("input, select, textarea");
      field = prev && prev.matches("input, select, textarea") ? prev : null;
    }
    if (!field || field.type === "hidden") return;
    if (field.type === "radio" && field.form) {
      Array.prototype.forEach.call(field.form.elements, function (el) {
        if (el.type === "radio" && el.name === field.name) tie(el, err);
      });
    } else {
      tie(field, err);
    }
    if (first === null) first = field;
  });
  if (document.querySelector("[autofocus]")) return;
  if (first === null) {
    first = document.querySelector("main p.error[role=alert]");
    if (first !== null && !first.hasAttribute("tabindex")) first.setAttribute("tabindex", "-1");
  }
  if (first !== null) first.focus();
})();
