// Codebook editor: after htmx replaces the editor, put the keyboard focus back on the
// message (so it is read out) or on the chosen code in the tree.
document.addEventListener("htmx:afterSettle", () => {
  const editor = document.getElementById("editor");
  if (!editor) {
    return;
  }
  const target =
    editor.querySelector("[role=alert], [role=status]") ||
    editor.querySelector(".tree a.selected");
  if (!target) {
    return;
  }
  if (target.tagName !== "A") {
    target.setAttribute("tabindex", "-1");
  }
  target.focus();
});
