// Draws every [data-chart] element's series with the vendored uPlot: the hours on x, one
// line per outcome, told apart by dash pattern and legend label as well as by colour.
(function () {
  "use strict";
  var SERIES = [
    { label: "succeeded", stroke: "#16794c", width: 2 },
    { label: "failed", stroke: "#a05a00", width: 2, dash: [8, 4] },
    { label: "dead", stroke: "#b3261e", width: 2, dash: [2, 3] }
  ];
  function draw(root) {
    if (!window.uPlot) return;
    (root || document).querySelectorAll("[data-chart]").forEach(function (el) {
      var d = JSON.parse(el.dataset.chart);
      el.textContent = "";
      var width = Math.max(200, el.clientWidth || 300);
      var opts = {
        width: width, height: 180,
        scales: { x: { time: true } },
        series: [{ label: "hour" }].concat(SERIES),
        axes: [{}, { label: "attempts per hour" }]
      };
      new window.uPlot(opts, [d.x, d.succeeded, d.failed, d.dead], el);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(); });
  document.addEventListener("htmx:afterSettle", function (e) { draw(e.target); });
})();
