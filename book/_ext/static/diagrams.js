// Mermaid diagrams at reading size (book/_ext/diagrams.py adds this file to every page).
//
// Mermaid draws each diagram at its natural size (labels at the font size set by
// `mermaid_init_config` in _config.yml) and sphinxcontrib-mermaid then stretches or
// shrinks the <svg> to a fixed box. Here every drawn diagram is given its natural size
// again, shrunk to the text column only down to MIN_SCALE, so that no label is drawn
// smaller than MIN_LABEL_PX; a diagram still wider than the column scrolls sideways
// inside its frame, which then takes keyboard focus (tabindex) so it can be scrolled
// without a mouse. Re-applied whenever mermaid redraws (theme switch) or the window
// is resized. No CSS can do this: the floor depends on each drawing's own width.
(() => {
  "use strict";
  const LABEL_PX = 14; // the diagrams' font size: themeVariables.fontSize in _config.yml
  const MIN_LABEL_PX = 11;
  const MIN_SCALE = MIN_LABEL_PX / LABEL_PX;

  const fit = (pre) => {
    if (pre.closest(".mermaid-fullscreen-modal")) return; // the viewer sizes its own copy
    const svg = pre.querySelector(":scope > svg");
    const box = svg && svg.viewBox && svg.viewBox.baseVal;
    if (!box || !(box.width > 0) || !(box.height > 0)) return;
    const frame = pre.closest(".mermaid-container") || pre;
    const style = getComputedStyle(pre);
    const chrome = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight)
      + parseFloat(style.borderLeftWidth) + parseFloat(style.borderRightWidth);
    const column = frame.parentElement.clientWidth - chrome;
    const scale = Math.min(1, Math.max(MIN_SCALE, column / box.width));
    svg.style.setProperty("width", `${box.width * scale}px`, "important");
    svg.style.setProperty("height", `${box.height * scale}px`, "important");
    svg.style.setProperty("max-width", "none", "important");
    const scrolls = box.width * scale > column + 0.5;
    pre.classList.toggle("mermaid-scrolls", scrolls);
    if (scrolls) pre.setAttribute("tabindex", "0");
    else pre.removeAttribute("tabindex");
  };

  const fitAll = () => document.querySelectorAll("pre.mermaid").forEach(fit);

  const start = () => {
    fitAll();
    // mermaid replaces a block's content when it draws (and redraws on a theme switch)
    new MutationObserver((records) => {
      const touched = new Set();
      for (const r of records) {
        const pre = r.target.closest && r.target.closest("pre.mermaid");
        if (pre) touched.add(pre);
        for (const n of r.addedNodes) {
          if (n.nodeType === 1 && n.matches("pre.mermaid")) touched.add(n);
          if (n.nodeType === 1) n.querySelectorAll("pre.mermaid").forEach((p) => touched.add(p));
        }
      }
      touched.forEach(fit);
    }).observe(document.body, {
      childList: true, subtree: true, attributes: true, attributeFilter: ["viewBox"],
    });
    window.addEventListener("resize", fitAll);
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
