// Page behaviour lives here (no inline scripts: the CSP forbids them).
document.addEventListener("DOMContentLoaded", () => {
  document.body.classList.add("js");
});
