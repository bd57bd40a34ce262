// tally's one-line embedding (docs/embedding.md):
//   <script src="https://tally.example/embed.js" data-token="JWT" data-view="subscriber"></script>
// adds an iframe, where the script tag is, that opens the view with the token. The token travels
// in the URL fragment, which browsers never send to any server or write into access logs.
(function () {
  var script = document.currentScript;
  if (!script) return;
  var token = script.getAttribute("data-token");
  var view = script.getAttribute("data-view") || "subscriber";
  if (!token || !/^[a-z]+(\/[0-9]+)?$/.test(view)) {
    console.error("tally embed.js: data-token is required, and data-view must be a view name");
    return;
  }
  var origin = new URL(script.src, location.href).origin;
  var frame = document.createElement("iframe");
  frame.src = origin + "/#/" + view + "?token=" + encodeURIComponent(token);
  frame.title = script.getAttribute("data-title") || "Usage and billing";
  frame.style.border = "0";
  frame.style.width = script.getAttribute("data-width") || "100%";
  frame.style.height = script.getAttribute("data-height") || "720px";
  frame.setAttribute("loading", "lazy");
  script.parentNode.insertBefore(frame, script.nextSibling);
})();
