// Entry point: finds out who is signed in, starts the live repo, routes to a page and renders it.
// Rendering is whole-page with lit-html, batched to one render per animation frame.
import { html, nothing, render, type TemplateResult } from "lit-html"
import { fetchMe, logout } from "./api"
import type { App, View } from "./app"
import { Live, syncUrl, type ConnectionState } from "./live"
import { MeetingContext } from "./meeting"
import { dashboardPath, groupPath, homePath, parseRoute, summaryPath, type Route } from "./router"
import type { Person } from "./types"
import { roleName } from "./views/common"
import { DashboardView } from "./views/dashboard"
import { GroupView } from "./views/group"
import { HomeView } from "./views/home"
import { SummaryView } from "./views/summary"
import { inviteNeeded, notFound } from "./views/identity"
import "./styles.css"

const root = document.getElementById("app")!

/** Where an invite of this role lands (docs/api.md, GET /join). */
export function landingPath(person: Person): string {
  switch (person.role) {
    case "rapporteur":
    case "moderator":
      return person.group ? groupPath(person.meeting, person.group) : homePath(person.meeting)
    case "co-facilitator":
    case "secretariat":
      return dashboardPath(person.meeting)
    default:
      return homePath(person.meeting)
  }
}

function connectionPill(state: ConnectionState): TemplateResult {
  const text = {
    online: "Live",
    connecting: "Reconnecting…",
    offline: "Offline — edits are kept on this device",
  }[state]
  return html`<span class="conn conn-${state}" role="status" aria-live="polite" data-connection=${state}
    ><span class="conn-dot" aria-hidden="true"></span>${text}</span
  >`
}

class Shell {
  #frame = 0
  #view: View | null = null
  #route: Route = parseRoute(location.pathname)
  #app: App | null = null

  constructor(
    private readonly me: Person,
    private readonly meFromCache: boolean,
    private readonly live: Live,
  ) {
    live.stateChanged.on(() => this.requestRender())
    live.synced.on(() => this.requestRender())
    window.addEventListener("popstate", () => this.#route_(parseRoute(location.pathname)))
    document.addEventListener("click", e => this.#interceptLinks(e))
    setInterval(() => this.requestRender(), 30_000) // clocks: time left in sessions
  }

  start(): void {
    if (this.#route.page === "root") {
      this.navigate(landingPath(this.me), true)
      return
    }
    this.#route_(this.#route)
  }

  requestRender = (): void => {
    if (this.#frame) return
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0
      this.#renderNow()
    })
  }

  navigate = (path: string, replace = false): void => {
    if (replace) history.replaceState(null, "", path)
    else history.pushState(null, "", path)
    this.#route_(parseRoute(path))
  }

  #interceptLinks(e: MouseEvent): void {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return
    const a = (e.target as Element | null)?.closest?.("a[href]")
    if (!(a instanceof HTMLAnchorElement) || a.target || a.origin !== location.origin) return
    if (a.pathname.startsWith("/api/") || a.pathname.startsWith("/join/")) return
    e.preventDefault()
    this.navigate(a.pathname)
  }

  #meetingFor(slug: string): MeetingContext {
    if (this.#app?.meeting.slug === slug) return this.#app.meeting
    return new MeetingContext(slug, this.live, this.requestRender)
  }

  #route_(route: Route): void {
    this.#route = route
    this.#view?.dispose?.()
    this.#view = null
    const slug = "slug" in route ? route.slug : this.me.meeting
    this.#app = {
      me: this.me,
      meFromCache: this.meFromCache,
      live: this.live,
      meeting: this.#meetingFor(slug),
      requestRender: this.requestRender,
      navigate: this.navigate,
    }
    switch (route.page) {
      case "home":
        this.#view = new HomeView(this.#app)
        break
      case "group":
        this.#view = new GroupView(this.#app, route.group)
        break
      case "dashboard":
        this.#view = new DashboardView(this.#app)
        break
      case "summary":
        this.#view = new SummaryView(this.#app)
        break
      default:
        break
    }
    window.scrollTo(0, 0)
    this.#renderNow()
  }

  #renderNow(): void {
    const route = this.#route
    const app = this.#app
    const body = this.#view ? this.#view.render() : notFound(route.page === "not-found" ? route.path : "/")
    const slug = app?.meeting.slug ?? this.me.meeting
    const title = app?.meeting.indexDoc?.meeting?.title ?? app?.meeting.details?.title ?? ""
    const me = this.me
    const nav: [string, string][] = [[homePath(slug), "Meeting"]]
    if (me.role === "co-facilitator" || me.role === "secretariat") nav.push([dashboardPath(slug), "Dashboard"])
    nav.push([summaryPath(slug), "Summary"])
    if ((me.role === "rapporteur" || me.role === "moderator") && me.group) {
      nav.push([groupPath(slug, me.group), `Group ${me.group}`])
    }
    render(
      html`
        <a class="skip" href="#main">Skip to content</a>
        <header class="topbar">
          <div class="topbar-inner">
            <a class="brand" href=${homePath(slug)} aria-label="Rapporteur, meeting home">
              <span class="brand-mark" aria-hidden="true">R</span><span class="brand-name">Rapporteur</span>
            </a>
            <span class="topbar-meeting" dir="auto" title=${title}>${title}</span>
            <nav class="topnav" aria-label="Main">
              ${nav.map(
                ([href, label]) =>
                  html`<a href=${href} aria-current=${location.pathname === href ? "page" : nothing}>${label}</a>`,
              )}
            </nav>
            ${connectionPill(this.live.state)}
            <div class="whoami" data-testid="whoami">
              <span class="whoami-name" dir="auto">${me.name}</span>
              <span class="whoami-role">${roleName(me.role)}${me.group ? ` · group ${me.group}` : ""}</span>
            </div>
            <button class="btn btn-quiet" type="button" @click=${() => void this.#signOut()}>Sign out</button>
          </div>
        </header>
        <main id="main" tabindex="-1">${body}</main>
        <footer class="footer">
          <span>Rapporteur · live drafting for intergovernmental meetings</span>
          ${this.meFromCache ? html`<span>Working offline with your saved identity.</span>` : nothing}
        </footer>
      `,
      root,
    )
    this.#view?.afterRender?.()
  }

  async #signOut(): Promise<void> {
    try {
      await logout()
    } finally {
      location.assign("/")
    }
  }
}

async function boot(): Promise<void> {
  let identity
  try {
    identity = await fetchMe()
  } catch {
    render(inviteNeeded("The server cannot be reached and this browser has no saved session."), root)
    return
  }
  if (identity.kind === "anonymous") {
    render(inviteNeeded(), root)
    return
  }
  const live = new Live(syncUrl())
  // exposed for diagnostics from the browser console and the end-to-end tests
  ;(window as unknown as { rapporteur: unknown }).rapporteur = { live }
  new Shell(identity.person, identity.fromCache, live).start()
}

void boot()
