// Draws each plotly figure a page carries as JSON (<script type="application/json" class="plotly-figure"
// data-target="id">) into the element of that id: the Content-Security-Policy allows no inline script.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("script.plotly-figure").forEach(function (block) {
    var target = document.getElementById(block.dataset.target);
    if (!target || !window.Plotly) return;
    var figure = JSON.parse(block.textContent);
    Plotly.newPlot(target, figure.data, figure.layout, { displaylogo: false, responsive: true }).then(function () {
      target.dataset.drawn = "1";
    });
  });
});
