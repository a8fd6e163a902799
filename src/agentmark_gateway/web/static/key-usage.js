/* Key page: draws a key's requests over time by outcome with uPlot (vendored in
 * uplot/), from the numbers the page carries in data-chart. The page says the same
 * in text and in a table, so the chart is decoration for those who cannot see it.
 * Drawn again when htmx swaps in another range; resized with its column. */
"use strict";

(function () {
  // One color per outcome, in the order of the page's OUTCOMES (key_detail_pages.py).
  const COLORS = ["#1f7a46", "#b7791f", "#7c3aed", "#c62828", "#2563eb", "#1c2230"];
  const HEIGHT = 280;

  function utc(seconds) {
    return uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC");
  }

  function options(data, width) {
    return {
      width: width,
      height: HEIGHT,
      tzDate: utc,
      cursor: { drag: { x: false, y: false } },
      scales: { y: { range: (_plot, _min, max) => [0, Math.max(1, max)] } },
      axes: [
        { stroke: "#5b6474", grid: { stroke: "#eceef2" } },
        {
          stroke: "#5b6474",
          grid: { stroke: "#eceef2" },
          // Requests are whole numbers: no 0.5 ticks on a quiet key.
          incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 100000, 1000000],
          values: (_plot, ticks) => ticks.map((tick) => tick.toLocaleString()),
        },
      ],
      series: [
        { label: "Time (UTC)" },
        ...data.series.map((series, index) => {
          // An outcome that never happened stays in the legend but draws no marks.
          const seen = series.values.some((value) => value > 0);
          return {
            label: series.label,
            stroke: COLORS[index % COLORS.length],
            width: seen ? 2 : 1,
            points: { show: seen && data.x.length <= 60 },
            value: (_plot, value) => (value == null ? "–" : value.toLocaleString()),
          };
        }),
      ],
    };
  }

  function draw(holder) {
    if (holder.dataset.drawn === "true" || typeof uPlot === "undefined") return;
    let data;
    try {
      data = JSON.parse(holder.dataset.chart);
    } catch (_error) {
      return;
    }
    holder.dataset.drawn = "true";
    const width = Math.max(280, holder.clientWidth);
    const plot = new uPlot(
      options(data, width),
      [data.x, ...data.series.map((series) => series.values)],
      holder,
    );
    if (typeof ResizeObserver === "function") {
      let last = width;
      new ResizeObserver(() => {
        const now = Math.max(280, holder.clientWidth);
        if (Math.abs(now - last) > 4) {
          last = now;
          plot.setSize({ width: now, height: HEIGHT });
        }
      }).observe(holder);
    }
  }

  function drawWithin(root) {
    if (!(root instanceof Element || root instanceof Document)) return;
    if (root instanceof Element && root.matches("[data-chart]")) draw(root);
    root.querySelectorAll("[data-chart]").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => drawWithin(document));
  } else {
    drawWithin(document);
  }
  document.addEventListener("htmx:load", (event) => drawWithin(event.detail.elt));
})();
