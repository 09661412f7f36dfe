// The console's forms: every state-changing request carries the session's CSRF token.
// Text from the server is only ever put into the page with textContent (never innerHTML).
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    });
    let data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    if (!response.ok) {
      const error = new Error(data.error || data.detail && JSON.stringify(data.detail) || response.statusText);
      error.data = data;
      throw error;
    }
    return data;
  }
  window.dgPost = post;

  function say(form, text, ok) {
    const out = form.querySelector(".result");
    if (out) { out.textContent = text; out.className = "result " + (ok ? "ok" : "error"); }
  }

  const signout = document.getElementById("signout");
  if (signout) {
    signout.addEventListener("click", async () => {
      await post("/signout", {});
      window.location.assign("/signin");
    });
  }

  // A decision recorded but not (fully) published: offer to publish it again.
  async function republish(ids, out) {
    try {
      for (const id of ids) { await post("/api/decisions/" + encodeURIComponent(id) + "/republish", {}); }
      out.textContent = "republished decision " + ids.join(", "); out.className = "result ok";
    } catch (e) { out.textContent = e.message; out.className = "result error"; }
  }

  function offerRepublish(form, error) {
    const ids = error.data && error.data.decision_ids;
    const out = form.querySelector(".result");
    if (!ids || !ids.length || !out) { return; }
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Republish";
    button.addEventListener("click", () => republish(ids, out));
    out.after(button);
  }

  document.querySelectorAll("button.republish").forEach((button) => {
    button.addEventListener("click", () => republish([button.dataset.decision], button.nextElementSibling));
  });

  document.querySelectorAll("form.decide").forEach((form) => {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = {
        targets: [{ kind: form.dataset.kind, id: form.dataset.target }],
        action: form.elements.action.value,
        reason: form.elements.reason.value,
      };
      try {
        const data = await post("/api/decisions", body);
        const d = data.decisions[0];
        say(form, "decision " + d.decision_id + ": " + d.action + " (" + d.accounts.length + " accounts, now " + d.published + ")", true);
      } catch (e) { say(form, e.message, false); offerRepublish(form, e); }
    });
  });

  function picked() {
    return Array.from(document.querySelectorAll("#queue tr")).filter((row) => {
      const box = row.querySelector("input.pick");
      return box && box.checked;
    }).map((row) => ({ kind: row.dataset.kind, id: row.dataset.target }));
  }

  const bulk = document.getElementById("bulk");
  if (bulk) {
    bulk.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const data = await post("/api/decisions", {
          targets: picked(), action: bulk.elements.action.value, reason: bulk.elements.reason.value,
        });
        say(bulk, data.decisions.length + " decisions recorded", true);
      } catch (e) { say(bulk, e.message, false); offerRepublish(bulk, e); }
    });
    document.getElementById("bulk-claim").addEventListener("click", async () => {
      try {
        const data = await post("/api/claims", { targets: picked() });
        say(bulk, data.targets.length + " items claimed", true);
      } catch (e) { say(bulk, e.message, false); }
    });
  }

  const newUser = document.getElementById("new-user");
  if (newUser) {
    newUser.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const data = await post("/api/users", { username: newUser.elements.username.value, role: newUser.elements.role.value });
        say(newUser, "created " + data.username + "; password (shown once): " + data.password, true);
      } catch (e) { say(newUser, e.message, false); }
    });
  }
})();
