// Kanban board: drag a deal card onto another column to move it (native HTML5 drag and
// drop). The move is posted like the card's own form (stage + CSRF token) and answered
// with JSON; on success the card moves and the column counts update, on refusal the
// message is shown. Without JavaScript (or for several at once) tick cards and use the
// column's move form.
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }
  ready(function () {
    var board = document.querySelector(".kanban");
    if (!board) { return; }
    board.classList.add("js-kanban");
    var status = document.querySelector(".kanban-status");
    var tokenInput = board.querySelector("input[name=csrfmiddlewaretoken]");
    var token = tokenInput ? tokenInput.value : "";
    var template = board.getAttribute("data-move-url");
    var dragged = null;

    function say(text) { if (status) { status.textContent = text; } }
    function bump(column, delta) {
      var count = column.querySelector(".count");
      if (!count) { return; }
      var n = parseInt(count.textContent.replace(/[^0-9]/g, ""), 10) || 0;
      count.textContent = String(Math.max(0, n + delta));
    }

    // Delegated: cards that "Load more" brings in later drag like the first ones.
    board.addEventListener("dragstart", function (event) {
      var card = event.target.closest ? event.target.closest(".deal-card") : null;
      if (!card) { return; }
      dragged = card;
      card.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", card.getAttribute("data-deal"));
    });
    board.addEventListener("dragend", function () {
      if (dragged) { dragged.classList.remove("dragging"); }
      dragged = null;
    });
    board.querySelectorAll(".kanban-col").forEach(function (column) {
      column.addEventListener("dragover", function (event) { event.preventDefault(); column.classList.add("drop-target"); });
      column.addEventListener("dragleave", function () { column.classList.remove("drop-target"); });
      column.addEventListener("drop", function (event) {
        event.preventDefault();
        column.classList.remove("drop-target");
        var card = dragged;
        if (!card) { return; }
        var from = card.closest(".kanban-col");
        if (from === column) { return; }
        var body = new URLSearchParams();
        body.set("stage", column.getAttribute("data-stage"));
        var url = template.replace(/0\/move\/$/, card.getAttribute("data-deal") + "/move/");
        fetch(url, {
          method: "POST",
          credentials: "same-origin",
          headers: { "X-CSRFToken": token, "Accept": "application/json" },
          body: body
        }).then(function (response) {
          return response.json().then(function (data) { return { ok: response.ok, data: data }; });
        }).then(function (result) {
          if (result.ok && result.data.ok) {
            var cards = column.querySelector(".cards");
            cards.insertBefore(card, cards.querySelector(":scope > li.more"));
            bump(from, -1);
            bump(column, 1);
            say(card.querySelector("a").textContent + " → " + column.getAttribute("aria-label"));
          } else {
            var errors = result.data.errors || {};
            var text = Object.keys(errors).map(function (k) { return errors[k].join(" "); }).join(" ");
            say(text || "Refused");
          }
        }).catch(function () { say("Network error"); });
      });
    });
  });
})();
