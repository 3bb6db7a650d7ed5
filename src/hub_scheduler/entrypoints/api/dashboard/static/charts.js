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
        // Points drawn too: a sample between two gaps is a dot, not nothing (a reference
        // line, "points": false, has none).
        series.push({ label: s.label, stroke: style.stroke, width: style.width, dash: style.dash,
                      spanGaps: false, points: { show: s.points !== false, size: 5 } });
        data.push(s.values);
      });
      // The y axis starts at 0 and reaches at least "y_min_top" (default 4: counts, where
      // all zeros is a flat line at 0, not a line in the middle of 0 to 100).
      var minTop = typeof d.y_min_top === "number" ? d.y_min_top : 4;
      var opts = {
        width: width, height: 180,
        scales: { x: { time: true },
                  y: { range: function (u, min, max) { return [0, Math.max(minTop, max || 0)]; } } },
        series: series,
        axes: [{}, { label: d.unit }],
        // The legend's swatch has its line's pattern too, not only its colour.
        legend: { markers: { dash: function (u, i) {
          var dash = u.series[i].dash;
          return !dash ? "solid" : dash[0] <= 2 ? "dotted" : "dashed";
        } } }
      };
      // Kept on the element, so that a test can read what was drawn.
      el.uplot = new window.uPlot(opts, data, el);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(); });
  document.addEventListener("htmx:afterSettle", function (e) { draw(e.target); });
})();
