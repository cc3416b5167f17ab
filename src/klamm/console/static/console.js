// klamm console: the little JavaScript the pages use. Everything works without it; it only
// (1) keeps pages live by re-fetching them, (2) tails messages, (3) switches value views.
"use strict";
(function () {
  let dirty = false; // the user is typing: never replace the page under them
  document.addEventListener("input", () => { dirty = true; });

  async function swap(url, target, selector) {
    const response = await fetch(url, { headers: { "x-requested-with": "klamm-console" } });
    if (!response.ok) return;
    const html = await response.text();
    if (selector) {
      const doc = new DOMParser().parseFromString(html, "text/html");
      const fresh = doc.querySelector(selector);
      if (fresh) target.innerHTML = fresh.innerHTML;
    } else {
      target.innerHTML = html;
    }
  }

  function refreshPage(main) {
    const seconds = parseFloat(main.dataset.refresh);
    if (!(seconds > 0)) return;
    setInterval(() => {
      const active = document.activeElement;
      const editing = active && main.contains(active) && /INPUT|SELECT|TEXTAREA/.test(active.tagName);
      if (dirty || editing || document.hidden) return;
      swap(location.href, main, "main").catch(() => {});
    }, Math.max(1, seconds) * 1000);
  }

  function tail(box) {
    setInterval(() => {
      if (document.hidden) return;
      swap(box.dataset.tail, box, null).catch(() => {});
    }, 2000);
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest(".view-btn");
    if (!button) return;
    const message = button.closest(".msg");
    const view = button.dataset.view;
    message.querySelectorAll(".view").forEach((el) => {
      el.hidden = !el.classList.contains("view-" + view);
    });
    message.querySelectorAll(".view-btn").forEach((b) => {
      b.setAttribute("aria-pressed", String(b === button));
    });
  });

  // A search can take a moment (a bounded scan): say so while the next page loads.
  document.addEventListener("submit", (event) => {
    if (event.target.id !== "browse-form") return;
    const busy = document.getElementById("scan-busy");
    if (busy) busy.hidden = false;
    const box = document.getElementById("messages");
    if (box) box.setAttribute("aria-busy", "true");
  });

  document.addEventListener("DOMContentLoaded", () => {
    const main = document.querySelector("main[data-refresh]");
    if (main) refreshPage(main);
    const box = document.querySelector("#messages[data-tail]");
    if (box) tail(box);
  });
})();
