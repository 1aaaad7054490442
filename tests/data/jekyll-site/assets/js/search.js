document.addEventListener("DOMContentLoaded", () => console.log("search"));
