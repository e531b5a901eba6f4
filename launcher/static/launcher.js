/*
 * The launcher page works without this script. It adds: filter-as-you-type pickers, copy buttons,
 * showing only the options of the chosen launch type, and live updates of the links and client
 * configuration (the server renders them; this swaps in its fresh HTML, never builds markup itself).
 */
(function () {
  "use strict";
  var form = document.getElementById("launcher");
  if (!form) { return; }
  document.documentElement.classList.add("js");
  var status = document.getElementById("copy-status");

  function checked(name) {
    var input = form.querySelector("input[name='" + name + "']:checked");
    return input ? input.value : "";
  }

  /* Options that do not apply to the chosen launch type or client type are hidden (and ignored). */
  function applyVisibility() {
    var mode = checked("launch_type");
    var clientType = checked("client_type");
    if (mode === "backend" && clientType === "public") {  // backend services are confidential clients
      form.querySelector("input[name='client_type'][value='asymmetric']").checked = true;
      clientType = "asymmetric";
    }
    form.querySelectorAll("[data-modes]").forEach(function (el) {
      var show = el.dataset.modes.split(" ").indexOf(mode) >= 0;
      el.hidden = !show;
      if (!show && el.tagName === "OPTION" && el.selected) { el.parentNode.value = ""; }
    });
    form.querySelectorAll("[data-client-types]").forEach(function (el) {
      el.hidden = el.dataset.clientTypes.split(" ").indexOf(clientType) < 0;
    });
  }

  /* Pickers: type to narrow the list; one match left is chosen. Case and accents do not matter. */
  function fold(text) {
    return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }
  function visibleOptions(select) {
    return Array.prototype.filter.call(select.options, function (option) { return !option.hidden; });
  }
  form.querySelectorAll(".picker-filter").forEach(function (input) {
    var select = document.getElementById(input.dataset.filter);
    input.hidden = false;
    if (select.selectedIndex > 0) {  // scroll the list so the choice shows (options are one line each)
      var row = select.scrollHeight / select.options.length;
      select.scrollTop = Math.max(0, row * select.selectedIndex - select.clientHeight / 2 + row / 2);
    }
    input.addEventListener("input", function () {
      var words = fold(input.value).split(/\s+/).filter(Boolean);
      Array.prototype.forEach.call(select.options, function (option) {
        var text = fold(option.text);
        option.hidden = option.value === "" ? words.length > 0 :
          !words.every(function (word) { return text.indexOf(word) >= 0; });
      });
      var left = visibleOptions(select);
      if (left.length === 1 && select.value !== left[0].value) {
        select.value = left[0].value;
        changed();
      }
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {  // choose the first match instead of submitting the form
        event.preventDefault();
        var first = visibleOptions(select)[0];
        if (first && select.value !== first.value) { select.value = first.value; changed(); }
      } else if (event.key === "ArrowDown") {
        event.preventDefault();
        select.focus();
      }
    });
  });

  /* Live update: ask the server for the page with these options and swap in the parts that depend on them. */
  var timer = null;
  var inflight = null;
  function changed(delay) {
    clearTimeout(timer);
    timer = setTimeout(refresh, delay === undefined ? 300 : delay);
  }
  function refresh() {
    var query = new URLSearchParams(new FormData(form)).toString();
    if (inflight) { inflight.abort(); }
    inflight = new AbortController();
    fetch(form.getAttribute("action") + "?" + query, { signal: inflight.signal, credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (old) {
          var replacement = fresh.getElementById(old.id);
          if (replacement && !old.contains(document.activeElement)) {
            old.replaceWith(document.adoptNode(replacement));
          }
        });
        showCopyButtons();
        applyVisibility();
        var link = document.getElementById("deep-link");
        try {
          if (link) { history.replaceState(null, "", link.textContent); }
        } catch (error) { /* --public-url on another origin: leave the address bar alone */ }
      })
      .catch(function (error) {
        if (error.name !== "AbortError") { console.warn("launcher: could not refresh", error); }
      });
  }
  form.addEventListener("change", function (event) {
    if (event.target.name === "launch_type" || event.target.name === "client_type") { applyVisibility(); }
    changed(0);
  });
  form.addEventListener("input", function (event) {
    // typing: wait for a pause; radios, boxes and selects report through "change" instead
    var target = event.target;
    var typed = target.tagName === "TEXTAREA" || (target.tagName === "INPUT" &&
      ["radio", "checkbox"].indexOf(target.type) < 0);
    if (typed && !target.classList.contains("picker-filter")) { changed(); }
  });
  form.addEventListener("submit", function (event) {
    // "Update the page" (and Enter in a field) refresh in place; Launch, Register... really submit.
    var submitter = event.submitter;
    if (!submitter || !submitter.hasAttribute("formaction")) {
      event.preventDefault();
      changed(0);
    }
  });

  /* Copy buttons: the clipboard API where the page is a secure context, else select the text for Ctrl+C. */
  function showCopyButtons() {
    document.querySelectorAll("button.copy[hidden]").forEach(function (button) { button.hidden = false; });
  }
  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  function copyText(element) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(element.textContent);
    }
    selectText(element);
    return document.execCommand("copy") ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }
  function announce(button, text) {
    var label = button.firstChild;
    var original = label.nodeValue;
    label.nodeValue = text;
    if (status) { status.textContent = text; }
    setTimeout(function () { label.nodeValue = original; }, 1500);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (!button) { return; }
    var source = document.getElementById(button.dataset.copy);
    if (!source) { return; }
    copyText(source).then(function () { announce(button, "Copied"); },
      function () { selectText(source); announce(button, "Press Ctrl+C"); });
  });

  showCopyButtons();
  applyVisibility();
}());
