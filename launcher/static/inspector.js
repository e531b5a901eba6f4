// Protocol inspector: new steps appear without a reload.
// Every 1.5 s the page asks ROOT/inspector/events?since=<last id> for what happened since, builds the
// same markup as launcher/templates/inspector_macros.html and appends it. Data only ever goes in
// through textContent (never innerHTML), so nothing an app sent can run here.
(function () {
  "use strict";
  var list = document.getElementById("steps");
  if (!list || !window.fetch) return;
  var PERIOD = 1500;
  var since = Number(list.dataset.since) || 0;
  var query = list.dataset.query;
  var live = document.getElementById("live");
  var pauseButton = document.getElementById("pause");
  var expandButton = document.getElementById("expand");
  var paused = false;
  var busy = false;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function add(parent, child) {
    parent.appendChild(child);
    return child;
  }

  function pane(title, level, text) {
    var box = el("div", "step-pane");
    add(box, el(level, null, title));
    add(box, el("pre", null, text));
    return box;
  }

  function specLink(link) {
    var a = el("a", null, link.label);
    a.href = link.url;  // constant spec URLs chosen by the server
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }

  function who(label, value) {
    var span = el("span", "step-who", label ? label + " " : "");
    add(span, el("code", null, value));
    return span;
  }

  function stepNode(s) {
    var item = el("li", "step step-" + s.outcome + (s.fault ? " step-fault" : ""));
    item.id = "step-" + s.id;
    item.dataset.id = s.id;
    var details = add(item, el("details"));
    var summary = add(details, el("summary"));
    var head = add(summary, el("span", "step-head"));
    add(head, el("span", "step-time", s.time.slice(11, 23)));
    add(head, el("span", "kind kind-" + s.kind, s.kind));
    add(head, el("span", "step-title", s.title));
    if (s.status) add(head, el("span", "http-status http-" + Math.floor(s.status / 100) + "xx", s.status));
    if (s.fault) add(head, el("span", "tag tag-fault", "fault"));
    if (s.client) add(head, who("client", s.client));
    if (s.launch) add(head, who(s.launch.indexOf("standalone") === 0 ? "" : "launch", s.launch));
    add(summary, el("span", "step-explain", s.explain));
    if (s.reason) {
      var reason = add(summary, el("span", "step-reason"));
      add(reason, el("strong", null, "Why:"));
      reason.appendChild(document.createTextNode(" " + s.reason));
    }
    var body = add(details, el("div", "step-body"));
    if (s.spec.length) {
      var spec = add(body, el("p", "step-spec", "Spec: "));
      s.spec.forEach(function (link) { add(spec, specLink(link)); });
    }
    var http = add(body, el("div", "step-http"));
    if (s.request_text) add(http, pane("Request", "h3", s.request_text));
    if (s.response_text) add(http, pane(s.status === null ? "Event" : "Response", "h3", s.response_text));
    s.tokens.forEach(function (t) {
      var token = add(body, el("div", "token"));
      var title = add(token, el("h3", null, t.label + ", decoded "));
      add(title, el("span", "token-hint", "(the signature is not kept)"));
      var parts = add(token, el("div", "step-http token-parts"));
      add(parts, pane("Header", "h4", t.header));
      add(parts, pane("Claims", "h4", t.claims));
      if (t.notes.length) add(token, el("p", "token-notes", t.notes.join(" · ")));
    });
    if (s.events) {
      var audit = add(body, el("details", "step-audit"));
      add(audit, el("summary", null, "Audit events"));
      add(audit, el("pre", null, s.events));
    }
    return item;
  }

  function findingNode(f) {
    var item = el("li", "finding finding-" + f.severity);
    add(item, el("span", "sev sev-" + f.severity, f.severity));
    var text = add(item, el("span", "finding-text"));
    add(text, el("strong", null, f.rule));
    text.appendChild(document.createTextNode(": " + f.message));
    var meta = add(item, el("span", "finding-meta"));
    if (f.client) {
      meta.appendChild(document.createTextNode("client "));
      add(meta, el("code", null, f.client));
      meta.appendChild(document.createTextNode(" · "));
    }
    if (f.launch) {
      if (f.launch.indexOf("standalone") !== 0) meta.appendChild(document.createTextNode("launch "));
      add(meta, el("code", null, f.launch));
      meta.appendChild(document.createTextNode(" · "));
    }
    var step = add(meta, el("a", null, "step " + f.step));
    step.href = "#step-" + f.step;
    if (f.count > 1) meta.appendChild(document.createTextNode(" · " + f.count + " times"));
    meta.appendChild(document.createTextNode(" · "));
    add(meta, specLink(f.spec));
    return item;
  }

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 150;
  }

  function show(data) {
    var follow = nearBottom();
    var last = null;
    data.steps.forEach(function (s) {
      if (document.getElementById("step-" + s.id)) return;
      last = add(list, stepNode(s));
      last.classList.add("step-new");
    });
    if (last) {
      document.getElementById("step-count").textContent = list.children.length;
      document.getElementById("no-steps").hidden = true;
      if (follow) last.scrollIntoView({block: "end"});
    }
    var findings = document.getElementById("findings");
    findings.replaceChildren.apply(findings, data.findings.map(findingNode));
    document.getElementById("lint-count").textContent = data.findings.length;
    document.getElementById("no-findings").hidden = data.findings.length > 0;
    since = data.last;
  }

  function poll() {
    if (paused || busy || document.hidden) return;
    busy = true;
    fetch(list.dataset.events + "?since=" + since + (query ? "&" + query : ""),
          {headers: {Accept: "application/json"}, cache: "no-store", credentials: "same-origin"})
      .then(function (answer) {
        if (!answer.ok) throw new Error("the inspector answered " + answer.status);
        return answer.json();
      })
      .then(function (data) {
        show(data);
        live.textContent = "Live: new steps appear on their own.";
        live.classList.remove("insp-live-lost");
      })
      .catch(function (error) {
        live.textContent = "Not updating (" + error.message + "); retrying.";
        live.classList.add("insp-live-lost");
      })
      .then(function () { busy = false; });
  }

  pauseButton.hidden = false;
  pauseButton.addEventListener("click", function () {
    paused = !paused;
    pauseButton.textContent = paused ? "Resume" : "Pause";
    pauseButton.setAttribute("aria-pressed", String(paused));
    live.textContent = paused ? "Paused." : "Live: new steps appear on their own.";
  });
  expandButton.hidden = false;
  expandButton.addEventListener("click", function () {
    var open = expandButton.textContent === "Expand all";
    list.querySelectorAll(":scope > li > details").forEach(function (d) { d.open = open; });
    expandButton.textContent = open ? "Collapse all" : "Expand all";
  });
  live.textContent = "Live: new steps appear on their own.";
  setInterval(poll, PERIOD);
  poll();
})();
