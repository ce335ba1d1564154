// Open coding form: suggestions into the list of codes, quotes from selected post text
// (offsets in code points of the post's plain text, checked again by the server),
// Ctrl+Enter submits.
(function () {
  "use strict";
  var form = document.getElementById("open-form");
  if (!form) { return; }
  var list = document.getElementById("open-codes");
  var add = document.getElementById("open-add");
  var quotesField = document.getElementById("open-quotes");
  var quoteList = document.getElementById("quote-list");
  var posts = JSON.parse(document.getElementById("open-posts").textContent).map(function (p) {
    return { id: p.id, chars: Array.from(p.text) };
  });
  var quotes = [];
  try { quotes = JSON.parse(quotesField.value || "[]"); } catch (e) { quotes = []; }

  function renderQuotes() {
    quotesField.value = JSON.stringify(quotes);
    quoteList.replaceChildren();
    quotes.forEach(function (q, i) {
      var li = document.createElement("li");
      var code = document.createElement("strong");
      code.textContent = q.code + ": ";
      var text = document.createElement("q");
      text.textContent = q.text;
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "secondary";
      remove.textContent = "Remove";
      remove.addEventListener("click", function () { quotes.splice(i, 1); renderQuotes(); });
      li.append(code, text, " ", remove);
      quoteList.append(li);
    });
  }

  function caretLine() {
    var before = list.value.slice(0, list.selectionStart);
    var lines = list.value.split("\n");
    var line = lines[before.split("\n").length - 1] || "";
    if (!line.trim()) {
      line = lines.filter(function (l) { return l.trim(); }).pop() || "";
    }
    return line.trim().replace(/\s+/gu, " ");
  }

  // The selection as [start, end) code points of its post (first match of its text).
  function selectionSpan() {
    var selection = window.getSelection();
    if (!selection || selection.isCollapsed || !selection.anchorNode) { return null; }
    var element = selection.anchorNode.nodeType === 1 ? selection.anchorNode : selection.anchorNode.parentElement;
    var article = element && element.closest("article.post[data-post-id]");
    if (!article) { return null; }
    var post = posts.find(function (p) { return String(p.id) === article.dataset.postId; });
    var wanted = Array.from(selection.toString().trim().replace(/\s+/gu, " "));
    if (!post || !wanted.length) { return null; }
    var flat = [], map = [];
    post.chars.forEach(function (c, i) {
      var space = /\s/u.test(c);
      if (space && flat[flat.length - 1] === " ") { return; }
      flat.push(space ? " " : c);
      map.push(i);
    });
    outer: for (var i = 0; i + wanted.length <= flat.length; i++) {
      for (var j = 0; j < wanted.length; j++) { if (flat[i + j] !== wanted[j]) { continue outer; } }
      var start = map[i], end = map[i + wanted.length - 1] + 1;
      return { post: post.id, start: start, end: end, text: post.chars.slice(start, end).join("") };
    }
    return null;
  }

  function addQuote() {
    var code = caretLine();
    var span = selectionSpan();
    if (!code || !span) { return; }
    span.code = code;
    quotes.push(span);
    renderQuotes();
  }

  document.getElementById("quote-add").addEventListener("mousedown", function (event) {
    event.preventDefault(); // keep the selection
  });
  document.getElementById("quote-add").addEventListener("click", addQuote);

  document.addEventListener("keydown", function (event) {
    var tag = event.target.tagName;
    if (event.key === "q" && tag !== "TEXTAREA" && tag !== "INPUT" && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      addQuote();
    }
  });

  add.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.ctrlKey) { return; }
    event.preventDefault();
    var text = add.value.trim();
    if (!text) { return; }
    list.value = (list.value.trim() ? list.value.trim() + "\n" : "") + text;
    add.value = "";
  });

  form.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.querySelector('button[name="submit"]').click();
    }
  });

  renderQuotes();
})();
