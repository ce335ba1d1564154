// Open coding form: pick a suggestion into the list of codes; Ctrl+Enter submits.
(function () {
  "use strict";
  var form = document.getElementById("open-form");
  if (!form) { return; }
  var list = document.getElementById("open-codes");
  var add = document.getElementById("open-add");

  add.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.ctrlKey) { return; }
    event.preventDefault();
    var text = add.value.trim();
    if (!text) { return; }
    list.value = (list.value.trim() ? list.value.trim() + "\n" : "") + text;
    add.value = "";
  });

  form.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.querySelector('button[name="submit"]').click();
    }
  });
})();
