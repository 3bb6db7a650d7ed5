// Draws every [data-chart] element's series with the vendored uPlot: time on x, one line
// per series, told apart by dash pattern and legend label as well as by colour (so the
// chart reads without colour). A missing value (null) is a gap, not a zero.
(function () {
  "use strict";
  var STYLES = [
    { stroke: "#16794c", width: 2 },
    { stroke: "#a05a00", width: 2, dash: [8, 4] },
    { stroke: "#b3261e", width: 2, dash: [2, 3] },
    { stroke: "#1d4ed8", width: 2, dash: [12, 3, 2, 3] }
  ];
  function draw(root) {
    if (!window.uPlot) return;
    (root || document).querySelectorAll("[data-chart]").forEach(function (el) {
      var d = JSON.parse(el.dataset.chart);
      el.textContent = "";
      var width = Math.max(200, el.clientWidth || 300);
      var series = [{ label: "time" }];
      var data = [d.x];
      d.series.forEach(function (s, i) {
        var style = STYLES[i % STYLES.length];
        // Points drawn too: a sample between two gaps is a dot, not nothing.
        series.push({ label: s.label, stroke: style.stroke, width: style.width, dash: style.dash,
                      spanGaps: false, points: { show: true, size: 5 } });
        data.push(s.values);
      });
      var opts = {
        width: width, height: 180,
        // Counts: from zero, and a few runs tall at least (all zeros is a flat line at 0,
        // not a line in the middle of 0 to 100).
        scales: { x: { time: true },
                  y: { range: function (u, min, max) { return [0, Math.max(4, max)]; } } },
        series: series,
        axes: [{}, { label: d.unit }]
      };
      new window.uPlot(opts, data, el);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(); });
  document.addEventListener("htmx:afterSettle", function (e) { draw(e.target); });
})();
