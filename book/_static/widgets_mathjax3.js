// The widget manager (embed-amd.js) typesets widget labels with MathJax 2's API,
// MathJax.Hub.Queue(["Typeset", MathJax.Hub, element]), and throws on the MathJax 3 that the
// book loads. Forward those calls to MathJax 3. MathJax (deferred) has replaced window.MathJax
// by DOMContentLoaded, and the widgets render on "load", after it.
window.addEventListener("DOMContentLoaded", () => {
  const mathjax = window.MathJax;
  if (mathjax && !mathjax.Hub) {
    mathjax.Hub = {
      Queue: (command) => mathjax.typesetPromise && mathjax.typesetPromise([command[2]]),
    };
  }
});
