// Adjudication keys: u / i / m start from the union, intersection or majority of the
// coders' codes; Enter (outside the rationale) or Ctrl+Enter saves and opens the next unit.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("decision-form");
  const data = document.getElementById("adjudication-starts");
  if (!form || !data) return;
  const starts = JSON.parse(data.textContent);
  const rule = document.getElementById("rule");
  const boxes = () => Array.from(form.querySelectorAll("input[name=codes]"));

  function start(name) {
    const chosen = new Set(starts[name] || []);
    boxes().forEach((box) => { box.checked = chosen.has(box.value); });
    rule.value = name;
  }
  form.querySelectorAll("[data-start]").forEach((button) => {
    button.addEventListener("click", () => start(button.dataset.start));
  });
  boxes().forEach((box) => box.addEventListener("change", () => { rule.value = "manual"; }));

  document.addEventListener("keydown", (event) => {
    const typing = event.target.matches("textarea, input[type=text], input[type=number], select");
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
      return;
    }
    if (typing || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "u") start("union");
    else if (event.key === "i") start("intersection");
    else if (event.key === "m") start("majority");
    else if (event.key === "r") { event.preventDefault(); document.getElementById("rationale").focus(); }
    else if (event.key === "Enter" && !event.target.matches("button, a")) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
});
