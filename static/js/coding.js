// The coding screen: keyboard-first coding of one unit, with autosave and conflict checks.
//
// Quote offsets are Unicode code points into a post's plain text (as the server counts
// them), so every text here is handled as an array of code points (Array.from), never
// through JavaScript's UTF-16 string indexes.
(() => {
  "use strict";

  const dataElement = document.getElementById("coding-data");
  if (!dataElement) return;
  const data = JSON.parse(dataElement.textContent);
  const $ = (id) => document.getElementById(id);

  const AUTOSAVE_DELAY_MS = 1200;
  const RETRY_DELAY_MS = 5000;
  const LONG_CODE_LINES = 12;
  // A sentence ends at . ! ? before a space, or at a full-width end mark.
  const SENTENCE_END = /[.!?。！？]/u;
  const WIDE_END = /[。！？]/u;
  const CLOSING = /[)\]}"'»”’」』）】〕]/u;
  // [ and ] move the sentence cursor; with Shift (typing { and }) they extend it.
  const BRACKETS = {
    "[": { step: -1, extend: false },
    "]": { step: 1, extend: false },
    "{": { step: -1, extend: true },
    "}": { step: 1, extend: true },
  };
  const SIGNED_OUT =
    "Not saved: you are signed out. Your changes are kept in this browser; reload the page, sign in, and they are restored.";

  collapseLongCodeBlocks();
  if (!data.canCode) return;

  const storageKey = `coding:${data.user}:${data.unit}`;
  const statusBox = $("save-status");
  const filter = $("code-filter");
  const memo = $("memo");
  const notRelevant = $("flag-not-relevant");
  const unsure = $("flag-unsure");
  const codeList = $("code-list");
  const quoteList = $("quote-list");
  const articles = Array.from(document.querySelectorAll("article.post[data-post-id]"));
  const codeNames = new Map(data.codes.map((c) => [c.key, c.name]));
  const shortcuts = new Map(
    data.codes.filter((c) => c.codable && c.shortcut).map((c) => [c.shortcut, c.key]),
  );
  const posts = data.posts.map((p) => {
    const chars = Array.from(p.text);
    return { ...p, chars, sentences: splitSentences(chars) };
  });

  let revision = data.revision;
  let state = contentOf(data.state);
  let submitted = data.state.status === "submitted";
  let lastSavedJson = JSON.stringify(state);
  const undoStack = [];
  let lastCode = null;
  let currentPost = -1;
  let cursor = null; // {post, from, to}: sentence indexes in the current post
  let timer = null;
  let inFlight = null;
  let conflictRevision = null;
  let conflictSubmit = false;

  // State ---------------------------------------------------------------------------

  function contentOf(s) {
    return {
      codes: [...s.codes].sort(),
      quotes: s.quotes.map((q) => ({
        code: q.code, post: q.post, start: q.start, end: q.end, text: q.text,
      })),
      not_relevant: !!s.not_relevant,
      unsure: !!s.unsure,
      memo: s.memo || "",
    };
  }

  function change(mutate) {
    undoStack.push(JSON.stringify(state));
    if (undoStack.length > 200) undoStack.shift();
    mutate(state);
    state.codes.sort();
    render();
    changed();
  }

  function changed() {
    const dirty = JSON.stringify(state) !== lastSavedJson;
    if (dirty) {
      localStorage.setItem(storageKey, JSON.stringify({ base: revision, state }));
      // While a conflict waits for the coder's choice, changes stay here unsent.
      if (conflictRevision !== null) return;
      setStatus("Unsaved changes", "dirty");
      clearTimeout(timer);
      timer = setTimeout(() => save(false), AUTOSAVE_DELAY_MS);
    } else {
      localStorage.removeItem(storageKey);
    }
  }

  function toggleCode(key) {
    const on = !state.codes.includes(key);
    change((s) => {
      if (on) s.codes.push(key);
      else {
        s.codes = s.codes.filter((k) => k !== key);
        s.quotes = s.quotes.filter((q) => q.code !== key);
      }
    });
    lastCode = on ? key : null;
    setStatus(`${on ? "Coded" : "Removed"}: ${codeNames.get(key)}`, "dirty");
  }

  function undo() {
    const previous = undoStack.pop();
    if (!previous) {
      setStatus("Nothing to undo", "");
      return;
    }
    state = JSON.parse(previous);
    render();
    changed();
    setStatus("Undone", "dirty");
  }

  function render() {
    for (const box of codeList.querySelectorAll("input[name=code]")) {
      box.checked = state.codes.includes(box.value);
    }
    for (const badge of codeList.querySelectorAll("[data-count-for]")) {
      const n = state.quotes.filter((q) => q.code === badge.dataset.countFor).length;
      badge.textContent = n ? `${n} quote${n > 1 ? "s" : ""}` : "";
    }
    notRelevant.checked = state.not_relevant;
    unsure.checked = state.unsure;
    if (memo.value !== state.memo) memo.value = state.memo;
    quoteList.replaceChildren();
    if (!state.quotes.length) {
      const li = document.createElement("li");
      li.className = "muted none";
      li.textContent = "No quotes yet: [ ] pick a sentence, q quotes it.";
      quoteList.append(li);
    }
    state.quotes.forEach((q, index) => {
      const li = document.createElement("li");
      const post = posts.find((p) => p.id === q.post);
      li.textContent = `${codeNames.get(q.code) || q.code} · #${post ? post.number : "?"}: “${q.text}” `;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link";
      remove.textContent = "remove";
      remove.addEventListener("click", () => change((s) => s.quotes.splice(index, 1)));
      li.append(remove);
      quoteList.append(li);
    });
  }

  function setStatus(text, kind) {
    statusBox.textContent = text;
    statusBox.dataset.kind = kind;
  }

  // Saving --------------------------------------------------------------------------

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
    } catch {
      return "";
    }
  }

  // The server's answer, or null when the reply is not the JSON the save view sends (a
  // sign-in page reached through a redirect, a proxy's error page).
  async function replyOf(response) {
    const type = response.headers.get("Content-Type") || "";
    if (response.redirected || !type.startsWith("application/json")) return null;
    return response.json().catch(() => null);
  }

  // ``refusal``: why the submit this draft save follows was refused, still shown after it.
  async function save(submit, refusal = "") {
    clearTimeout(timer);
    // One save at a time, each based on the revision the one before it stored.
    while (inFlight) await inFlight.catch(() => {});
    if (!submit && JSON.stringify(state) === lastSavedJson) return true;
    const sent = JSON.stringify(state);
    const body = JSON.stringify({ ...state, base_revision: revision, submit });
    setStatus(submit ? "Saving and opening the next unit…" : "Saving…", "saving");
    let done;
    inFlight = new Promise((resolve) => (done = resolve));
    try {
      const response = await fetch(data.saveUrl, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "X-CSRFToken": csrfToken(),
        },
        body,
        credentials: "same-origin",
      });
      const reply = await replyOf(response);
      if (response.ok && reply && Number.isInteger(reply.revision)) {
        revision = reply.revision;
        lastSavedJson = sent;
        submitted = submitted || submit;
        hideConflict();
        if (JSON.stringify(state) === sent) localStorage.removeItem(storageKey);
        else changed();
        if (submit && reply.next) {
          window.location.assign(reply.next);
          return true;
        }
        if (refusal) setStatus(`${refusal} (Your changes are saved as a draft.)`, "error");
        else setStatus(submitted ? "Saved · submitted" : "Saved draft", "saved");
        return true;
      }
      if (response.status === 409 && reply) {
        showConflict(reply, submit);
        return false;
      }
      if (response.status === 503) {
        // The database did not answer: keep the changes here and try again shortly.
        setStatus((reply && reply.error) || "Not saved: the server is busy; retrying.", "error");
        timer = setTimeout(() => save(false), RETRY_DELAY_MS);
        return false;
      }
      let why = `Not saved (error ${response.status}); your changes are kept in this browser.`;
      if (reply && reply.error) why = reply.error;
      else if (response.redirected) why = SIGNED_OUT;
      setStatus(why, "error");
      // A refused submit still stores the changes as a draft where it can.
      if (submit && response.status === 400) {
        timer = setTimeout(() => save(false, why), AUTOSAVE_DELAY_MS);
      }
      return false;
    } catch {
      setStatus("Offline: changes are kept in this browser and retried.", "error");
      timer = setTimeout(() => save(false), RETRY_DELAY_MS);
      return false;
    } finally {
      inFlight = null;
      done();
    }
  }

  function describe(s) {
    const codes = s.codes.map((k) => codeNames.get(k) || k).join(", ") || "no codes";
    const flags = [s.not_relevant && "not relevant", s.unsure && "unsure"].filter(Boolean);
    return [codes, `${s.quotes.length} quotes`, ...flags, s.memo && `memo “${s.memo}”`]
      .filter(Boolean)
      .join(" · ");
  }

  function showConflict(reply, submit) {
    conflictRevision = reply.revision;
    conflictSubmit = conflictSubmit || submit;
    $("conflict-message").textContent = reply.error;
    $("conflict-stored").textContent = describe(reply.stored);
    $("conflict").hidden = false;
    setStatus("Conflict: not saved", "conflict");
    $("conflict-reload").focus();
  }

  function hideConflict() {
    $("conflict").hidden = true;
    conflictRevision = null;
    conflictSubmit = false;
  }

  $("conflict-reload").addEventListener("click", () => {
    localStorage.removeItem(storageKey);
    window.location.reload();
  });
  $("conflict-overwrite").addEventListener("click", () => {
    // An explicit overwrite: the same payload, now based on the stored revision, and a
    // submit again if the refused save was one.
    revision = conflictRevision;
    const submit = conflictSubmit;
    lastSavedJson = "";
    hideConflict();
    save(submit);
  });

  async function saveAndNext() {
    await save(true);
  }

  // Quotes and the sentence cursor --------------------------------------------------

  function splitSentences(chars) {
    const out = [];
    const push = (start, end) => {
      while (start < end && /\s/u.test(chars[start])) start++;
      while (end > start && /\s/u.test(chars[end - 1])) end--;
      if (end > start) out.push({ start, end });
    };
    let start = 0;
    for (let i = 0; i < chars.length; i++) {
      const c = chars[i];
      if (c === "\n") {
        push(start, i);
        start = i + 1;
        continue;
      }
      if (!SENTENCE_END.test(c)) continue;
      // The sentence takes the end marks and closing quotes or brackets after it.
      let end = i + 1;
      while (end < chars.length && (SENTENCE_END.test(chars[end]) || CLOSING.test(chars[end]))) end++;
      if (WIDE_END.test(c) || end === chars.length || /\s/u.test(chars[end])) {
        push(start, end);
        start = end;
        i = end - 1;
      }
    }
    push(start, chars.length);
    return out;
  }

  function focusPost(index) {
    if (!articles.length) return;
    currentPost = Math.max(0, Math.min(articles.length - 1, index));
    articles.forEach((a, i) => a.classList.toggle("current", i === currentPost));
    articles[currentPost].scrollIntoView({ block: "nearest" });
    cursor = null;
    showCursor();
  }

  function moveSentence(step, extend) {
    // The cursor is now what q quotes, not an earlier mouse selection.
    window.getSelection().removeAllRanges();
    if (currentPost < 0) focusPost(0);
    const post = posts[currentPost];
    const count = post.sentences.length;
    if (!count) return;
    if (!cursor) {
      const i = step > 0 ? 0 : count - 1;
      cursor = { from: i, to: i };
    } else if (extend) {
      if (step > 0) cursor.to = Math.min(count - 1, cursor.to + 1);
      else cursor.from = Math.max(0, cursor.from - 1);
    } else {
      const i = Math.max(0, Math.min(count - 1, (step > 0 ? cursor.to : cursor.from) + step));
      cursor = { from: i, to: i };
    }
    showCursor();
  }

  function cursorSpan() {
    if (currentPost < 0 || !cursor) return null;
    const post = posts[currentPost];
    const start = post.sentences[cursor.from].start;
    const end = post.sentences[cursor.to].end;
    return { post, start, end };
  }

  function showCursor() {
    articles.forEach((article, i) => {
      const strip = article.querySelector(".sentence-cursor");
      const span = i === currentPost ? cursorSpan() : null;
      strip.hidden = !span;
      strip.textContent = span ? span.post.chars.slice(span.start, span.end).join("") : "";
    });
  }

  // Text with every run of white space made one space, as code points.
  function collapsed(text) {
    return Array.from(text.replace(/\s+/gu, " "));
  }

  // Where a run of characters occurs in another, as indexes of its first character.
  function occurrences(haystack, needle) {
    const found = [];
    outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
      for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
      found.push(i);
    }
    return found;
  }

  // The rendered text of a post before a point: its text nodes up to there, leaving out
  // the buttons the screen adds (a long code block's "Show all").
  function renderedBefore(body, range) {
    let text = "";
    const walker = document.createTreeWalker(body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node === range.startContainer) return text + node.data.slice(0, range.startOffset);
      if (range.comparePoint(node, 0) >= 0) break;
      if (!node.parentElement.closest("button")) text += node.data;
    }
    return text;
  }

  // A mouse selection inside a post becomes code-point offsets into its plain text by
  // matching it with white space collapsed (the rendered text spaces blocks differently).
  // Where the selected words occur more than once, the one meant is found by its place
  // in order: the third occurrence on the page is the third in the text. Returns null
  // when no text is selected, {post: null} when the selection cannot be placed in one
  // post's text.
  function selectionSpan() {
    const selection = window.getSelection();
    if (!selection || selection.isCollapsed || !selection.rangeCount) return null;
    const range = selection.getRangeAt(0);
    const start = range.startContainer;
    const element = start.nodeType === Node.ELEMENT_NODE ? start : start.parentElement;
    const article = element && element.closest("article.post");
    if (!article) {
      // Selected elsewhere: outside the posts it is not meant as a quote.
      return articles.some((a) => range.intersectsNode(a)) ? { post: null } : null;
    }
    const post = posts.find((p) => String(p.id) === article.dataset.postId);
    const wanted = collapsed(selection.toString().trim());
    if (!post || !wanted.length) return null;
    const flat = [];
    const map = [];
    post.chars.forEach((c, i) => {
      const space = /\s/u.test(c);
      if (space && (flat.length === 0 || flat[flat.length - 1] === " ")) return;
      flat.push(space ? " " : c);
      map.push(i);
    });
    const found = occurrences(flat, wanted);
    if (!found.length) return { post: null };
    let nth = 0;
    const body = article.querySelector(".post-body");
    const cursorStrip = article.querySelector(".sentence-cursor");
    if (body && body.contains(start)) {
      nth = occurrences(collapsed(renderedBefore(body, range).trimStart()).concat(wanted), wanted).length - 1;
    } else if (cursorStrip.contains(start) && cursor && article === articles[currentPost]) {
      // In the strip that repeats the cursor's sentences: the first occurrence from there.
      const from = cursorSpan().start;
      nth = Math.max(0, found.findIndex((i) => map[i] >= from));
    }
    const at = found[Math.min(nth, found.length - 1)];
    return { post, start: map[at], end: map[at + wanted.length - 1] + 1 };
  }

  function quote() {
    if (!lastCode || !state.codes.includes(lastCode)) {
      setStatus("Toggle a code on first: q quotes for the last code you toggled.", "error");
      return;
    }
    const span = selectionSpan() || cursorSpan();
    if (span && !span.post) {
      setStatus(
        "The selected text could not be matched to the post's text; select within one paragraph, or pick sentences with [ and ].",
        "error",
      );
      return;
    }
    if (!span) {
      setStatus("Pick a sentence with [ and ] (or select text) before quoting.", "error");
      return;
    }
    if (!span.post.quotable) {
      setStatus("That post is thread context; quote from the unit's own post.", "error");
      return;
    }
    const text = span.post.chars.slice(span.start, span.end).join("");
    const duplicate = state.quotes.some(
      (q) => q.code === lastCode && q.post === span.post.id && q.start === span.start && q.end === span.end,
    );
    if (duplicate) return;
    change((s) => s.quotes.push({ code: lastCode, post: span.post.id, start: span.start, end: span.end, text }));
    setStatus(`Quoted for ${codeNames.get(lastCode)}`, "dirty");
  }

  // The code list and its filter ----------------------------------------------------

  const items = Array.from(codeList.querySelectorAll("li.code"));
  let highlighted = null;

  function visibleCodable() {
    return items.filter((li) => !li.hidden && !li.classList.contains("group"));
  }

  function highlight(li) {
    items.forEach((item) => item.classList.toggle("active", item === li));
    highlighted = li;
    if (li) li.scrollIntoView({ block: "nearest" });
  }

  // Lower case, one form per accented letter, single spaces: what typed text and code
  // names are compared as.
  function folded(text) {
    return text.normalize("NFC").toLowerCase().split(/\s+/u).filter(Boolean).join(" ");
  }

  // How well a shown code's name fits what was typed (lower is better): the name itself,
  // then names starting with it, then names with words starting with each typed word,
  // then names holding them; codes shown only because their key holds the words come
  // last. Enter toggles the best fit, so "memory" means Memory, not a code filed under
  // a memory group that comes first in the list.
  function fit(li, typed, words) {
    const name = folded(li.querySelector(".code-name").textContent);
    if (name === typed) return 0;
    if (name.startsWith(typed)) return 1;
    const nameWords = name.split(/[^\p{L}\p{M}\p{N}]+/u);
    if (words.every((w) => nameWords.some((n) => n.startsWith(w)))) return 2;
    if (words.every((w) => name.includes(w))) return 3;
    return 4;
  }

  filter.addEventListener("input", () => {
    const typed = folded(filter.value);
    const words = typed.split(" ").filter(Boolean);
    for (const li of items) {
      const text = folded(`${li.dataset.key} ${li.querySelector(".code-name").textContent}`);
      li.hidden = words.length > 0 && !words.every((w) => text.includes(w));
    }
    let best = null;
    let bestFit = Infinity;
    for (const li of visibleCodable()) {
      const f = words.length ? fit(li, typed, words) : 0;
      if (f < bestFit) {
        best = li;
        bestFit = f;
      }
    }
    highlight(best);
  });

  filter.addEventListener("keydown", (event) => {
    const list = visibleCodable();
    const at = list.indexOf(highlighted);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      highlight(list[Math.max(0, Math.min(list.length - 1, at + step))] || null);
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (highlighted) toggleCode(highlighted.dataset.key);
    } else if (event.key === "Escape") {
      event.preventDefault();
      filter.value = "";
      filter.dispatchEvent(new Event("input"));
      highlight(null);
      filter.blur();
    }
  });

  codeList.addEventListener("change", (event) => {
    if (event.target.name === "code") {
      event.target.checked = !event.target.checked; // toggleCode renders the new state
      toggleCode(event.target.value);
    }
  });
  // A code focused from the keyboard is highlighted (its definition opens) at once. One
  // pressed with the mouse or a finger is highlighted on the click instead: opening its
  // definition closes the one above, and the list moving under the pointer between press
  // and release would swallow the click.
  const focusVisible = CSS.supports("selector(:focus-visible)");
  codeList.addEventListener("focusin", (event) => {
    if (!focusVisible || event.target.matches(":focus-visible")) {
      highlight(event.target.closest("li.code"));
    }
  });
  codeList.addEventListener("click", (event) => {
    const li = event.target.closest("li.code");
    if (li && !li.classList.contains("group") && li !== highlighted) highlight(li);
  });

  notRelevant.addEventListener("change", () => change((s) => (s.not_relevant = notRelevant.checked)));
  unsure.addEventListener("change", () => change((s) => (s.unsure = unsure.checked)));
  let memoBefore = null;
  memo.addEventListener("focus", () => (memoBefore = JSON.stringify(state)));
  memo.addEventListener("input", () => {
    state.memo = memo.value;
    changed();
  });
  memo.addEventListener("blur", () => {
    if (memoBefore && memoBefore !== JSON.stringify(state)) undoStack.push(memoBefore);
    memoBefore = null;
  });
  $("save-next").addEventListener("click", saveAndNext);
  $("save-draft").addEventListener("click", () => save(false));

  // Keys ----------------------------------------------------------------------------

  function isTextField(el) {
    if (!el) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && !["checkbox", "radio", "button", "submit"].includes(el.type);
  }

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target === filter) return;
    if (isTextField(target)) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target === memo) {
        event.preventDefault();
        if (!event.repeat) saveAndNext();
      } else if (event.key === "Escape") {
        target.blur();
      }
      return;
    }
    // The character typed, whatever the layout: a bracket may need AltGr or Option.
    const bracket = BRACKETS[event.key];
    if (bracket && (event.getModifierState("AltGraph") || !(event.ctrlKey || event.metaKey))) {
      event.preventDefault();
      moveSentence(bracket.step, bracket.extend || event.shiftKey);
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    // A held key toggles, quotes or saves once; moving between posts may repeat.
    if (event.repeat && (event.key === "Enter" || event.key === "q" || event.key === "Q" || shortcuts.has(event.key))) {
      event.preventDefault();
      return;
    }
    switch (event.key) {
      case "/":
        event.preventDefault();
        filter.focus();
        filter.select();
        return;
      case "j":
      case "k":
        event.preventDefault();
        focusPost(currentPost + (event.key === "j" ? 1 : -1));
        return;
      case "q":
      case "Q":
        event.preventDefault();
        quote();
        return;
      case "u":
        event.preventDefault();
        undo();
        return;
      case "Enter":
        if (target.tagName === "BUTTON" || target.tagName === "A" || target.tagName === "SUMMARY") return;
        event.preventDefault();
        saveAndNext();
        return;
      default:
        if (shortcuts.has(event.key)) {
          event.preventDefault();
          toggleCode(shortcuts.get(event.key));
        }
    }
  });

  // Unsent edits from a closed tab, and the same unit open twice --------------------

  function restoreUnsent() {
    let kept = null;
    try {
      kept = JSON.parse(localStorage.getItem(storageKey));
    } catch {
      localStorage.removeItem(storageKey);
    }
    if (!kept || !kept.state || JSON.stringify(kept.state) === lastSavedJson) return;
    // Based on an older revision, the save is refused as a conflict and the coder chooses.
    state = contentOf(kept.state);
    // Without a revision it is based on none: any stored coding makes it a conflict.
    revision = Number.isInteger(kept.base) ? kept.base : 0;
    render();
    changed();
    setStatus("Restored changes that were not saved yet", "dirty");
  }

  function watchOtherTabs() {
    if (!("BroadcastChannel" in window)) return;
    const tab = Math.random().toString(36).slice(2);
    const channel = new BroadcastChannel("coding-screen");
    const warn = () => ($("two-tabs").hidden = false);
    channel.addEventListener("message", (event) => {
      const message = event.data || {};
      if (message.key !== storageKey || message.tab === tab) return;
      warn();
      if (message.type === "open") channel.postMessage({ type: "here", key: storageKey, tab });
    });
    channel.postMessage({ type: "open", key: storageKey, tab });
  }

  // Unsent edits already sit in localStorage; this only refreshes their base revision.
  window.addEventListener("pagehide", () => {
    if (JSON.stringify(state) !== lastSavedJson) {
      localStorage.setItem(storageKey, JSON.stringify({ base: revision, state }));
    }
  });

  render();
  restoreUnsent();
  watchOtherTabs();
  if (articles.length) focusPost(0);
  // From here on the keys and checkboxes work; bench/coding_page_bench.py times this mark.
  performance.mark("coding-ready");

  // Long code blocks ----------------------------------------------------------------

  function collapseLongCodeBlocks() {
    for (const pre of document.querySelectorAll(".post-body pre")) {
      const lines = pre.textContent.split("\n").length;
      if (lines <= LONG_CODE_LINES) continue;
      pre.classList.add("collapsed");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link expand";
      button.textContent = `Show all ${lines} lines`;
      button.addEventListener("click", () => {
        const collapsed = pre.classList.toggle("collapsed");
        button.textContent = collapsed ? `Show all ${lines} lines` : "Collapse";
      });
      pre.after(button);
    }
  }
})();
