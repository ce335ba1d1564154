// The corpus list and the thread page: "/" focuses search; long code blocks start collapsed.
(() => {
  const LONG_CODE_LINES = 15;

  function collapseLongCode(root) {
    root.querySelectorAll(".post-body pre").forEach((pre) => {
      if (pre.dataset.collapsible) return;
      const lines = pre.textContent.split("\n").length;
      if (lines <= LONG_CODE_LINES) return;
      pre.dataset.collapsible = "1";
      pre.classList.add("collapsed");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link code-toggle";
      button.setAttribute("aria-expanded", "false");
      button.textContent = `Show all ${lines} lines`;
      button.addEventListener("click", () => {
        const collapsed = pre.classList.toggle("collapsed");
        button.setAttribute("aria-expanded", String(!collapsed));
        button.textContent = collapsed ? `Show all ${lines} lines` : "Collapse code";
      });
      pre.after(button);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    collapseLongCode(document);
    document.addEventListener("keydown", (event) => {
      const search = document.getElementById("id_q");
      const typing = event.target.closest("input, textarea, select, [contenteditable]");
      if (search && event.key === "/" && !typing) {
        event.preventDefault();
        search.focus();
      }
    });
  });
})();
