// Every <time datetime="..."> in the viewer's zone with a relative part ("4 min ago",
// "in 3 h"); the exact instant stays in the title. Runs on load and after each htmx swap.
(function () {
  "use strict";
  var day = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short" });
  var clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  var full = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit", timeZoneName: "short"
  });
  function relative(ms) {
    var s = Math.round(Math.abs(ms) / 1000), text;
    if (s < 5) return "now";
    if (s < 60) text = s + " s";
    else if (s < 3600) text = Math.round(s / 60) + " min";
    else if (s < 172800) text = Math.round(s / 3600) + " h";
    else text = Math.round(s / 86400) + " d";
    return ms > 0 ? "in " + text : text + " ago";
  }
  function render(root) {
    var now = Date.now();
    (root || document).querySelectorAll("time[datetime]").forEach(function (el) {
      var at = new Date(el.getAttribute("datetime"));
      if (isNaN(at)) return;
      if (!el.dataset.exact) el.dataset.exact = el.title || el.textContent;
      var sameDay = day.format(at) === day.format(new Date(now));
      el.textContent = (sameDay ? "" : day.format(at) + " ") + clock.format(at) +
        " (" + relative(at - now) + ")";
      el.title = full.format(at) + " · " + el.dataset.exact;
    });
  }
  window.hubTimes = render;
  document.addEventListener("DOMContentLoaded", function () { render(); });
  document.addEventListener("htmx:afterSettle", function (e) { render(e.target); });
})();
