// Live updates: the server's event stream (live.py) says when something changed, and the
// page asks htmx to refresh what it shows, while the tab is visible. EventSource reconnects
// by itself when the stream drops, but gives up for good on an answer that is not a stream
// (a 429 when the reads budget is spent, a restart's 502): then a new one is opened after
// RETRY ms. The 10 s polling of each part goes on meanwhile.
// A change the page caused itself (an action, whose answer refreshes the page already) is not
// refreshed for again, and refreshes come at most every QUIET ms: a list swapped under the
// pointer twice in a row loses the click that was on its way.
(function () {
  "use strict";
  if (!window.EventSource || !window.htmx) return;
  var QUIET = 3000;
  var prefix = document.currentScript.getAttribute("data-prefix");
  var body = document.body;
  var last = 0;
  body.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.requestConfig.verb === "post") last = Date.now();
  });
  var RETRY = 30000;
  function changed() {
    body.setAttribute("data-changes", String(Number(body.getAttribute("data-changes") || 0) + 1));
    if (document.visibilityState !== "visible" || Date.now() - last < QUIET) return;
    last = Date.now();
    htmx.trigger(body, "refresh");
  }
  function connect() {
    var stream = new EventSource(prefix + "/events");
    stream.onopen = function () { body.setAttribute("data-live", "on"); };
    stream.onerror = function () {
      body.setAttribute("data-live", "off");
      if (stream.readyState === EventSource.CLOSED) window.setTimeout(connect, RETRY);
    };
    stream.addEventListener("change", changed);
  }
  connect();
})();
