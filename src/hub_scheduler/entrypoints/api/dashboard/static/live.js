// Live updates: the server's event stream (live.py) says when something changed, and the
// page asks htmx to refresh what it shows, while the tab is visible. EventSource reconnects
// by itself when the stream drops; the 10 s polling of each part goes on meanwhile.
(function () {
  "use strict";
  if (!window.EventSource || !window.htmx) return;
  var prefix = document.currentScript.getAttribute("data-prefix");
  var body = document.body;
  var stream = new EventSource(prefix + "/events");
  stream.onopen = function () { body.setAttribute("data-live", "on"); };
  stream.onerror = function () { body.setAttribute("data-live", "off"); };
  stream.addEventListener("change", function () {
    body.setAttribute("data-changes", String(Number(body.getAttribute("data-changes") || 0) + 1));
    if (document.visibilityState === "visible") htmx.trigger(body, "refresh");
  });
})();
