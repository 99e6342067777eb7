// The threshold page: moving the slider shows what the change would do, from the curve the
// server computed (no request per move).
"use strict";

function percent(value, unknown) {
  return value === null ? unknown : `${Math.round(value * 100)}%`;
}

function thresholdPage() {
  const card = document.getElementById("threshold");
  if (!card) return;
  const points = JSON.parse(document.getElementById("curve-data").textContent);
  const slider = document.getElementById("candidate");
  const output = document.getElementById("candidate-value");
  const line = document.getElementById("line-candidate");
  const prediction = document.getElementById("prediction");
  const width = Number(line.ownerSVGElement.viewBox.baseVal.width) - 60;
  const inForce = points[Math.round(Number(card.dataset.inForce) * 100)];
  const show = () => {
    const t = Number(slider.value);
    const point = points[Math.round(t * 100)];
    output.textContent = t.toFixed(2);
    line.setAttribute("x1", String(t * width));
    line.setAttribute("x2", String(t * width));
    const delta = Math.round(inForce.per_week - point.per_week);
    const template = delta > 0 ? card.dataset.textMore : delta < 0 ? card.dataset.textFewer : card.dataset.textSame;
    prediction.textContent = template
      .replace("{t}", t.toFixed(2))
      .replace("{coverage}", percent(point.coverage, card.dataset.unknown))
      .replace("{precision}", percent(point.precision, card.dataset.unknown))
      .replace("{n}", String(Math.abs(delta)));
  };
  slider.addEventListener("input", show);
  show();
}

document.addEventListener("DOMContentLoaded", thresholdPage);
