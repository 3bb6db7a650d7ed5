// A refused or failed action (a button whose request answered 4xx or 5xx) says why: the
// server's alert fragment (its text escaped by the server) goes into #action-error, which
// screen readers announce. The next successful action clears it.
(function () {
  "use strict";
  if (!window.htmx) return;
  document.body.addEventListener("htmx:responseError", function (event) {
    var box = document.getElementById("action-error");
    var xhr = event.detail.xhr;
    if (!box || !xhr || event.detail.requestConfig.verb !== "post") return;
    box.innerHTML = xhr.responseText || "<p role='alert'>The action failed (" + xhr.status + ").</p>";
    box.hidden = false;
  });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    var box = document.getElementById("action-error");
    if (box && event.detail.successful && event.detail.requestConfig.verb === "post") {
      box.hidden = true;
      box.textContent = "";
    }
  });

  // "Cancel ticked" and the like confirm with the number of runs ticked (none: say so).
  document.body.addEventListener("htmx:confirm", function (event) {
    var label = event.target.dataset && event.target.dataset.picked;
    if (!label) return;
    event.preventDefault();
    var n = document.querySelectorAll("#runs input.pick:checked").length;
    if (!n) { window.alert("Tick the runs to act on first."); return; }
    if (window.confirm(label + " " + n + " ticked run" + (n === 1 ? "" : "s") + "?")) {
      event.detail.issueRequest(true);
    }
  });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.successful && event.detail.elt.dataset && event.detail.elt.dataset.picked) {
      document.querySelectorAll("#runs input.pick:checked").forEach(function (box) {
        box.checked = false;
      });
    }
  });
})();
