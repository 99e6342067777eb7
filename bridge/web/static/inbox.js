// Small enhancements of server-rendered pages; everything works without them.
"use strict";

function autosubmit() {
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
}

function formatWaiting(seconds) {
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} ${document.documentElement.lang === "ru" ? "мин" : "min"}`;
  const h = document.documentElement.lang === "ru" ? "ч" : "h";
  const m = document.documentElement.lang === "ru" ? "мин" : "min";
  return `${Math.floor(minutes / 60)} ${h} ${String(minutes % 60).padStart(2, "0")} ${m}`;
}

// SLA clocks keep running while the page is open.
function tickSla() {
  const started = Date.now();
  const clocks = [...document.querySelectorAll(".sla[data-waiting]")].map((el) => ({
    el, waiting: Number(el.dataset.waiting), limit: Number(el.dataset.limit),
  }));
  setInterval(() => {
    const elapsed = (Date.now() - started) / 1000;
    for (const clock of clocks) {
      const waiting = clock.waiting + elapsed;
      clock.el.textContent = formatWaiting(waiting);
      const level = waiting >= clock.limit ? "red" : waiting >= 0.75 * clock.limit ? "amber" : "ok";
      clock.el.className = `sla sla-${level}`;
    }
  }, 15000);
}

function scrollThread() {
  const composer = document.getElementById("composer");
  if (composer) composer.scrollIntoView({ block: "end" });
}

document.addEventListener("DOMContentLoaded", () => {
  autosubmit();
  tickSla();
  scrollThread();
});
