// Pages shown without a meeting context: no session ("open your invite link") and unknown paths.
import { html, type TemplateResult } from "lit-html"

export function inviteNeeded(detail?: string): TemplateResult {
  return html`<main id="main" class="gate">
    <div class="gate-card" role="region" aria-labelledby="gate-title">
      <div class="brand brand-large"><span class="brand-mark" aria-hidden="true">R</span>Rapporteur</div>
      <h1 id="gate-title">Open your invite link</h1>
      <p>
        This service is for the participants of a meeting. To sign in, open the personal invite link you received
        from the meeting secretariat or the co-facilitators. It looks like
        <code>https://…/join/…</code>.
      </p>
      <p>The link signs in this browser. If you signed out, open the same link again.</p>
      ${detail ? html`<p class="note" role="alert">${detail}</p>` : ""}
    </div>
  </main>`
}

export function notFound(path: string): TemplateResult {
  return html`<section class="page narrow">
    <h1>Page not found</h1>
    <p>There is nothing at <code>${path}</code>.</p>
  </section>`
}
