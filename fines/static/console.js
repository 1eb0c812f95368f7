// Ask before destructive actions (forms with data-confirm).
document.addEventListener("submit", function (ev) {
  var msg = ev.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) { ev.preventDefault(); }
});

// The review queue by keyboard alone (the shortcuts are listed on the page): j/k move between
// items, c confirms, 1-9 choose a candidate, e edits the plate, x picks a reject reason (Enter
// submits the form of a focused reason list). The item the page opened with has focus.
(function () {
  function items() { return Array.prototype.slice.call(document.querySelectorAll(".review-item")); }
  function current() {
    var list = items();
    var active = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest(".review-item") : null;
    return active || document.querySelector(".review-item.current") || list[0] || null;
  }
  function open(item) {
    if (!item) { return; }
    items().forEach(function (i) { i.classList.toggle("current", i === item); });
    document.querySelectorAll("#queue tr[data-item]").forEach(function (row) {
      row.classList.toggle("on", row.getAttribute("data-item") === item.getAttribute("data-id"));
    });
    item.focus();
    item.scrollIntoView({ block: "start" });
    if (window.history && window.history.replaceState) {
      window.history.replaceState(null, "", "/review?item=" + item.getAttribute("data-id") + "#" + item.id);
    }
  }
  function move(step) {
    var list = items();
    var at = list.indexOf(current());
    open(list[Math.min(list.length - 1, Math.max(0, at + step))]);
  }
  function submit(form) {
    if (form) { if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); } }
  }
  function typing(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.isContentEditable);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var item = document.querySelector(".review-item.current");
    if (item) { item.focus(); item.scrollIntoView({ block: "start" }); }
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    var el = document.activeElement;
    if (ev.key === "Enter" && el && el.tagName === "SELECT" && el.form && el.closest(".review-item")) {
      ev.preventDefault();
      submit(el.form);
      return;
    }
    if (ev.key === "Escape" && (typing(el) || (el && el.tagName === "SELECT"))) {
      var back = el.closest(".review-item");
      if (back) { back.focus(); ev.preventDefault(); }
      return;
    }
    if (typing(el) || !document.querySelector(".review-item")) { return; }
    var item = current();
    if (!item) { return; }
    if (ev.key === "j") { move(1); ev.preventDefault(); }
    else if (ev.key === "k") { move(-1); ev.preventDefault(); }
    else if (ev.key === "c") { submit(item.querySelector("form.confirm")); ev.preventDefault(); }
    else if (ev.key === "e") {
      var plate = item.querySelector("form.correct input[name=plate]");
      if (plate) { plate.focus(); plate.select(); ev.preventDefault(); }
    } else if (ev.key === "x") {
      var why = item.querySelector("form.reject select[name=reason_code]");
      if (why) { why.focus(); ev.preventDefault(); }
    } else if (/^[1-9]$/.test(ev.key)) {
      submit(item.querySelector("form.choose[data-key='" + ev.key + "']"));
      ev.preventDefault();
    }
  });
}());
