/*
 * Leadflow snippet. Add it to any page with a form that posts to Leadflow:
 *   <script src="https://leads.example.com/static/leadflow.js" defer></script>
 * It remembers how the visitor first came (first touch) and how they came this
 * time (last touch), and adds to every Leadflow form the hidden fields Leadflow
 * reads: UTM parameters, gclid/fbclid, landing page, referrer, both touches,
 * how long the person took to fill it in (for the spam guard, measured with the
 * browser's own timer, so a wrong clock does not matter) and the UTC offset.
 * Forms are found by data-leadflow-form, or by an action containing /v1/forms/.
 * Pages that submit with fetch() can call Leadflow.fields() to get the same values.
 *
 * Behaviour (for scoring): the browser gets an anonymous id, posted with every
 * form (_lf_anonymous_id). With data-leadflow-track on the script tag, each page
 * view is sent to Leadflow (POST /v1/events, Segment's "page" call); the page
 * can also call Leadflow.track("Case Study Downloaded", {title: "..."}). Once
 * the person submits a form, their earlier visits count towards their score.
 */
(function () {
  "use strict";
  var FIRST = "leadflow.first_touch";
  var LAST = "leadflow.last_touch";
  var ANONYMOUS = "leadflow.anonymous_id";
  var script = document.currentScript;
  var base = script && script.src ? new URL(script.src, window.location.href).origin : "";
  var PARAMS = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "gclid", "fbclid"];
  var shownAt = window.performance && performance.now ? performance.now() : Date.now();
  function elapsed() {
    var now = window.performance && performance.now ? performance.now() : Date.now();
    return String(Math.max(0, Math.round(now - shownAt)));
  }

  function read(key) {
    try { return JSON.parse(window.localStorage.getItem(key) || "null"); } catch (e) { return null; }
  }
  function write(key, value) {
    try { window.localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* private mode */ }
  }
  function thisVisit() {
    var query = new URLSearchParams(window.location.search);
    var touch = { landing_url: window.location.href, at: new Date().toISOString() };
    if (document.referrer) touch.referrer = document.referrer;
    PARAMS.forEach(function (name) { var v = query.get(name); if (v) touch[name] = v; });
    return touch;
  }
  function startsNewTouch(touch) {
    // A campaign click, or an arrival from another site; browsing within the site is not.
    if (PARAMS.some(function (name) { return touch[name]; })) return true;
    if (!touch.referrer) return false;
    try { return new URL(touch.referrer).host !== window.location.host; } catch (e) { return false; }
  }

  var visit = thisVisit();
  var first = read(FIRST);
  var last = read(LAST);
  if (!first) { first = visit; write(FIRST, first); }
  if (!last || startsNewTouch(visit)) { last = visit; write(LAST, last); }

  var anonymousId = read(ANONYMOUS);
  if (!anonymousId) {
    anonymousId = window.crypto && crypto.randomUUID ? crypto.randomUUID()
      : String(Date.now()) + "-" + String(Math.random()).slice(2);
    write(ANONYMOUS, anonymousId);
  }

  function send(call) {
    call.anonymousId = anonymousId;
    call.timestamp = new Date().toISOString();
    call.messageId = anonymousId + "-" + Date.now() + "-" + String(Math.random()).slice(2, 8);
    var body = JSON.stringify(call);
    var url = base + "/v1/events";
    if (navigator.sendBeacon && navigator.sendBeacon(url, new Blob([body], { type: "text/plain" }))) return;
    try {
      fetch(url, { method: "POST", body: body, keepalive: true, headers: { "Content-Type": "text/plain" } });
    } catch (e) { /* behaviour is best effort; forms are what matter */ }
  }
  function page() {
    send({ type: "page", name: document.title,
           properties: { url: window.location.href, path: window.location.pathname, referrer: document.referrer } });
  }
  function track(event, properties) {
    send({ type: "track", event: String(event), properties: properties || {} });
  }

  function fields() {
    var values = {
      _lf_anonymous_id: anonymousId,
      _lf_fill_ms: elapsed(),
      _lf_tz_offset: String(-new Date().getTimezoneOffset()),
      _lf_first_touch: JSON.stringify(first),
      _lf_last_touch: JSON.stringify(last),
      landing_url: last.landing_url,
      referrer: last.referrer
    };
    PARAMS.forEach(function (name) { values[name] = last[name]; });
    return values;
  }

  function enhance(form) {
    var values = fields();
    Object.keys(values).forEach(function (name) {
      if (values[name] === undefined || values[name] === null || values[name] === "") return;
      var input = form.querySelector('input[name="' + name + '"]');
      if (!input) {
        input = document.createElement("input");
        input.type = "hidden";
        input.name = name;
        form.appendChild(input);
      }
      // Values the page set itself win.
      if (input.type === "hidden" && !input.value) input.value = values[name];
    });
    form.addEventListener("submit", function () {
      var fill = form.querySelector('input[name="_lf_fill_ms"]');
      if (fill) fill.value = elapsed();  // measured when the person sends it
    });
  }

  function enhanceAll() {
    var forms = document.querySelectorAll("form[data-leadflow-form], form[action*='/v1/forms/']");
    Array.prototype.forEach.call(forms, enhance);
  }

  window.Leadflow = { fields: fields, enhance: enhance, page: page, track: track, anonymousId: anonymousId };
  if (script && script.hasAttribute("data-leadflow-track")) page();
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", enhanceAll);
  } else {
    enhanceAll();
  }
})();
