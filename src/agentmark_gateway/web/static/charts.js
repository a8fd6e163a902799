/* Line charts drawn with uPlot (vendored in uplot/) from the numbers an element
 * carries in data-chart: {x: [Unix seconds], series: [{label, values}], format,
 * height}. format says how values read: "count" (whole numbers, the default),
 * "usd", "ms" or "percent". Every page that draws one says the same in text and
 * in a table, so the chart is decoration for those who cannot see it (aria-hidden).
 * Used by the key page and the metrics page. Drawn again when htmx swaps in another
 * range; resized with its column. */
"use strict";

(function () {
  // Series colors in order (the key page's follow its OUTCOMES, key_detail_pages.py).
  const COLORS = ["#1f7a46", "#b7791f", "#7c3aed", "#c62828", "#2563eb", "#1c2230"];
  const HEIGHT = 280;
  const WHOLE_TICKS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 100000, 1000000];

  const FORMATS = {
    count: (value) => value.toLocaleString(),
    usd: (value) =>
      "$" + (value >= 1 || value === 0 ? value.toFixed(2) : value.toPrecision(2)),
    ms: (value) => {
      if (value >= 1000) return (value / 1000).toFixed(2) + " s";
      // Below 10 ms ticks fall on fractions: 0.25 ms, 1.5 ms.
      return (value >= 10 ? Math.round(value) : Number(value.toFixed(2))) + " ms";
    },
    percent: (value) => value.toFixed(value >= 10 || value === 0 ? 0 : 1) + "%",
  };

  function utc(seconds) {
    return uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC");
  }

  function yRange(format) {
    return (_plot, _min, max) => {
      if (format === "count") return [0, Math.max(1, max)];
      if (!(max > 0)) return [0, 1];
      const top = max * 1.1;
      return [0, format === "percent" ? Math.min(100, top) : top];
    };
  }

  function options(data, width, height) {
    const format = FORMATS[data.format] ? data.format : "count";
    const write = FORMATS[format];
    const yAxis = {
      stroke: "#5b6474",
      grid: { stroke: "#eceef2" },
      // As wide as the longest label ($0.000060 is wider than 2,000).
      size: (_plot, values) =>
        values ? 24 + 7.5 * Math.max(2, ...values.map((value) => String(value).length)) : 40,
      values: (_plot, ticks) => ticks.map(write),
    };
    // Counts are whole numbers: no 0.5 ticks on a quiet app.
    if (format === "count") yAxis.incrs = WHOLE_TICKS;
    return {
      width: width,
      height: height,
      tzDate: utc,
      cursor: { drag: { x: false, y: false } },
      scales: { y: { range: yRange(format) } },
      axes: [{ stroke: "#5b6474", grid: { stroke: "#eceef2" } }, yAxis],
      series: [
        { label: "Time (UTC)" },
        ...data.series.map((series, index) => {
          // A series that is zero throughout stays in the legend but draws no marks.
          const seen = series.values.some((value) => value > 0);
          return {
            label: series.label,
            stroke: COLORS[index % COLORS.length],
            width: seen ? 2 : 1,
            points: { show: seen && data.x.length <= 60 },
            value: (_plot, value) => (value == null ? "–" : write(value)),
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
    const height = data.height || HEIGHT;
    const width = Math.max(280, holder.clientWidth);
    const plot = new uPlot(
      options(data, width, height),
      [data.x, ...data.series.map((series) => series.values)],
      holder,
    );
    if (typeof ResizeObserver === "function") {
      let last = width;
      new ResizeObserver(() => {
        const now = Math.max(280, holder.clientWidth);
        if (Math.abs(now - last) > 4) {
          last = now;
          plot.setSize({ width: now, height: height });
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
