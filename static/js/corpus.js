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

  // Leave unused filters out of the address, so shared links stay short and readable.
  document.addEventListener("htmx:configRequest", (event) => {
    if (!event.target.closest(".corpus-filters")) return;
    const params = event.detail.parameters;
    for (const [name, value] of Array.from(Object.entries(params))) {
      if (value === "") delete params[name];
    }
  });

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
