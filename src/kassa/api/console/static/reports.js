// Kassa console: the reports page's chart. The figures come from the page's JSON data block
// (exact decimal strings, turned into numbers for drawing only); Chart.js is the vendored build
// served by Kassa.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var canvas = document.getElementById("chart-activity");
  var data = document.getElementById("chart-data");
  if (!canvas || !data || typeof Chart === "undefined") { return; }
  var parsed = JSON.parse(data.textContent);
  var colours = {deposit: "#1f77b4", usage: "#ff7f0e", activation: "#2ca02c",
                 refund: "#d62728", withdrawal: "#9467bd"};
  var datasets = Object.keys(parsed.series).map(function (name) {
    return {label: name, backgroundColor: colours[name] || "#7f7f7f",
            data: parsed.series[name].map(Number)};
  });
  new Chart(canvas, {
    type: "bar",
    data: {labels: parsed.days, datasets: datasets},
    options: {animation: false, responsive: false,
              scales: {x: {stacked: true}, y: {stacked: true, title: {display: true, text: "USD"}}}}
  });
  var solvencyCanvas = document.getElementById("chart-solvency");
  var solvencyData = document.getElementById("solvency-data");
  if (solvencyCanvas && solvencyData) {
    var figures = JSON.parse(solvencyData.textContent);
    var asNumber = function (value) { return value === null ? null : Number(value); };
    new Chart(solvencyCanvas, {
      type: "line",
      data: {labels: figures.days, datasets: [
        {label: "owed to customers", borderColor: "#d62728", data: figures.owed.map(asNumber)},
        {label: "held (coverage)", borderColor: "#2ca02c", data: figures.held.map(asNumber)}
      ]},
      options: {animation: false, responsive: false, spanGaps: false,
                scales: {y: {title: {display: true, text: "USD"}}}}
    });
  }
  window.kassaChartsReady = true;
});
