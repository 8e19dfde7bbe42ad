/* Draws the Plotly figures of the console. Each chart is an element with data-figure="ID"
   next to <script type="application/json" id="ID"> holding the figure (a data block: never
   executed, so the script-src 'self' CSP allows it). plotly.min.js is served from the
   installed plotly Python package. */
(function () {
  "use strict";
  function draw() {
    if (typeof window.Plotly === "undefined") { return; }
    document.querySelectorAll("[data-figure]").forEach(function (target) {
      var source = document.getElementById(target.getAttribute("data-figure"));
      if (!source) { return; }
      var figure = JSON.parse(source.textContent);
      window.Plotly.newPlot(target, figure.data, figure.layout, {
        responsive: true,
        displaylogo: false,
        displayModeBar: false,
        modeBarButtonsToRemove: ["sendDataToCloud"],
      }).then(function () { target.setAttribute("data-drawn", "true"); });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
