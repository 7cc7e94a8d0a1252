(function () {
  "use strict";
  // The page's only script (allowed by hash in the Content-Security-Policy). It adds conveniences;
  // everything it touches is also readable without it.
  var $$ = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };

  // Each table cell knows its column's name, shown beside the value when a narrow screen stacks the rows.
  $$(".table-wrap table").forEach(function (table) {
    var rows = $$("thead tr", table);
    var names = rows.length ? $$("th", rows[rows.length - 1]).map(function (th) { return th.textContent.trim(); }) : [];
    $$("tbody tr, tfoot tr", table).forEach(function (tr) {
      $$("td", tr).forEach(function (td, i) { if (names[i]) { td.setAttribute("data-label", names[i]); } });
    });
  });

  // Show or hide one role's turns in a conversation.
  $$("[data-role-toggle]").forEach(function (button) {
    button.addEventListener("click", function () {
      var on = button.getAttribute("aria-pressed") !== "true";
      button.setAttribute("aria-pressed", on ? "true" : "false");
      var chat = document.getElementById(button.getAttribute("data-chat"));
      $$(".bubble", chat).forEach(function (bubble) {
        if (bubble.getAttribute("data-role") === button.getAttribute("data-role-toggle")) { bubble.hidden = !on; }
      });
    });
  });

  // Open or close every rationale of an evaluation.
  $$("[data-expand]").forEach(function (button) {
    button.addEventListener("click", function () {
      var boxes = $$("details", document.getElementById(button.getAttribute("data-expand")));
      var open = !boxes.every(function (d) { return d.open; });
      boxes.forEach(function (d) { d.open = open; });
    });
  });

  // A link to a quoted passage opens the turn if a role filter hid it.
  $$("a.quote-link").forEach(function (link) {
    link.addEventListener("click", function () {
      var target = document.getElementById(link.getAttribute("href").slice(1));
      var bubble = target && target.closest(".bubble");
      if (bubble) { bubble.hidden = false; }
    });
  });

  // The whiteboard: step through its versions, or show the one a turn's badge names.
  var versions = $$(".board-version");
  var showBoard = function (i) {
    i = Math.max(0, Math.min(versions.length - 1, i));
    versions.forEach(function (v, k) { v.hidden = k !== i; });
    return i;
  };
  var current = versions.length - 1;
  $$("[data-board-step]").forEach(function (button) {
    button.addEventListener("click", function () {
      current = showBoard(current + parseInt(button.getAttribute("data-board-step"), 10));
    });
  });
  $$("[data-board-show]").forEach(function (badge) {
    badge.addEventListener("click", function () {
      var turn = badge.getAttribute("data-board-show");
      versions.forEach(function (v, k) { if (v.getAttribute("data-board-turn") === turn) { current = showBoard(k); } });
    });
  });

  // Sort a table by a column: numbers by their data-sort value, text otherwise.
  $$("table.sortable").forEach(function (table) {
    var head = table.tHead.rows[table.tHead.rows.length - 1];
    Array.prototype.forEach.call(head.cells, function (th, col) {
      th.classList.add("sortable-head");
      th.tabIndex = 0;
      var sort = function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(head.cells, function (c) { c.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var key = function (row) {
          var cell = row.cells[col];
          var raw = cell.getAttribute("data-sort");
          var num = raw === null ? NaN : parseFloat(raw);
          return isNaN(num) ? cell.textContent.trim().toLowerCase() : num;
        };
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          var order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
          return asc ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sort(); } });
    });
  });

  // The record behind the page travels with it: offer it as a JSON file.
  var data = document.getElementById("report-data");
  var download = document.getElementById("download-data");
  if (data && download) {
    download.addEventListener("click", function () {
      var text = JSON.stringify(JSON.parse(data.textContent), null, 2);
      var link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob([text], { type: "application/json" }));
      link.download = download.getAttribute("data-name") || "record.json";
      link.click();
      setTimeout(function () { URL.revokeObjectURL(link.href); }, 1000);
    });
  }

  document.documentElement.setAttribute("data-js", "ready");
})();
