/* The dashboard's only hand-written script: the dialog, copy buttons, menus and
 * the role picker. Pages work without it (dialogs then open as pages); htmx does
 * the requests. No inline handlers anywhere: the CSP allows scripts from here only. */
"use strict";

(function () {
  const FOCUSABLE = [
    "a[href]",
    "button:not([disabled])",
    'input:not([disabled]):not([type="hidden"])',
    "select:not([disabled])",
    "textarea:not([disabled])",
    '[tabindex]:not([tabindex="-1"])',
  ].join(",");

  const modal = () => document.getElementById("modal");
  const modalBody = () => document.getElementById("modal-body");
  let opener = null;

  function visible(element) {
    return element.getClientRects().length > 0 && !element.closest("[hidden]");
  }

  function focusables(root) {
    return Array.from(root.querySelectorAll(FOCUSABLE)).filter(visible);
  }

  // The first field marked invalid, in page order: its checked choice or first control.
  function firstError(dialog) {
    const field = dialog.querySelector("[data-invalid]");
    return field ? field.querySelector("input:checked") || focusables(field)[0] || null : null;
  }

  function focusInside(dialog) {
    const target =
      firstError(dialog) ||
      dialog.querySelector('[aria-invalid="true"]') ||
      dialog.querySelector("fieldset[aria-describedby] input") ||
      dialog.querySelector("[autofocus]") ||
      focusables(dialog)[0];
    if (target) target.focus();
  }

  function openModal() {
    const dialog = modal();
    if (!dialog) return;
    if (!dialog.open) {
      opener = document.activeElement;
      dialog.showModal();
    }
    focusInside(dialog);
  }

  function closeModal() {
    const dialog = modal();
    if (dialog && dialog.open) dialog.close();
  }

  function focusPage() {
    const heading = document.querySelector("main h2[tabindex]") || document.getElementById("main");
    if (heading) heading.focus();
  }

  /* ---- one-time values: closing before copying asks first ---- */

  function needsConfirm(holder) {
    return Boolean(holder) && holder.dataset.copied !== "true" && holder.dataset.confirmed !== "true";
  }

  function askToConfirm(holder) {
    const box = holder.querySelector("[data-confirm-close]");
    if (!box) return;
    box.hidden = false;
    const back = box.querySelector("[data-cancel-close]");
    if (back) back.focus();
  }

  function leave(holder) {
    if (holder.closest("#modal")) {
      closeModal();
      return;
    }
    const done = holder.querySelector("a[data-close-secret]");
    if (done) window.location.assign(done.href);
  }

  async function copyValue(button) {
    const field = document.querySelector(button.dataset.copy);
    if (!field) return;
    let copied = false;
    try {
      await navigator.clipboard.writeText(field.value);
      copied = true;
    } catch (_error) {
      field.focus();
      field.select();
      copied = typeof document.execCommand === "function" && document.execCommand("copy");
    }
    const holder = button.closest("[data-show-once]");
    const status = holder ? holder.querySelector("[data-copy-status]") : null;
    if (!copied) {
      if (status) status.textContent = "Could not copy automatically: select the value and copy it.";
      return;
    }
    if (holder) {
      holder.dataset.copied = "true";
      const box = holder.querySelector("[data-confirm-close]");
      if (box) box.hidden = true;
    }
    const label = button.querySelector("[data-copy-label]");
    if (label) label.textContent = "Copied";
    button.classList.add("copied");
    if (status) status.textContent = "Copied to the clipboard.";
  }

  /* ---- role picker: a preset shows its chips, Custom shows the checkboxes ---- */

  function syncRolePanels(form) {
    const chosen = form.querySelector('input[name="role"]:checked');
    form.querySelectorAll("[data-role-panel]").forEach((panel) => {
      panel.hidden = !chosen || panel.dataset.rolePanel !== chosen.value;
    });
  }

  document.addEventListener("change", (event) => {
    const input = event.target;
    if (input instanceof HTMLInputElement && input.type === "radio" && input.name === "role" && input.form) {
      syncRolePanels(input.form);
    }
  });

  /* ---- clicks ---- */

  function closeMenus(except) {
    document.querySelectorAll("details[data-menu][open]").forEach((menu) => {
      if (menu !== except) menu.open = false;
    });
  }

  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (!target) return;

    const copy = target.closest("[data-copy]");
    if (copy) {
      copyValue(copy);
      return;
    }
    const closeSecret = target.closest("[data-close-secret]");
    if (closeSecret) {
      const holder = closeSecret.closest("[data-show-once]");
      if (needsConfirm(holder)) {
        event.preventDefault();
        askToConfirm(holder);
      } else if (holder && holder.closest("#modal")) {
        event.preventDefault();
        closeModal();
      }
      return;
    }
    const force = target.closest("[data-force-close]");
    if (force) {
      const holder = force.closest("[data-show-once]");
      holder.dataset.confirmed = "true";
      leave(holder);
      return;
    }
    const cancel = target.closest("[data-cancel-close]");
    if (cancel) {
      const holder = cancel.closest("[data-show-once]");
      holder.querySelector("[data-confirm-close]").hidden = true;
      const copyButton = holder.querySelector("[data-copy]");
      if (copyButton) copyButton.focus();
      return;
    }
    const close = target.closest("[data-close]");
    if (close && close.closest("#modal")) {
      event.preventDefault();
      closeModal();
      return;
    }
    const dismiss = target.closest("[data-dismiss]");
    if (dismiss) {
      dismiss.closest(".flash").remove();
      return;
    }
    const menu = target.closest("details[data-menu]");
    const item = target.closest(".menu-panel a, .menu-panel button");
    closeMenus(item ? null : menu);
  });

  /* ---- keyboard: focus stays in the dialog; Escape closes (after asking, for secrets) ---- */

  function trapTab(event, dialog) {
    const items = focusables(dialog);
    if (items.length === 0) {
      event.preventDefault();
      return;
    }
    const first = items[0];
    const last = items[items.length - 1];
    const current = document.activeElement;
    if (event.shiftKey && (current === first || !dialog.contains(current))) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (current === last || !dialog.contains(current))) {
      event.preventDefault();
      first.focus();
    }
  }

  document.addEventListener("keydown", (event) => {
    const dialog = modal();
    if (dialog && dialog.open) {
      if (event.key === "Tab") trapTab(event, dialog);
      if (event.key === "Escape") {
        const holder = dialog.querySelector("[data-show-once]");
        if (needsConfirm(holder)) {
          event.preventDefault();
          askToConfirm(holder);
        }
      }
      return;
    }
    if (event.key === "Escape") {
      const open = document.querySelector("details[data-menu][open]");
      if (open) {
        open.open = false;
        open.querySelector("summary").focus();
      }
    }
  });

  const dialog = modal();
  if (dialog) {
    dialog.addEventListener("cancel", (event) => {
      const holder = dialog.querySelector("[data-show-once]");
      if (needsConfirm(holder)) {
        event.preventDefault();
        askToConfirm(holder);
      }
    });
    dialog.addEventListener("close", () => {
      // Drop the content, and with it any one-time value, from the page.
      modalBody().replaceChildren();
      if (opener && opener.isConnected) opener.focus();
      else focusPage();
      opener = null;
    });
  }

  /* ---- htmx wiring ---- */

  document.addEventListener("htmx:afterSwap", (event) => {
    const target = event.detail.target;
    if (target.id === "modal-body") {
      if (target.children.length > 0) openModal();
      else closeModal();
      return;
    }
    if (!document.activeElement || document.activeElement === document.body) focusPage();
  });

  document.addEventListener("close-modal", closeModal);

  function flash(message) {
    const area = document.getElementById("flash");
    if (!area) return;
    const box = document.createElement("div");
    box.className = "flash error";
    box.setAttribute("role", "alert");
    const text = document.createElement("p");
    text.textContent = message;
    box.appendChild(text);
    area.replaceChildren(box);
  }

  document.addEventListener("htmx:responseError", (event) => {
    flash(`Something went wrong (${event.detail.xhr.status}). Reload the page and try again.`);
  });
  document.addEventListener("htmx:sendError", () => {
    flash("The gateway did not answer. Check your connection and try again.");
  });
})();

