// Affinity board: move open codes into groups by drag and drop or with the keyboard.
// Every move names the card's revision; the server refuses moves based on an old one.
(function () {
  "use strict";

  function board() { return document.getElementById("board"); }

  function move(card, groupId) {
    var target = board();
    if (!target || !card) { return; }
    htmx.ajax("POST", target.dataset.actionUrl, {
      target: "#board",
      swap: "outerHTML",
      values: {
        action: "move",
        card: card.dataset.card,
        revision: card.dataset.revision,
        group: groupId || "",
      },
    }).then(function () {
      var again = document.querySelector('[data-card="' + card.dataset.card + '"]');
      if (again) { again.focus(); }
    });
  }

  // A refused change (409) comes back as the current board with the reason on top.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.status === 409) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  function rename(card) {
    var current = card.querySelector("strong").textContent;
    var label = window.prompt("New name for this open code", current);
    if (label === null || !label.trim() || label.trim() === current) { return; }
    htmx.ajax("POST", board().dataset.actionUrl, {
      target: "#board",
      swap: "outerHTML",
      values: { action: "rename", card: card.dataset.card, revision: card.dataset.revision, label: label },
    });
  }

  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest && event.target.closest(".card");
    if (!card) { return; }
    event.dataTransfer.setData("text/plain", card.dataset.card);
    event.dataTransfer.effectAllowed = "move";
  });

  document.addEventListener("dragover", function (event) {
    if (event.target.closest && event.target.closest(".board-group")) { event.preventDefault(); }
  });

  document.addEventListener("drop", function (event) {
    var group = event.target.closest && event.target.closest(".board-group");
    if (!group) { return; }
    event.preventDefault();
    var id = event.dataTransfer.getData("text/plain");
    move(document.querySelector('[data-card="' + id + '"]'), group.dataset.group);
  });

  var moving = null;

  function openDialog(card) {
    var dialog = document.getElementById("move-dialog");
    if (!dialog) { return; }
    moving = card;
    dialog.hidden = false;
    document.getElementById("move-target").focus();
  }

  function closeDialog() {
    var dialog = document.getElementById("move-dialog");
    if (dialog) { dialog.hidden = true; }
    if (moving) { moving.focus(); }
    moving = null;
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (target.id === "move-target") {
      if (event.key === "Enter") {
        event.preventDefault();
        var option = target.options[target.selectedIndex];
        var card = moving;
        document.getElementById("move-dialog").hidden = true;
        moving = null;
        move(card, option.dataset.group);
      } else if (event.key === "Escape") {
        event.preventDefault();
        closeDialog();
      }
      return;
    }
    if (!target.classList || !target.classList.contains("card")) { return; }
    var cards = Array.prototype.slice.call(document.querySelectorAll("#board .card"));
    var index = cards.indexOf(target);
    if (event.key === "m") {
      event.preventDefault();
      openDialog(target);
    } else if (event.key === "r") {
      event.preventDefault();
      rename(target);
    } else if (event.key === "ArrowDown" || event.key === "ArrowRight") {
      event.preventDefault();
      if (cards[index + 1]) { cards[index + 1].focus(); }
    } else if (event.key === "ArrowUp" || event.key === "ArrowLeft") {
      event.preventDefault();
      if (cards[index - 1]) { cards[index - 1].focus(); }
    }
  });
})();
