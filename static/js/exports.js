// Download links carry the chosen options as query parameters.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("export-form");
  if (!form) return;
  form.querySelectorAll("a[data-export]").forEach((link) => {
    link.addEventListener("click", (event) => {
      const params = new URLSearchParams();
      form.querySelectorAll("input[type=checkbox]:checked").forEach((box) => params.set(box.name, "1"));
      const query = params.toString();
      link.href = link.getAttribute("href").split("?")[0] + (query ? "?" + query : "");
    });
  });
});