/* Trace page: the waterfall row whose span the panel shows is marked as such. */
(function () {
  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest("[data-span-link]") : null;
    if (!link) return;
    document.querySelectorAll("[data-span-link][aria-current]").forEach((other) => {
      other.removeAttribute("aria-current");
      other.closest("tr").classList.remove("selected");
    });
    link.setAttribute("aria-current", "true");
    link.closest("tr").classList.add("selected");
  });
})();

/* Key form: an error goes once its field is changed (the server checks again on
 * save); "On a date" shows the date field. */
(function () {
  function clearError(field) {
    const error = field.querySelector(".field-error");
    field.querySelectorAll("[aria-invalid]").forEach((control) => {
      control.removeAttribute("aria-invalid");
      if (error && control.hasAttribute("aria-describedby")) {
        const rest = control.getAttribute("aria-describedby").split(" ").filter((id) => id && id !== error.id);
        if (rest.length) control.setAttribute("aria-describedby", rest.join(" "));
        else control.removeAttribute("aria-describedby");
      }
    });
    if (error && field.getAttribute("aria-describedby") === error.id) field.removeAttribute("aria-describedby");
    if (error) error.remove();
    delete field.dataset.invalid;
  }

  function onEdit(event) {
    const control = event.target;
    if (!(control instanceof Element) || !control.closest(".key-form")) return;
    const form = control.closest(".key-form");
    const field = control.closest("[data-invalid]");
    if (field) clearError(field);
    // Checking a permission answers "select a role or at least one permission".
    if (control.getAttribute("name") === "permissions") {
      const picker = form.querySelector(".role-picker[data-invalid]");
      if (picker) clearError(picker);
    }
    if (control.matches("[data-expiry-choice]")) {
      const date = form.querySelector("[data-expiry-date]");
      if (date) date.hidden = control.value !== "date";
    }
  }

  document.addEventListener("input", onEdit);
  document.addEventListener("change", onEdit);
})();
