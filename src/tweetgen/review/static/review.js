/* tweetgen review: the few behaviours htmx does not give (no inline script: the page's CSP). */
(function () {
  "use strict";
  // an answer of 4xx/5xx (a refusal, a store error) is a sentence for the message area
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status >= 400) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
      event.detail.target = document.getElementById("messages");
      event.detail.swapOverride = "innerHTML";
    }
  });
  document.body.addEventListener("htmx:sendError", function () {
    document.getElementById("messages").textContent =
      "The review server did not answer: is tweetgen review still running?";
  });
  // "select every tweet on this page"
  document.body.addEventListener("change", function (event) {
    var box = event.target;
    if (box && box.id === "pick-all") {
      document.querySelectorAll("input[name=ids]").forEach(function (pick) {
        pick.checked = box.checked;
      });
    }
  });
})();
