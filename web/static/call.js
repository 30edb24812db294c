// A click on the call's timeline plays the recording from that moment.
// The timeline is in seconds from the call's start; the recording starts at
// data-rec-from-s on it. Nothing is fetched until someone clicks (or presses
// play): each fetch of the audio is a playback in the audit trail.
(function () {
  "use strict";
  var svg = document.getElementById("timeline");
  var player = document.getElementById("player");
  if (!svg || !player) return;
  var length = parseFloat(svg.dataset.lengthS);
  var recFrom = parseFloat(svg.dataset.recFromS);
  var recTo = parseFloat(svg.dataset.recToS);
  if (isNaN(recFrom)) return;
  function playFrom(at) {
    var seek = Math.min(Math.max(at, recFrom), recTo) - recFrom;
    player.currentTime = seek;
    var playing = player.play();
    if (playing && playing.catch) playing.catch(function () {});
    player.dataset.seekedTo = seek.toFixed(3);
  }
  svg.classList.add("clickable");
  svg.addEventListener("click", function (ev) {
    var box = svg.getBoundingClientRect();
    playFrom((ev.clientX - box.left) / box.width * length);
  });
  // The same from the keyboard (or a screen reader): each event's own button.
  Array.prototype.forEach.call(document.querySelectorAll(".tl-play"), function (button) {
    button.addEventListener("click", function () {
      playFrom(parseFloat(button.dataset.atS));
    });
  });
})();
