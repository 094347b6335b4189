// The user list's "select every user on this page" box. Without this script the rows'
// boxes work one at a time, and the bulk form works the same.
(function () {
  "use strict";
  var all = document.querySelector("[data-select-all]");
  if (!all) return;
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input[data-select]"));
  if (boxes.length === 0) return;
  all.hidden = false;
  function sync() {
    var checked = boxes.filter(function (box) { return box.checked; }).length;
    all.checked = checked === boxes.length;
    all.indeterminate = checked > 0 && checked < boxes.length;
  }
  all.addEventListener("change", function () {
    boxes.forEach(function (box) { box.checked = all.checked; });
    sync();
  });
  boxes.forEach(function (box) { box.addEventListener("change", sync); });
  sync();
})();
